import { createClient, createCluster } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisAdapter, type RedisClient, type RedisClusterClient } from '../../src/redis.js';
import { startRedisCluster } from '../helpers/redis-cluster.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { adapterConformance } from '../../src/testing/index.js';

let redis: TestRedis;
const injected: RedisClient[] = [];
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await Promise.all(injected.map((client) => client.close().catch(() => client.destroy())));
});

/** A client of the application's own, not yet connected: the adapter connects it. */
function ownClient(): RedisClient {
  const client = createClient({ url: redis.url }) as RedisClient;
  injected.push(client);
  return client;
}

let clusters = 0;
adapterConformance(
  { describe, it, expect },
  {
    name: 'redis, with injected clients',
    cluster: () => {
      const prefix = `injected${++clusters}`;
      return () => createRedisAdapter({ client: ownClient(), prefix });
    },
  },
);

describe('Redis adapter with the application’s own cluster client', () => {
  it('connects a createCluster() client, comes up, answers presence, and leaves the client open when it closes', async () => {
    const redisCluster = await startRedisCluster();
    const cluster = createCluster({ rootNodes: [...redisCluster.rootNodes] }) as unknown as RedisClusterClient;
    cluster.on('error', () => {});
    const adapter = createRedisAdapter({ client: cluster, prefix: 'owned-cluster' });
    const links: boolean[] = [];
    const failures: unknown[] = [];
    await adapter.attach({
      nodeId: 'n1',
      deliver: () => {},
      dropped: () => {},
      lost: () => {},
      linkChanged: (up) => void links.push(up),
      failed: (error) => void failures.push(error),
      presence: undefined as never,
    });
    try {
      expect(cluster.isReady).toBe(true);
      // The link came up without ever going down: attach reports nothing then.
      expect(links).toEqual([]);
      await adapter.track!({ kind: 'connect', id: 'n1-1', user: 'ada' });
      await adapter.track!({ kind: 'join', id: 'n1-1', room: 'lobby' });
      expect(await adapter.presence!.nodes()).toEqual(['n1']);
      expect(await adapter.presence!.roomMembers('lobby')).toEqual(['n1-1']);
      expect(await adapter.presence!.userConnections('ada')).toEqual(['n1-1']);
      expect(failures).toEqual([]);
    } finally {
      await adapter.close();
    }
    expect(cluster.isReady).toBe(true);
    expect(await cluster.sendCommand('owned-cluster:{nodes}', true, ['HLEN', 'owned-cluster:{nodes}'])).toBe(0);
    await cluster.close();
  }, 60_000);
});

describe('Redis adapter with the application’s own clients', () => {
  it('connects them if needed and leaves them open, and usable, when it closes', async () => {
    const client = ownClient();
    const subscriber = ownClient();
    const adapter = createRedisAdapter({ client, subscriber, prefix: 'owned' });
    await adapter.attach({
      nodeId: 'n1',
      deliver: () => {},
      dropped: () => {},
      lost: () => {},
      linkChanged: () => {},
      failed: () => {},
      presence: {
        nodes: async () => ['n1'],
        rooms: async () => ({}),
        roomSize: async () => 0,
        roomMembers: async () => [],
        roomUsers: async () => [],
        userConnections: async () => [],
        onlineUsers: async () => [],
      },
    });
    expect(client.isReady && subscriber.isReady).toBe(true);
    expect(await adapter.presence!.nodes()).toEqual(['n1']);
    await adapter.close();
    expect(await client.ping()).toBe('PONG');
    expect(subscriber.isOpen).toBe(true);
    // Its node is gone from Redis all the same.
    expect(await client.hLen('owned:{nodes}')).toBe(0);
  });

  it('refuses both a url and a client, or neither', () => {
    expect(() => createRedisAdapter({})).toThrow(TypeError);
    expect(() => createRedisAdapter({ url: 'redis://127.0.0.1:1', client: createClient() as RedisClient })).toThrow(
      /exactly one of options.url, options.cluster or options.client/,
    );
  });

  it.each<[string, Record<string, unknown>, ErrorConstructor, RegExp]>([
    ['a nodeTimeoutMs under a second', { nodeTimeoutMs: 10 }, RangeError, /^options.nodeTimeoutMs must be at least 1000, got 10$/],
    [
      'a heartbeat slower than half the timeout',
      { heartbeatIntervalMs: 6000 },
      RangeError,
      /^options.heartbeatIntervalMs must be at most half/,
    ],
    ['a prefix with braces', { prefix: 'a{b}' }, TypeError, /^options.prefix must be non-empty, without spaces or braces, got "a\{b\}"$/],
    ['a backlog of zero', { maxPublishBacklogBytes: 0 }, RangeError, /^options.maxPublishBacklogBytes must be within/],
    ['a non-number connect timeout', { connectTimeoutMs: '5' }, TypeError, /^options.connectTimeoutMs must be a finite number, got "5"$/],
  ])('checks its options in the runtime’s style: %s', (_what, options, kind, message) => {
    const create = () => createRedisAdapter({ url: 'redis://127.0.0.1:1', ...options });
    expect(create).toThrow(kind);
    expect(create).toThrow(message);
  });

  it('refuses a cluster without root nodes', () => {
    expect(() => createRedisAdapter({ cluster: { rootNodes: [] } })).toThrow(/^options.cluster.rootNodes must be a non-empty array/);
  });

  it('refuses a url that is not redis://', () => {
    expect(() => createRedisAdapter({ url: 'http://127.0.0.1:6379' })).toThrow(/^options.url must be a redis:\/\/ or rediss:\/\/ URL/);
  });
});
