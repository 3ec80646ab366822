/**
 * A node SIGKILLed: its clients come back through the others and resume there.
 * Its publisher dies with it: what it had sent that reached Redis (what any client
 * got of it) is owed to every client; the others' messages all are.
 */
import { beforeAll, expect, test } from 'vitest';
import { eventually } from '../../../src/testing/wait.js';
import { startRedis, type TestRedis } from '../../helpers/redis.js';
import { closeMembers, owedOfDead, publish, resumesOf, sleep, startCluster, stopPublishers, verdict } from './harness.js';

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});

test('a node SIGKILLed: its clients resume on the others, nothing lost or repeated', async () => {
  const cluster = await startCluster({ REDIS_URL: redis.url, RECOVERY_WINDOW_MS: '30000' });
  const [n0, n1, n2] = cluster.nodes as [(typeof cluster.nodes)[0], (typeof cluster.nodes)[0], (typeof cluster.nodes)[0]];
  await publish(cluster, 60);
  await sleep(800);
  const orphans = cluster.members.filter((m) => m.node === n0);
  await n0.kill();
  // The load balancer notices and sends them elsewhere.
  orphans.forEach((m, i) => {
    m.node = i % 2 === 0 ? n1 : n2;
    m.proxy.retarget(m.node.port);
  });
  await eventually(() => orphans.every((m) => resumesOf(m) >= 1 && m.client.state === 'open'), 'the resumes', 20_000);
  await sleep(800);
  const owed = { ...(await stopPublishers([n1, n2])), n0: owedOfDead(cluster, 'n0') };
  const result = await verdict(cluster, owed, 'kill');
  closeMembers(cluster);
  expect(result.problems).toEqual([]);
  expect(result.resumes).toEqual({ recovered: orphans.length, notRecovered: 0 });
  expect(result.told).toBe(0);
}, 60_000);
