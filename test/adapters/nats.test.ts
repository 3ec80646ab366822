import { beforeAll, describe, expect, it } from 'vitest';
import { createNatsAdapter } from '../../src/nats.js';
import { adapterConformance } from '../../src/testing/index.js';
import { startNats, type TestNats } from '../helpers/nats.js';

let nats: TestNats;
beforeAll(async () => {
  nats = await startNats();
});

let clusters = 0;
// The suite as berth/testing ships it, with vitest's describe, it and expect.
adapterConformance(
  { describe, it, expect },
  {
    name: 'nats',
    cluster: () => {
      // A prefix per test: nodes of one test never see another test's subjects or buckets.
      const prefix = `conformance${++clusters}`;
      return () => createNatsAdapter({ servers: nats.url, prefix });
    },
  },
);
