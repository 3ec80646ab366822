import type { Emitter } from 'mitt';
import { mitt } from './mitt.js';
import type { Adapter, AdapterNode, BroadcastMessage } from './adapter.js';

type BusEvents = { broadcast: { origin: string; message: BroadcastMessage } };

/** An in-process channel that memory adapters share to form a cluster inside one process. */
export type MemoryBus = Emitter<BusEvents>;

/** Creates a bus to pass to several `createMemoryAdapter` calls. */
export function createMemoryBus(): MemoryBus {
  return mitt<BusEvents>();
}

/**
 * The default adapter: carries broadcasts over a mitt bus to every other
 * runtime on the same bus. With its own private bus (the default) a runtime
 * is a cluster of one and `publish` reaches nobody.
 */
export function createMemoryAdapter(bus: MemoryBus = createMemoryBus()): Adapter {
  let node: AdapterNode | undefined;
  const receive = ({ origin, message }: BusEvents['broadcast']) => {
    if (node !== undefined && origin !== node.nodeId) node.deliver(message);
  };
  return {
    attach(attached) {
      node = attached;
      bus.on('broadcast', receive);
    },
    publish(message) {
      if (node !== undefined) bus.emit('broadcast', { origin: node.nodeId, message });
    },
    close() {
      bus.off('broadcast', receive);
      node = undefined;
    },
  };
}
