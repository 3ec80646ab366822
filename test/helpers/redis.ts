import { createClient } from 'redis';
import { afterAll, beforeAll } from 'vitest';
import { launchRedisServer } from '../../bench/redis-process.js';
import { settles } from '../../src/testing/wait.js';
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

/** A test file's own Redis and a plain client of it, for reading what berth wrote there; both set before its tests run. */
export interface RedisWithAdmin {
  readonly redis: TestRedis;
  readonly admin: ReturnType<typeof createClient>;
}

/** Starts a private redis-server and connects a client to it before the file's tests; closes the client after them. */
export function redisWithAdmin(): RedisWithAdmin {
  const own = {} as { redis: TestRedis; admin: ReturnType<typeof createClient> };
  beforeAll(async () => {
    own.redis = await startRedis();
    own.admin = createClient({ url: own.redis.url });
    await own.admin.connect();
  });
  afterAll(async () => {
    await own.admin?.close();
  });
  return own;
}

/** What the readers below need of a client (RESP2, as `createClient` makes one). */
interface Admin {
  sendCommand(args: string[]): Promise<unknown>;
}

/** Redis's own clock in ms: the one presence's heartbeat deadlines are written in. */
export async function redisNow(admin: Admin): Promise<number> {
  const [seconds, micros] = (await admin.sendCommand(['TIME'])) as [string, string];
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}

/** A node's one instance in the liveness table `<prefix>:{nodes}`, and its heartbeat deadline (Redis's clock). */
export async function heartbeatOf(admin: Admin, prefix: string, nodeId: string): Promise<{ instance: string; deadline: number }> {
  const reply = (await admin.sendCommand(['HGETALL', `${prefix}:{nodes}`])) as string[] | Record<string, string>;
  // Flat pairs in RESP2, a map in RESP3.
  const fields = Array.isArray(reply) ? Object.fromEntries(pairsOf(reply)) : reply;
  const instances = Object.entries(fields)
    .filter(([instance]) => instance.startsWith(`${nodeId}.`))
    .map(([instance, deadline]) => ({ instance, deadline: Number(deadline) }));
  if (instances.length !== 1) throw new Error(`expected one instance of ${nodeId} in ${prefix}:{nodes}, found ${instances.length}`);
  return instances[0]!;
}

/** Waits until Redis's clock has passed `deadline`: what is live or dead is judged by it, not by ours. */
export async function redisPassed(admin: Admin, deadline: number, timeoutMs: number): Promise<void> {
  await settles(async () => {
    const now = await redisNow(admin);
    if (now <= deadline) throw new Error(`Redis's clock at ${now} has not passed ${deadline}`);
  }, timeoutMs);
}

function pairsOf(flat: readonly string[]): Array<[string, string]> {
  return Array.from({ length: flat.length / 2 }, (_, i) => [flat[2 * i]!, flat[2 * i + 1]!]);
}
