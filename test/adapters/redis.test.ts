import { beforeAll } from 'vitest';
import { createRedisAdapter } from '../../src/redis.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { runAdapterSuite } from './conformance.js';

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});

let clusters = 0;
runAdapterSuite({
  name: 'redis',
  cluster: () => {
    // A prefix per test: nodes of one test never see another test's.
    const prefix = `conformance${++clusters}`;
    return () => createRedisAdapter({ url: redis.url, prefix });
  },
});
