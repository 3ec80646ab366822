// Runs before `npm test`: makes sure the machine has what the suite drives besides Node —
// Debian's chromium (browser tests, through playwright-core), redis-server and nats-server
// (cluster and adapter tests start their own). Missing ones are installed with apt-get when
// this runs as root on Debian; otherwise it stops at once, naming exactly what to install.
// Idempotent: with all present it does nothing.
import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import path from 'node:path';

const CHROMIUM_PATHS = ['/usr/bin/chromium', '/usr/bin/chromium-browser'];
// Debian installs nats-server in /usr/sbin, which a user's PATH may not hold; the tests look there too.
const SBIN = ['/usr/sbin', '/usr/local/sbin'];

function onPath(command) {
  return (process.env.PATH ?? '').split(path.delimiter).some((folder) => {
    try {
      accessSync(path.join(folder, command), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

function missing() {
  const needed = [];
  const chromium = process.env.CHROMIUM_PATH;
  if (chromium !== undefined ? !existsSync(chromium) : !CHROMIUM_PATHS.some((file) => existsSync(file))) needed.push('chromium');
  if (!onPath('redis-server')) needed.push('redis-server');
  if (!onPath('nats-server') && !SBIN.some((folder) => existsSync(path.join(folder, 'nats-server')))) needed.push('nats-server');
  return needed;
}

/** `a`, `a and b`, `a, b and c`. */
function list(names) {
  return names.length <= 2 ? names.join(' and ') : `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`;
}

const needed = missing();
if (needed.length === 0) process.exit(0);

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
if (!isRoot || !onPath('apt-get')) {
  console.error(
    `npm test needs ${list(needed)}, which ${needed.length === 1 ? 'is' : 'are'} not installed.\n` +
      `Install ${needed.length === 1 ? 'it' : 'them'} and run npm test again: sudo apt-get install -y ${needed.join(' ')}\n` +
      (needed.includes('chromium') ? 'or point CHROMIUM_PATH at a Chromium or Chrome binary.\n' : ''),
  );
  process.exit(1);
}

console.log(`npm test: installing ${list(needed)} with apt-get (once; later runs find ${needed.length === 1 ? 'it' : 'them'})`);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
const install = spawnSync('apt-get', ['install', '-y', '-qq', ...needed], { stdio: ['ignore', 'ignore', 'inherit'], env });
const still = missing();
if (install.status !== 0 || still.length > 0) {
  console.error(
    `apt-get could not install ${list(still.length > 0 ? still : needed)} (exit ${install.status}); install it by hand and run npm test again.`,
  );
  process.exit(1);
}
