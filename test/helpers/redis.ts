import { launchRedisServer } from '../../bench/redis-process.js';
import { startOwnServer, type OwnServer } from './own-server.js';

/** A `redis-server` of the test's own, on a free loopback port, with no persistence; killed after the test file. */
export interface TestRedis extends OwnServer {
  readonly url: string;
}

/** Starts a private redis-server; it is killed after the test file. */
export async function startRedis(): Promise<TestRedis> {
  const server = await startOwnServer((port, spawned) => launchRedisServer(port, '127.0.0.1', spawned));
  return { ...server, url: `redis://127.0.0.1:${server.port}` };
}
