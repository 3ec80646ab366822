import type { Adapter, AdapterNode, BroadcastMessage } from './adapter.js';
import { NodePresence } from './node-presence.js';
import { combinePresence, type Presence } from './presence.js';

interface BusMember {
  readonly node: AdapterNode;
  /** Who is on that node, as its `track` calls told: a broadcast goes only to nodes that host its target. */
  readonly hosts: NodePresence;
}

/** An in-process cluster medium that memory adapters share to form a cluster inside one process. */
export interface MemoryBus {
  /** Each attached node's own presence (read from its registry), by node id. */
  readonly nodes: Map<string, Presence>;
  /** Each attached node, by node id. */
  readonly members: Map<string, BusMember>;
}

/** Creates a bus to pass to several `createMemoryAdapter` calls. */
export function createMemoryBus(): MemoryBus {
  return { nodes: new Map(), members: new Map() };
}

function hosts(presence: NodePresence, message: BroadcastMessage): boolean {
  const { target } = message;
  return target.kind === 'all' || (target.kind === 'room' ? presence.rooms.has(target.room) : presence.users.has(target.user));
}

/**
 * The default adapter, and the reference for others: carries broadcasts to
 * every other runtime on the same bus that hosts someone of their target (a
 * member of the room, a connection of the user; everyone for `sendToAll`),
 * and answers presence by asking each of them. With its own private bus (the
 * default) a runtime is a cluster of one and `publish` reaches nobody. Nothing
 * crosses a wire, so nothing is lost on the way.
 */
export function createMemoryAdapter(shared?: MemoryBus): Adapter {
  const bus = shared ?? createMemoryBus();
  let self: BusMember | undefined;
  return {
    attach(node) {
      self = { node, hosts: new NodePresence() };
      bus.members.set(node.nodeId, self);
      bus.nodes.set(node.nodeId, node.presence);
    },
    publish(message) {
      if (self === undefined) return;
      for (const member of bus.members.values()) {
        if (member !== self && hosts(member.hosts, message)) member.node.deliver(message);
      }
    },
    // A private bus is a cluster of one for good (nobody else can reach it): what its node hosts is never asked.
    ...(shared !== undefined && {
      track(change) {
        self?.hosts.apply(change);
      },
    }),
    presence: combinePresence(() => bus.nodes),
    close() {
      if (self === undefined) return;
      bus.members.delete(self.node.nodeId);
      bus.nodes.delete(self.node.nodeId);
      self = undefined;
    },
  };
}
