/**
 * The Redis adapter against one `redis-server` and against a Redis Cluster
 * of three masters: the conformance suite, per-room subscriptions, scripts
 * called by hash, and presence reads whose cost is bounded.
 */
import { createClient, createCluster } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdapterNode } from '../../src/index.js';
import { createRedisAdapter, type RedisAdapterOptions, type RedisClient, type RedisClusterClient } from '../../src/redis.js';
import { adapterConformance } from '../../src/testing/index.js';
import { startRedisCluster } from '../helpers/redis-cluster.js';
import { startRedis } from '../helpers/redis.js';

/** One Redis deployment under test, and what the tests read of it. */
interface Backend {
  /** How an adapter reaches it (without a prefix). */
  readonly options: RedisAdapterOptions;
  /** The same, logged in as another ACL user. */
  as(user: string, password: string): RedisAdapterOptions;
  /** A client of the test's own, for reading Redis behind the adapter's back. */
  readonly admin: RedisClient | RedisClusterClient;
  /** Subscribers of a room's or user's channel, counted where that channel lives. */
  subscribers(channel: string): Promise<number>;
  /** A command run on every master, one reply each. */
  everyMaster(args: string[]): Promise<unknown[]>;
  /** One plain client per master (MONITOR needs one connection per server). */
  masters(): RedisClient[];
}

const backends: Array<[string, () => Promise<Backend>]> = [
  [
    'redis',
    async () => {
      const redis = await startRedis();
      const admin = createClient({ url: redis.url }) as RedisClient;
      await admin.connect();
      return {
        options: { url: redis.url },
        as: (user, password) => ({ url: redis.url.replace('redis://', `redis://${user}:${password}@`) }),
        admin,
        subscribers: async (channel) => Number((await admin.pubSubNumSub(channel))[channel]),
        everyMaster: async (args) => [await admin.sendCommand(args)],
        masters: () => [createClient({ url: redis.url }) as RedisClient],
      };
    },
  ],
  [
    'redis cluster',
    async () => {
      const cluster = await startRedisCluster();
      const admin = createCluster({ rootNodes: [...cluster.rootNodes] }) as unknown as RedisClusterClient;
      await admin.connect();
      return {
        options: { cluster: { rootNodes: [...cluster.rootNodes] } },
        as: (username, password) => ({ cluster: { rootNodes: [...cluster.rootNodes], defaults: { username, password } } }),
        admin,
        // Sharded channels: counted on the master of the channel's slot.
        subscribers: async (channel) => {
          const master = await admin.getNodeClientForKey(channel);
          return Number(((await master.sendCommand(['PUBSUB', 'SHARDNUMSUB', channel])) as unknown[])[1]);
        },
        everyMaster: (args) => Promise.all(admin.masters.map(async (master) => (await admin.nodeClient(master)).sendCommand(args))),
        masters: () => cluster.rootNodes.map(({ url }) => createClient({ url }) as RedisClient),
      };
    },
  ],
];

/** A node of no runtime: what the adapter tells it is collected. */
function testNode(nodeId: string): AdapterNode & { failures: unknown[] } {
  const failures: unknown[] = [];
  return {
    nodeId,
    failures,
    deliver: () => {},
    dropped: () => {},
    lost: () => {},
    linkChanged: () => {},
    failed: (error) => void failures.push(error),
    presence: undefined as never,
  };
}

