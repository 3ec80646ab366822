/**
 * Nodes in separate processes on a Redis Cluster of three masters: a room's
 * broadcasts travel on its sharded channel, carried by the one shard that
 * owns the room's slot, and reach only the nodes that host a member; presence
 * answers across nodes, and a node killed with SIGKILL drops out of it.
 */
import { createCluster } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RedisClusterClient } from '../../src/redis.js';
import { settles, type TestClient } from '../helpers/client.js';
import { startRedisCluster, type TestRedisCluster } from '../helpers/redis-cluster.js';
import { ask, member, received, startPair } from './nodes.js';

let redis: TestRedisCluster;
let admin: RedisClusterClient;
beforeAll(async () => {
  redis = await startRedisCluster();
  admin = createCluster({ rootNodes: [...redis.rootNodes] }) as unknown as RedisClusterClient;
  await admin.connect();
}, 60_000);
afterAll(async () => {
  await admin?.close();
});

const pair = (env: { NODE_TIMEOUT_MS?: string } = {}) =>
  startPair('sharded', { REDIS_CLUSTER: redis.rootNodes.map(({ url }) => url).join(','), ...env });

/** Subscribers of a sharded channel on each master, by port. */
async function shardSubscribers(channel: string): Promise<Record<number, number>> {
  const counts: Record<number, number> = {};
  for (const port of redis.ports) {
    counts[port] = Number((await redis.cli(port, 'pubsub', 'shardnumsub', channel)).trim().split('\n')[1]);
  }
  return counts;
}

describe('berth nodes on a Redis Cluster', () => {
  it('a room lives on one shard: a broadcast from node a reaches its member on node b; a node with no member receives none of it', async () => {
    const [a, b, prefix] = await pair();
    const onB = await member(b);
    await ask(onB.client, { join: 'there' });
    await ask(onB.client, { user: 'ada' });
    // Two rooms whose slots are on different masters.
    let elsewhere = 'elsewhere';
    const home = await redis.portOf(`${prefix}:{room:there}`);
    for (let i = 0; (await redis.portOf(`${prefix}:{room:${elsewhere}}`)) === home; i++) elsewhere = `elsewhere${i}`;
    const onA = await member(a);
    await ask(onA.client, { join: elsewhere });

    // b is subscribed on the master of the room's slot, and on no other.
    expect(await shardSubscribers(`${prefix}:{room:there}`)).toEqual(
      Object.fromEntries(redis.ports.map((port) => [port, port === home ? 1 : 0])),
    );
    for (let i = 0; i < 20; i++) {
      await a.request({ op: 'sendToRoom', name: 'there', data: `there ${i}` });
      await a.request({ op: 'sendToRoom', name: elsewhere, data: `elsewhere ${i}` });
    }
    await a.request({ op: 'sendToAll', data: 'all' });
    const of = (client: TestClient, prefixText: string) => client.messages.filter((text) => text.startsWith(prefixText));
    await settles(async () => {
      expect(of(onB.client, 'there ')).toEqual(Array.from({ length: 20 }, (_, i) => `there ${i}`));
      expect(onB.client.messages).toContain('all');
    }, 10_000);
    // b took the twenty to its room and the one to all; none of the room it hosts nobody of.
    expect(of(onB.client, 'elsewhere ')).toEqual([]);
    expect(await received(b)).toBe(21);
    expect(await received(a)).toBe(0);

    // Presence answers across nodes and shards.
    for (const node of [a, b]) {
      await settles(async () => {
        expect(await node.presence('nodes')).toEqual([a.nodeId, b.nodeId].sort());
        expect(await node.presence('roomMembers', 'there')).toEqual([onB.id]);
        expect(await node.presence('roomSize', elsewhere)).toBe(1);
        expect(await node.presence('rooms')).toEqual({ [elsewhere]: 1, there: 1 });
        expect(await node.presence('userConnections', 'ada')).toEqual([onB.id]);
      });
    }
    const health = await a.request<{ status: string; cluster: { linkUp: boolean } }>({ op: 'health' });
    expect(health.status).toBe('ok');
    expect(health.cluster.linkUp).toBe(true);
  }, 60_000);

  it('a node killed with SIGKILL drops out of presence within nodeTimeoutMs, and its entries are removed', async () => {
    const [survivor, victim, prefix] = await pair({ NODE_TIMEOUT_MS: '2000' });
    const here = await member(survivor);
    const there = await member(victim);
    for (const m of [here, there]) await ask(m.client, { join: 'lobby' });
    await settles(async () => expect(await survivor.presence('roomSize', 'lobby')).toBe(2));
    await victim.kill();
    await settles(async () => expect(await survivor.presence('roomMembers', 'lobby')).toEqual([here.id]), 5000);
    expect(await survivor.presence('nodes')).toEqual([survivor.nodeId]);
    // Found dead, it is removed whole: the room lists only the survivor's instance, the table only the survivor.
    const hosts = `${prefix}:{room:lobby}:nodes`;
    await settles(async () => {
      expect((await admin.sendCommand(hosts, true, ['HKEYS', hosts])) as string[]).toEqual([
        expect.stringMatching(new RegExp(`^${survivor.nodeId}\\.`)),
      ]);
      expect((await admin.sendCommand(`${prefix}:{nodes}`, true, ['HKEYS', `${prefix}:{nodes}`])) as string[]).toHaveLength(1);
    }, 5000);
  }, 60_000);
});
