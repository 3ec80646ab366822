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
      /exactly one of `url` or `client`/,
    );
    expect(() => createRedisAdapter({ url: 'redis://127.0.0.1:1', nodeTimeoutMs: 10 })).toThrow(RangeError);
  });
});
