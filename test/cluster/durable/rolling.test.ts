/**
 * A rolling deploy under load: each of the three nodes in turn is taken out of the
 * load balancer, closed (`runtime.close()`), and replaced by a new node on the same
 * cluster, which takes clients and publishes in its turn. Every client trusts
 * resume throughout: every message of every publisher, old or new, exactly once
 * and in order; nothing lost, nothing told lost, every resume recovered.
 */
import { beforeAll, expect, test } from 'vitest';
import { eventually } from '../../../src/testing/wait.js';
import { startRedis, type TestRedis } from '../../helpers/redis.js';
import { closeMembers, publish, resumesOf, sleep, startCluster, startDurableNode, stopPublishers, verdict } from './harness.js';
import type { Owed } from './ledger.js';
import type { Sent } from './node.js';

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});

test('every node restarted in turn under load: nothing lost or repeated, every resume recovered', async () => {
  const env = { REDIS_URL: redis.url, RECOVERY_WINDOW_MS: '30000' };
  const cluster = await startCluster(env);
  await publish(cluster, 60);
  await sleep(600);
  const owed: Owed = {};
  let resumes = 0;
  for (let i = 0; i < 3; i++) {
    const old = cluster.nodes[i]!;
    const next = cluster.nodes[(i + 1) % 3]!;
    // Out of the load balancer: its clients' next connections go to the next node.
    const leaving = cluster.members.filter((m) => m.node === old);
    for (const m of leaving) {
      m.node = next;
      m.proxy.retarget(next.port);
    }
    owed[old.name] = (await old.request<{ sent: Sent }>({ op: 'close', timeoutMs: 5000 })).sent;
    await old.exited;
    resumes += leaving.length;
    await eventually(() => leaving.every((m) => resumesOf(m) >= 1 && m.client.state === 'open'), `the resumes off ${old.name}`, 20_000);
    // Its replacement joins the cluster and publishes (the last round's clients go to the first one).
    const replacement = await startDurableNode(`${old.name}b`, cluster.prefix, env);
    cluster.nodes[i] = replacement;
    await publish(cluster, 60, [replacement]);
    await sleep(600);
  }
  Object.assign(owed, await stopPublishers(cluster.nodes));
  const result = await verdict(cluster, owed, 'rolling');
  closeMembers(cluster);
  expect(result.problems).toEqual([]);
  expect(result.resumes).toEqual({ recovered: resumes, notRecovered: 0 });
  expect(result.told).toBe(0);
}, 90_000);
