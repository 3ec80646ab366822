import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { freePort } from '../../bench/redis-process.js';

/** A `nats-server -js` of the test's own, on a free loopback port, its JetStream store in a temporary folder. */
export interface TestNats {
  readonly port: number;
  readonly url: string;
  /** Kills it at once (SIGKILL), as a crash would. */
  kill(): Promise<void>;
  /** Starts it again on the same port (presence, in memory, is gone). */
  restart(): Promise<void>;
  /** SIGSTOP: NATS stalls with every connection open; `resume()` (SIGCONT) lets it go on. */
  stall(): void;
  resume(): void;
}

const started = new Set<ChildProcess>();
const folders: string[] = [];

afterAll(() => {
  for (const child of started) child.kill('SIGKILL');
  started.clear();
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

/** Starts a private nats-server with JetStream; it is killed after the test file. */
export async function startNats(): Promise<TestNats> {
  const store = mkdtempSync(join(tmpdir(), 'berth-nats-'));
  folders.push(store);
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    try {
      let child = await launch(port, store);
      return {
        port,
        url: `nats://127.0.0.1:${port}`,
        kill: async () => {
          const exited = new Promise((resolve) => child.once('exit', resolve));
          child.kill('SIGKILL');
          await exited;
          started.delete(child);
        },
        restart: async () => {
          child = await launch(port, store);
        },
        stall: () => void child.kill('SIGSTOP'),
        resume: () => void child.kill('SIGCONT'),
      };
    } catch (error) {
      // Another process took the port between our probe and nats-server's bind.
      if (attempt === 4) throw error;
    }
  }
}

/** Starts `nats-server` on `port` and resolves once it accepts connections. */
function launch(port: number, store: string): Promise<ChildProcess> {
  // Debian installs it in /usr/sbin, which a user's PATH may not hold.
  const env = { ...process.env, PATH: [process.env.PATH, '/usr/sbin', '/usr/local/sbin'].filter(Boolean).join(':') };
  const child = spawn('nats-server', ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', store], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  });
  started.add(child);
  child.once('exit', () => started.delete(child));
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
