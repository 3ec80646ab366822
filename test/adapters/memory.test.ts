import { createMemoryAdapter, createMemoryBus } from '../../src/index.js';
import { runAdapterSuite } from './conformance.js';

runAdapterSuite({
  name: 'memory',
  cluster: () => {
    const bus = createMemoryBus();
    return () => createMemoryAdapter(bus);
  },
});
