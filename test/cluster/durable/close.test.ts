/**
 * A rolling deploy's step: one node's `runtime.close()` (the load balancer sends
 * new connections elsewhere first). Its clients are closed with 1012 and come back
 * through the other nodes, where they resume: every message its publisher sent
 * before the close, and every message of the others, exactly once, in order.
 */
import { beforeAll, expect, test } from 'vitest';
import { eventually } from '../../../src/testing/wait.js';
import { startRedis, type TestRedis } from '../../helpers/redis.js';
import { closeMembers, publish, resumesOf, sleep, startCluster, stopPublishers, verdict } from './harness.js';
import type { Sent } from './node.js';

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});

test("a node's runtime.close(): its clients resume on the others, nothing lost or repeated", async () => {
  const cluster = await startCluster({ REDIS_URL: redis.url, RECOVERY_WINDOW_MS: '30000' });
  const [n0, n1, n2] = cluster.nodes as [(typeof cluster.nodes)[0], (typeof cluster.nodes)[0], (typeof cluster.nodes)[0]];
  await publish(cluster, 60);
  await sleep(800);
  const leaving = cluster.members.filter((m) => m.node === n0);
  // The load balancer takes n0 out: new connections go to n1 and n2; the open ones stay until n0 closes them.
  leaving.forEach((m, i) => {
    m.node = i % 2 === 0 ? n1 : n2;
    m.proxy.retarget(m.node.port);
  });
  const { sent } = await n0.request<{ sent: Sent }>({ op: 'close', timeoutMs: 5000 });
  await n0.exited;
  await eventually(() => leaving.every((m) => resumesOf(m) >= 1 && m.client.state === 'open'), 'the resumes', 20_000);
  await sleep(800);
  const owed = { n0: sent, ...(await stopPublishers([n1, n2])) };
  const result = await verdict(cluster, owed, 'close');
  closeMembers(cluster);
  expect(result.problems).toEqual([]);
  expect(result.resumes).toEqual({ recovered: leaving.length, notRecovered: 0 });
  expect(result.told).toBe(0);
  // Each was closed once, by its node going away: 1012, and when to come back.
  for (const m of leaving) {
    expect(m.closes.map(({ code }) => code)).toEqual([1012]);
    expect(m.closes[0]!.reason).toMatch(/^retry-after=\d+$/);
  }
}, 60_000);
