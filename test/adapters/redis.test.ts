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
