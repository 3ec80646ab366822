import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../bench/redis-process.js';
import { connect } from './helpers/client.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

let stop: (() => void) | undefined;
afterEach(() => {
  stop?.();
  stop = undefined;
});

describe('the quick start, as written', () => {
  it('the README gives exactly the two commands, and .ci/run runs them', () => {
    const commands = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].map((match) => match[1]!.trim());
    expect(commands.slice(0, 2)).toEqual(['npm install && npm start', 'npm install && npm test']);
    const ci = readFileSync(new URL('../.ci/run', import.meta.url), 'utf8');
    expect(ci).toMatch(/^npm install && npm test$/m);
  });

  it('`npm start` serves the demo on the embedded default, without Redis, until SIGINT', async () => {
    const port = await freePort();
    // Its own process group, so SIGINT reaches npm, tsx and the demo as a terminal's Ctrl-C would.
    const child = spawn(npm, ['start'], {
      cwd: ROOT,
      detached: true,
      env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', REDIS_URL: '' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    stop = () => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    const exited = new Promise<string>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? `exit ${code}`)));
    let output = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('berth demo: http')) resolve();
      });
      void exited.then((how) => reject(new Error(`npm start ended (${how}): ${output}`)));
    });
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(health.status).toBe(200);
    expect(((await health.json()) as { status: string }).status).toBe('ok');
    const page = await fetch(`http://127.0.0.1:${port}/`);
    expect(await page.text()).toContain('<html');
    const client = await connect(`ws://127.0.0.1:${port}/ws?name=ada`);
    expect(JSON.parse(await client.next())).toMatchObject({ type: 'welcome' });
    process.kill(-child.pid!, 'SIGINT');
    const closed = await client.closed;
    expect(closed.code).toBe(1001);
    // npm itself ends by the signal it was sent; what it ran closed its connections first and ended by itself.
    expect(['exit 0', 'SIGINT']).toContain(await exited);
    expect(output).toContain('berth demo: SIGINT, closing connections');
    stop = undefined;
  }, 60_000);
});
