/**
 * A Redis Cluster master SIGKILLed while publishers run on every node: its replica
 * is promoted, perhaps without the last writes. No `(stream, epoch, offset)` is ever
 * delivered with two different payloads (every client of every node compared), no
 * message twice or out of order, and every gap told; what the engine refused
 * during the failover reached no one and is counted apart.
 */
import { beforeAll, expect, test } from 'vitest';
import { settles } from '../../../src/testing/wait.js';
import { startRedisCluster, type TestRedisCluster } from '../../helpers/redis-cluster.js';
import { closeMembers, publish, sleep, startCluster, stopPublishers, verdict } from './harness.js';

let redis: TestRedisCluster;
beforeAll(async () => {
  redis = await startRedisCluster({ replicas: 1, nodeTimeoutMs: 1000 });
}, 60_000);

/** `role`'s first lines: `master`, or `slave` and its master's host and port. */
async function roleOf(port: number): Promise<string[]> {
  return (await redis.cli(port, 'role')).trim().split('\n');
}

/** The master holding the most keys of room a's stream (the first master if none is found), and its replica. */
async function victim(): Promise<{ master: number; replica: number }> {
  const roles = await Promise.all(redis.ports.map(async (port) => ({ port, role: await roleOf(port) })));
  const masters = roles.filter(({ role }) => role[0] === 'master').map(({ port }) => port);
  let master = masters[0]!;
  let most = 0;
  for (const port of masters) {
    const keys = (await redis.cli(port, '--scan', '--pattern', '*room:a*')).trim().split('\n').filter(Boolean).length;
    if (keys > most) [master, most] = [port, keys];
  }
  const replica = roles.find(({ role }) => role[0] === 'slave' && Number(role[2]) === master)!.port;
  return { master, replica };
}

test('a Redis Cluster master SIGKILLed: no offset delivered with two payloads, nothing repeated, every gap told', async () => {
  const cluster = await startCluster({ REDIS_CLUSTER: redis.rootNodes.map(({ url }) => url).join(','), RECOVERY_WINDOW_MS: '30000' });
  await publish(cluster, 60);
  await sleep(1000);
  const { master, replica } = await victim();
  await redis.kill(master);
  await settles(async () => {
    expect((await roleOf(replica))[0]).toBe('master');
    expect(await redis.cli(replica, 'cluster', 'info')).toContain('cluster_state:ok');
  }, 20_000).catch(async (error: unknown) => {
    console.log(
      `no failover: killed ${master}, its replica ${replica} says\n${await redis.cli(replica, 'cluster', 'nodes')}\n${await redis.cli(replica, 'info', 'replication')}`,
    );
    throw error;
  });
  await sleep(2000);
  const owed = await stopPublishers(cluster.nodes);
  const result = await verdict(cluster, owed, 'failover', { unpublished: true });
  closeMembers(cluster);
  expect(result.problems).toEqual([]);
  // Messages flowed after the failover: every client got the last message of every publisher, or was told why not.
  expect(result.delivered).toBeGreaterThan(0);
}, 90_000);
