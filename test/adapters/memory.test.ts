import { describe, expect, it } from 'vitest';
import { createMemoryAdapter, createMemoryBus } from '../../src/index.js';
import { adapterConformance } from '../../src/testing/index.js';

// The suite as berth/testing ships it, with vitest's describe, it and expect.
adapterConformance(
  { describe, it, expect },
  {
    name: 'memory',
    cluster: () => {
      const bus = createMemoryBus();
      return () => createMemoryAdapter(bus);
    },
  },
);
