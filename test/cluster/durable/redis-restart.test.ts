/**
 * Redis restarted empty (SIGKILL, then a new redis-server on the same port) while
 * publishers run: history and numbering are gone, so what cannot be healed must
 * be told. Every gap a client sees — of a publisher's seqs, of a stream's offsets
 * or epoch — comes after a `lost` (or a resume not recovered) naming the stream;
 * nothing is repeated or out of order; after it, everything is delivered again.
 */
import { beforeAll, expect, test } from 'vitest';
import { startRedis, type TestRedis } from '../../helpers/redis.js';
import { closeMembers, publish, sleep, startCluster, stopPublishers, verdict } from './harness.js';

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});

test('Redis restarted empty: every loss told to the client, none silent, nothing repeated', async () => {
  const cluster = await startCluster({ REDIS_URL: redis.url, RECOVERY_WINDOW_MS: '30000' });
  await publish(cluster, 60);
  await sleep(800);
  await redis.kill();
  await sleep(300);
  await redis.restart();
  await sleep(2000);
  const owed = await stopPublishers(cluster.nodes);
  const result = await verdict(cluster, owed, 'redis-restart');
  closeMembers(cluster);
  expect(result.problems).toEqual([]);
  // Something was lost (the downtime's messages, at least), and the clients were told.
  expect(result.told).toBeGreaterThan(0);
}, 60_000);
