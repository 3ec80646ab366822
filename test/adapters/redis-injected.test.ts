import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisAdapter, type RedisClient } from '../../src/redis.js';
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
    expect(await client.sMembers('owned:nodes')).toEqual([]);
  });

  it('refuses both a url and a client, or neither', () => {
    expect(() => createRedisAdapter({})).toThrow(TypeError);
    expect(() => createRedisAdapter({ url: 'redis://127.0.0.1:1', client: createClient() as RedisClient })).toThrow(
      /exactly one of options.url or options.client/,
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

  it('refuses a url that is not redis://', () => {
    expect(() => createRedisAdapter({ url: 'http://127.0.0.1:6379' })).toThrow(/^options.url must be a redis:\/\/ or rediss:\/\/ URL/);
  });
});