let prefixes = 0;
for (const [name, start] of backends) {
  describe(name, () => {
    let backend: Backend;
    beforeAll(async () => {
      backend = await start();
    }, 60_000);
    afterAll(async () => {
      await backend?.admin.close();
    });

    // The suite as berth/testing ships it, with vitest's describe, it and expect.
    adapterConformance(
      { describe, it, expect },
      {
        name,
        cluster: () => {
          // A prefix per test: nodes of one test never see another test's.
          const prefix = `conformance${++prefixes}`;
          return () => createRedisAdapter({ ...backend.options, prefix });
        },
        // An ACL user whose channels are the prefix's channel for everyone, its users', and the lobby's.
        refusing: {
          room: 'refused',
          cluster: () => {
            const prefix = `refusing${++prefixes}`;
            const user = `berth-${prefix}`;
            const channels = [`&${prefix}:broadcast`, `&${prefix}:{user:*}`, `&${prefix}:{room:lobby}`];
            const created = backend.everyMaster(['ACL', 'SETUSER', user, 'reset', 'on', '>secret', '~*', '+@all', ...channels]);
            return async () => {
              await created;
              return createRedisAdapter({ ...backend.as(user, 'secret'), prefix });
            };
          },
        },
      },
    );

    async function attached(prefix: string, nodeId: string, options: Partial<RedisAdapterOptions> = {}) {
      const adapter = createRedisAdapter({ ...backend.options, prefix, ...options });
      const node = testNode(nodeId);
      await adapter.attach(node);
      return { adapter, node };
    }

    describe('subscribes per room and user', () => {
      it('the track of a join that makes a room wanted settles once Redis has the subscription; a second member’s asks nothing', async () => {
        const prefix = `tracked${++prefixes}`;
        const { adapter } = await attached(prefix, 'tracked-node');
        try {
          expect(adapter.track!({ kind: 'connect', id: 'c-1', user: undefined })).toBeUndefined();
          const first = adapter.track!({ kind: 'join', id: 'c-1', room: 'r' });
          expect(first).toBeInstanceOf(Promise);
          await first;
          // Read on another connection after the promise settled: Redis has it.
          expect(await backend.subscribers(`${prefix}:{room:r}`)).toBe(1);
          adapter.track!({ kind: 'connect', id: 'c-2', user: undefined });
          expect(adapter.track!({ kind: 'join', id: 'c-2', room: 'r' })).toBeUndefined();
        } finally {
          await adapter.close();
        }
      });

      it('a user’s channel is subscribed while the node hosts a connection of the user, and given up after the linger', async () => {
        const prefix = `user${++prefixes}`;
        const { adapter } = await attached(prefix, 'user-node', { unsubscribeLingerMs: 50 });
        try {
          await adapter.track!({ kind: 'connect', id: 'c-1', user: 'ada' });
          expect(await backend.subscribers(`${prefix}:{user:ada}`)).toBe(1);
          await adapter.track!({ kind: 'disconnect', id: 'c-1' });
          await expect.poll(() => backend.subscribers(`${prefix}:{user:ada}`)).toBe(0);
        } finally {
          await adapter.close();
        }
      });
    });

    it('calls its scripts by hash: presence writes and reads send EVALSHA, never the script itself', async () => {
      const prefix = `sha${++prefixes}`;
      const { adapter } = await attached(prefix, 'sha-node');
      try {
        await backend.everyMaster(['CONFIG', 'RESETSTAT']);
        for (let i = 0; i < 50; i++) {
          void adapter.track!({ kind: 'connect', id: `c-${i}`, user: `u${i % 7}` });
          await adapter.track!({ kind: 'join', id: `c-${i}`, room: `room${i % 5}` });
        }
        expect(await adapter.presence!.roomSize('room0')).toBe(10);
        const stats = (await backend.everyMaster(['INFO', 'commandstats'])).map(String).join('\n');
        const calls = (command: string) =>
          [...stats.matchAll(new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'gm'))].reduce((sum, match) => sum + Number(match[1]), 0);
        expect(calls('evalsha')).toBeGreaterThan(0);
        expect(calls('eval')).toBe(0);
      } finally {
        await adapter.close();
      }
    });

    it('a presence write that Redis refuses is reported as a failure', async () => {
      const prefix = `refused${++prefixes}`;
      const { adapter, node } = await attached(prefix, 'refused-node');
      try {
        // Something else's value where the room's hosts should be: the script's HSET fails there.
        const hosts = `${prefix}:{room:taken}:nodes`;
        await ('masters' in backend.admin
          ? (backend.admin as RedisClusterClient).sendCommand(hosts, false, ['SET', hosts, 'not a hash'])
          : (backend.admin as RedisClient).sendCommand(['SET', hosts, 'not a hash']));
        await adapter.track!({ kind: 'connect', id: 'c-1', user: undefined });
        await adapter.track!({ kind: 'join', id: 'c-1', room: 'taken' });
        await expect.poll(() => node.failures.length).toBeGreaterThan(0);
        expect(String(node.failures[0])).toMatch(/WRONGTYPE/);
      } finally {
        await adapter.close();
      }
    });

    describe('presence reads are bounded', () => {
      it('a room with more members than maxPresenceEntries: its size answers, its members are refused with a clear error, and health is not blamed', async () => {
        const prefix = `limit${++prefixes}`;
        const { adapter, node } = await attached(prefix, 'limit-node', { maxPresenceEntries: 5 });
        try {
          for (let i = 0; i < 6; i++) {
            void adapter.track!({ kind: 'connect', id: `c-${i}`, user: `u${i}` });
            void adapter.track!({ kind: 'join', id: `c-${i}`, room: 'big' });
            void adapter.track!({ kind: 'join', id: `c-${i}`, room: `own${i}` });
          }
          const presence = adapter.presence!;
          expect(await presence.roomSize('big')).toBe(6);
          for (const read of [presence.roomMembers('big'), presence.roomUsers('big'), presence.rooms(), presence.onlineUsers()]) {
            await expect(read).rejects.toThrow(RangeError);
          }
          await expect(presence.roomMembers('big')).rejects.toThrow(
            /^presence roomMembers would read 6 entries, more than maxPresenceEntries \(5\): not read$/,
          );
          // Under the limit, the same reads answer.
          expect(await presence.roomMembers('own1')).toEqual(['c-1']);
          expect(await presence.userConnections('u1')).toEqual(['c-1']);
          expect(node.failures).toEqual([]);
        } finally {
          await adapter.close();
        }
      });

      it('a room’s size and members read only the room and the nodes hosting it, however many nodes the cluster has', async () => {
        const prefix = `bounded${++prefixes}`;
        // Slow heartbeats: nothing but the reads below runs while Redis is watched.
        const options = { nodeTimeoutMs: 60_000, heartbeatIntervalMs: 30_000 };
        const host = await attached(prefix, 'hostnode', options);
        const reader = await attached(prefix, 'readernode', options);
        // Forty more live nodes, each with a member of a room of its own.
        const admin = backend.admin;
        const live = `${prefix}:{nodes}`;
        const others = Array.from({ length: 40 }, (_, i) => `othernode${i}.1`);
        const send = (key: string, args: string[]) =>
          'masters' in admin ? (admin as RedisClusterClient).sendCommand(key, false, args) : (admin as RedisClient).sendCommand(args);
        for (const other of others) {
          await send(live, ['HSET', live, other, String(Date.now() + 3_600_000)]);
          await send(`${prefix}:{room:theirs}:nodes`, ['HSET', `${prefix}:{room:theirs}:nodes`, other, '1']);
          await send(`${prefix}:{room:theirs}:node:${other}`, ['HSET', `${prefix}:{room:theirs}:node:${other}`, `${other}-c`, '']);
        }
        const monitors = backend.masters();
        const lines: string[] = [];
        try {
          await host.adapter.track!({ kind: 'connect', id: 'hostnode-1', user: undefined });
          await host.adapter.track!({ kind: 'join', id: 'hostnode-1', room: 'mine' });
          const presence = reader.adapter.presence!;
          expect(await presence.nodes()).toHaveLength(42);
          expect(await presence.roomSize('theirs')).toBe(40);
          for (const monitor of monitors) {
            await monitor.connect();
            await monitor.monitor((line) => void lines.push(String(line)));
          }
          expect(await presence.roomSize('mine')).toBe(1);
          expect(await presence.roomMembers('mine')).toEqual(['hostnode-1']);
          // MONITOR reports asynchronously: a marker on each server says everything before it arrived.
          await backend.everyMaster(['ECHO', 'marker']);
          await expect.poll(() => lines.filter((line) => line.includes('"marker"')).length).toBe(monitors.length);
        } finally {
          for (const monitor of monitors) await monitor.close().catch(() => monitor.destroy());
          await Promise.all([host.adapter.close(), reader.adapter.close()]);
        }
        const commands = lines.filter((line) => !line.includes('"marker"'));
        expect(commands.length).toBeGreaterThan(0);
        // No command of the reads named another node, nor walked the table of every node.
        expect(commands.filter((line) => line.includes('othernode'))).toEqual([]);
        const onLive = commands.filter((line) => line.includes(`"${live}"`));
        expect(onLive.length).toBeGreaterThan(0);
        for (const line of onLive) expect(line).toMatch(/"(evalsha|EVALSHA|HMGET|TIME)"/);
        expect(onLive.filter((line) => /"(HGETALL|HSCAN|HKEYS|HVALS|hgetall|hscan)"/.test(line))).toEqual([]);
      });
    });
  });
}
