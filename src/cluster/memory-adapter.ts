import type { Emitter } from 'mitt';
import { mitt } from '../util/mitt.js';
import type { Adapter, AdapterNode, BroadcastMessage } from './adapter.js';
import { combinePresence, type Presence } from './presence.js';

type BusEvents = { broadcast: { origin: string; message: BroadcastMessage } };

/** An in-process cluster medium that memory adapters share to form a cluster inside one process. */
export interface MemoryBus {
  readonly events: Emitter<BusEvents>;
  /** Each attached node's own presence (read from its registry), by node id. */
  readonly nodes: Map<string, Presence>;
}

/** Creates a bus to pass to several `createMemoryAdapter` calls. */
export function createMemoryBus(): MemoryBus {
  return { events: mitt<BusEvents>(), nodes: new Map() };
}

/**
 * The default adapter, and the reference for others: carries broadcasts over
 * a mitt bus to every other runtime on the same bus, and answers presence by
 * asking each of them (so it keeps no copy of anyone's registry). With its
 * own private bus (the default) a runtime is a cluster of one and `publish`
 * reaches nobody.
 */
export function createMemoryAdapter(bus: MemoryBus = createMemoryBus()): Adapter {
  let node: AdapterNode | undefined;
  const receive = ({ origin, message }: BusEvents['broadcast']) => {
    if (node !== undefined && origin !== node.nodeId) node.deliver(message);
  };
  return {
    attach(attached) {
      node = attached;
      bus.nodes.set(attached.nodeId, attached.presence);
      bus.events.on('broadcast', receive);
    },
    publish(message) {
      if (node !== undefined) bus.events.emit('broadcast', { origin: node.nodeId, message });
    },
    presence: combinePresence(() => bus.nodes),
    close() {
      bus.events.off('broadcast', receive);
      if (node !== undefined) bus.nodes.delete(node.nodeId);
      node = undefined;
    },
  };
}
