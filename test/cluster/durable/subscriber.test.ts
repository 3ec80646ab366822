/**
 * Every node's Redis subscriber connection dropped (`CLIENT KILL TYPE pubsub`),
 * twice, while publishers run: each node heals the gap from the stream's history.
 * No client moves; every message reaches every client exactly once, in order.
 */
import { createClient } from 'redis';
import { beforeAll, expect, test } from 'vitest';
import { startRedis, type TestRedis } from '../../helpers/redis.js';
import { closeMembers, publish, sleep, startCluster, stopPublishers, verdict } from './harness.js';

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});

test("the nodes' Redis subscribers dropped: gaps healed from history, nothing lost or repeated", async () => {
  const cluster = await startCluster({ REDIS_URL: redis.url, RECOVERY_WINDOW_MS: '30000' });
  const admin = createClient({ url: redis.url });
  await admin.connect();
  try {
    await publish(cluster, 60);
    await sleep(800);
    const killed: number[] = [];
    for (let round = 0; round < 2; round++) {
      killed.push(Number(await admin.sendCommand(['CLIENT', 'KILL', 'TYPE', 'pubsub'])));
      await sleep(800);
    }
    // Each node has a subscriber; each round dropped every one of them.
    for (const count of killed) expect(count).toBeGreaterThanOrEqual(cluster.nodes.length);
    const owed = await stopPublishers(cluster.nodes);
    const result = await verdict(cluster, owed, 'subscriber');
    closeMembers(cluster);
    expect(result.problems).toEqual([]);
    expect(result.resumes).toEqual({ recovered: 0, notRecovered: 0 });
    expect(result.told).toBe(0);
  } finally {
    await admin.close();
  }
}, 60_000);
