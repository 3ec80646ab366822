import type { ChildProcess } from 'node:child_process';
import { afterAll } from 'vitest';
import { freePort } from '../../bench/redis-process.js';

/** A server process of the test's own (redis-server, nats-server) on a free loopback port. */
export interface OwnServer {
  readonly port: number;
  /** Kills it at once (SIGKILL), as a crash would. */
  kill(): Promise<void>;
  /** Starts it again on the same port. */
  restart(): Promise<void>;
  /** SIGSTOP: it stalls with every connection open; `resume()` (SIGCONT) lets it go on. */
  stall(): void;
  resume(): void;
}

const started = new Set<ChildProcess>();

afterAll(() => {
  for (const child of started) child.kill('SIGKILL');
  started.clear();
});

/** Kept from its spawn on, so that one still starting when the file ends is killed too. */
function spawned(child: ChildProcess): void {
  started.add(child);
  child.once('exit', () => started.delete(child));
}

/**
 * Starts a server with `launch` (which calls `spawned` with its process at once, and resolves once it
 * accepts connections) on a free port, and kills it after the test file. Tries another port if one was
 * taken between the probe and the bind.
 */
export async function startOwnServer(
  launch: (port: number, spawned: (child: ChildProcess) => void) => Promise<ChildProcess>,
): Promise<OwnServer> {
  const start = (port: number) => launch(port, spawned);
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    try {
      let child = await start(port);
      return {
        port,
        kill: async () => {
          const exited = new Promise((resolve) => child.once('exit', resolve));
          child.kill('SIGKILL');
          await exited;
        },
        restart: async () => {
          child = await start(port);
        },
        stall: () => void child.kill('SIGSTOP'),
        resume: () => void child.kill('SIGCONT'),
      };
    } catch (error) {
      if (attempt === 4) throw error;
    }
  }
}
