import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { startOwnServer, type OwnServer } from './own-server.js';

/**
 * A `nats-server -js` of the test's own, on a free loopback port, its JetStream store in a temporary
 * folder; `restart()` starts it on the same port, with the same store (presence, in memory, is gone).
 */
export interface TestNats extends OwnServer {
  readonly url: string;
}

const folders: string[] = [];

afterAll(() => {
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

/** Starts a private nats-server with JetStream, and with `config` (the server's configuration file's text) if given; it is killed after the test file. */
export async function startNats(config?: string): Promise<TestNats> {
  const store = mkdtempSync(join(tmpdir(), 'berth-nats-'));
  folders.push(store);
  const args = ['-sd', store];
  if (config !== undefined) {
    writeFileSync(join(store, 'nats.conf'), config);
    args.push('-c', join(store, 'nats.conf'));
  }
  const server = await startOwnServer((port, spawned) => launch(port, args, spawned));
  return { ...server, url: `nats://127.0.0.1:${server.port}` };
}

/** Starts `nats-server` on `port` and resolves once it accepts connections. */
function launch(port: number, args: readonly string[], spawned: (child: ChildProcess) => void): Promise<ChildProcess> {
  // Debian installs it in /usr/sbin, which a user's PATH may not hold.
  const env = { ...process.env, PATH: [process.env.PATH, '/usr/sbin', '/usr/local/sbin'].filter(Boolean).join(':') };
  const child = spawn('nats-server', ['-js', '-a', '127.0.0.1', '-p', String(port), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  });
  spawned(child);
  return new Promise((resolve, reject) => {
    let output = '';
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Server is ready')) {
        child.stderr!.off('data', onData);
        child.stderr!.resume();
        resolve(child);
      }
    };
    child.stderr!.on('data', onData);
    child.stdout!.resume();
    child.once('error', (error) => reject(new Error(`nats-server: ${error.message} (is nats-server installed?)`)));
    child.once('exit', (code) => reject(new Error(`nats-server on port ${port} exited with ${code}: ${output.slice(-500)}`)));
  });
}
