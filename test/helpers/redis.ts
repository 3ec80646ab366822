import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll } from 'vitest';
import { freePort } from './net.js';

/** A `redis-server` of the test's own, on a free loopback port, with no persistence. */
export interface TestRedis {
  readonly port: number;
  readonly url: string;
  /** Kills it at once (SIGKILL), as a crash would. */
  kill(): Promise<void>;
  /** Starts it again on the same port, empty. */
  restart(): Promise<void>;
  /** SIGSTOP: Redis stalls with every connection open; `resume()` (SIGCONT) lets it go on. */
  stall(): void;
  resume(): void;
}

const started = new Set<ChildProcess>();

afterAll(() => {
  for (const child of started) child.kill('SIGKILL');
  started.clear();
});

/** Starts a private redis-server; it is killed after the test file. */
export async function startRedis(): Promise<TestRedis> {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    try {
      let child = await launch(port);
      return {
        port,
        url: `redis://127.0.0.1:${port}`,
        kill: async () => {
          const exited = new Promise((resolve) => child.once('exit', resolve));
          child.kill('SIGKILL');
          await exited;
          started.delete(child);
        },
        restart: async () => {
          child = await launch(port);
        },
        stall: () => void child.kill('SIGSTOP'),
        resume: () => void child.kill('SIGCONT'),
      };
    } catch (error) {
      // Another process took the port between our probe and redis-server's bind.
      if (attempt === 4) throw error;
    }
  }
}

function launch(port: number): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.add(child);
  return new Promise((resolve, reject) => {
    let output = '';
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) {
        child.stdout!.off('data', onData);
        child.stdout!.resume();
        resolve(child);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.resume();
    child.once('error', reject);
    child.once('exit', (code) => {
      started.delete(child);
      reject(new Error(`redis-server on port ${port} exited with ${code}: ${output.slice(-500)}`));
    });
  });
}
