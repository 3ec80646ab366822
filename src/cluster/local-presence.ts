import type { Directory } from '../../machines/directory.js';
import { sortedRecord, type Presence } from './presence.js';

/** One node's presence, answered from its supervisor's directory: for adapters, and for runtimes whose adapter keeps none. */
export function directoryPresence(nodeId: string, directory: () => Directory): Presence {
  const ids = (members: Iterable<{ id: string }> | undefined) => [...(members ?? [])].map((entry) => entry.id).sort();
  return {
    nodes: async () => [nodeId],
    rooms: async () => sortedRecord(Object.fromEntries([...directory().rooms].map(([room, members]) => [room, members.size]))),
    roomSize: async (room) => directory().rooms.get(room)?.size ?? 0,
    roomMembers: async (room) => ids(directory().rooms.get(room)),
    roomUsers: async (room) => [...(directory().rooms.get(room) ?? [])].flatMap((entry) => entry.user ?? []).sort(),
    userConnections: async (user) => ids(directory().users.get(user)),
    onlineUsers: async () => [...directory().users.keys()].sort(),
  };
}
