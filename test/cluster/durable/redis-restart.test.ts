/**
 * Redis restarted empty (SIGKILL, then a new redis-server on the same port) while
 * publishers run: history and numbering are gone, so what cannot be healed must
 * be told. Every gap a client sees — of a publisher's seqs, of a stream's offsets
 * or epoch — comes after a `lost` (or a resume not recovered) naming the stream;
 * nothing is repeated or out of order; after it, everything is delivered again,
 * in a new epoch.
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
  // What the publishers sent while Redis was down never got an offset: owed to no one, counted apart.
  const result = await verdict(cluster, owed, 'redis-restart', { unpublished: true });
  closeMembers(cluster);
  expect(result.problems).toEqual([]);
  // Numbering began again, in a new epoch, on every stream every client is in (and the check above found every change told).
  for (const { log } of cluster.members)
    for (const room of cluster.rooms) {
      const epochs = new Set(log.seen.flatMap((event) => (event.kind === 'msg' && event.stream === `room:${room}` ? [event.epoch] : [])));
      expect(epochs.size, `${log.name} room:${room}`).toBeGreaterThanOrEqual(2);
    }
}, 60_000);
