import { beforeAll, describe, expect, it } from 'vitest';
import { createRedisAdapter } from '../../src/redis.js';
import { adapterConformance } from '../../src/testing/index.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});

let clusters = 0;
// The suite as berth/testing ships it, with vitest's describe, it and expect.
adapterConformance(
  { describe, it, expect },
  {
    name: 'redis',
    cluster: () => {
      // A prefix per test: nodes of one test never see another test's.
      const prefix = `conformance${++clusters}`;
      return () => createRedisAdapter({ url: redis.url, prefix });
    },
  },
);

describe('the Redis adapter subscribes per room and user', () => {
  it('the track of a join that makes a room wanted settles once Redis has the subscription; a second member’s asks nothing', async () => {
    const { createClient } = await import('redis');
    const admin = createClient({ url: redis.url });
    await admin.connect();
    const adapter = createRedisAdapter({ url: redis.url, prefix: 'tracked' });
    const node = {
      nodeId: 'tracked-node',
      deliver: () => {},
      dropped: () => {},
      lost: () => {},
      linkChanged: () => {},
      failed: () => {},
      presence: undefined as never,
    };
    await adapter.attach(node);
    try {
      expect(adapter.track!({ kind: 'connect', id: 'c-1', user: undefined })).toBeUndefined();
      const first = adapter.track!({ kind: 'join', id: 'c-1', room: 'r' });
      expect(first).toBeInstanceOf(Promise);
      await first;
      // Read on another connection after the promise settled: Redis has it.
      expect((await admin.pubSubNumSub('tracked:room:r'))['tracked:room:r']).toBe(1);
      adapter.track!({ kind: 'connect', id: 'c-2', user: undefined });
      expect(adapter.track!({ kind: 'join', id: 'c-2', room: 'r' })).toBeUndefined();
    } finally {
      await adapter.close();
      await admin.close();
    }
  });
});
