/**
 * A client the load balancer moves to another node, its node still alive, resumes
 * there — and again when it is moved back within the window: every message of
 * every publisher exactly once, in order, nothing lost, nothing told lost.
 */
import { beforeAll, expect, test } from 'vitest';
import { eventually } from '../../../src/testing/wait.js';
import { startRedis, type TestRedis } from '../../helpers/redis.js';
import { closeMembers, move, publish, resumesOf, sleep, startCluster, stopPublishers, verdict } from './harness.js';

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});

test('clients moved between live nodes resume on each: every message once, in order, none lost', async () => {
  const cluster = await startCluster({ REDIS_URL: redis.url, RECOVERY_WINDOW_MS: '30000' });
  const [n0, n1, n2] = cluster.nodes as [(typeof cluster.nodes)[0], (typeof cluster.nodes)[0], (typeof cluster.nodes)[0]];
  await publish(cluster, 60);
  await sleep(800);
  const first = cluster.members.filter((m) => m.node === n0);
  const second = cluster.members.filter((m) => m.node === n1);
  // n0's clients to n1, n1's to n2.
  for (const m of first) move(m, n1);
  for (const m of second) move(m, n2);
  const resumed = (members: typeof first, count: number) =>
    eventually(() => members.every((m) => resumesOf(m) >= count && m.client.state === 'open'), `${count} resumes`, 15_000);
  await resumed([...first, ...second], 1);
  await sleep(800);
  // Back to the node they came from, within the window.
  for (const m of first) move(m, n0);
  await resumed(first, 2);
  await sleep(800);
  const owed = await stopPublishers(cluster.nodes);
  const result = await verdict(cluster, owed, 'moved');
  closeMembers(cluster);
  expect(result.problems).toEqual([]);
  expect(result.resumes).toEqual({ recovered: 9, notRecovered: 0 });
  expect(result.told).toBe(0);
}, 60_000);
