/**
 * A private `redis-server` for one cluster run: a free loopback port, no
 * persistence, killed with the run (and with the orchestrator).
 */
import { adopt, PhaseError } from './children.js';
import { HOST } from './protocol.js';
import { freePort, launchRedisServer } from './redis-process.js';

export interface RedisServer {
  readonly url: string;
  stop(): Promise<void>;
}

export async function startRedisServer(): Promise<RedisServer> {
  const port = await freePort(HOST);
  const child = await launchRedisServer(port, HOST, adopt).catch((error: Error) => {
    throw new PhaseError(error.message);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    url: `redis://${HOST}:${port}`,
    stop: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}
