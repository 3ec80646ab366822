import type { ChildProcess } from 'node:child_process';
import { afterAll } from 'vitest';
import { freePort, launchRedisServer } from '../../bench/redis-process.js';

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
  return launchRedisServer(port, '127.0.0.1', (child) => {
    started.add(child);
    child.once('exit', () => started.delete(child));
  });
}
