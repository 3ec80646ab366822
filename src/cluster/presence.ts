import { ErrorCode, toBerthError } from '../util/errors.js';
import { assertName } from '../util/validate.js';

/** A change in who is where, reported to the adapter for cluster-wide presence. */
export type PresenceChange =
  | { readonly kind: 'connect'; readonly id: string; readonly user: string | undefined }
  | { readonly kind: 'disconnect'; readonly id: string }
  | { readonly kind: 'join' | 'leave'; readonly id: string; readonly room: string }
  | { readonly kind: 'bind'; readonly id: string; readonly user: string | undefined };

/**
 * Who is where, for the whole cluster. Every answer is a fresh read: an array
 * sorted for stable output, or a count. Entries of a node that died without
 * cleaning up are left out once its heartbeat lapses (see the adapter).
 * Rejects with `ERR_ADAPTER` while the cluster cannot be read.
 */
export interface Presence {
  /** Node ids of the live nodes, this one included. */
  nodes(): Promise<string[]>;
  /** Every room with at least one member, with its member count. */
  rooms(): Promise<Record<string, number>>;
  /** How many connections are in `room`. */
  roomSize(room: string): Promise<number>;
  /** Ids of the connections in `room`. */
  roomMembers(room: string): Promise<string[]>;
  /** The users of the connections in `room` that are bound to one: one entry per connection, so a user with two tabs there appears twice. */
  roomUsers(room: string): Promise<string[]>;
  /** Ids of the connections bound to `user`. */
  userConnections(user: string): Promise<string[]>;
  /** Users with at least one connection. */
  onlineUsers(): Promise<string[]>;
}

/** Answers for a set of nodes by asking each node's own `Presence` and merging the answers. */
export function combinePresence(nodes: () => Iterable<[string, Presence]>): Presence {
  const ask = <T>(question: (presence: Presence) => Promise<T>) => Promise.all([...nodes()].map(([, presence]) => question(presence)));
  const merged = async (question: (presence: Presence) => Promise<string[]>) => (await ask(question)).flat().sort();
  return {
    nodes: async () => [...nodes()].map(([id]) => id).sort(),
    rooms: async () => {
      const sizes: Record<string, number> = {};
      for (const rooms of await ask((presence) => presence.rooms())) {
        for (const [room, size] of Object.entries(rooms)) sizes[room] = (sizes[room] ?? 0) + size;
      }
      return sortedRecord(sizes);
    },
    roomSize: async (room) => (await ask((presence) => presence.roomSize(room))).reduce((sum, size) => sum + size, 0),
    roomMembers: (room) => merged((presence) => presence.roomMembers(room)),
    roomUsers: (room) => merged((presence) => presence.roomUsers(room)),
    userConnections: (user) => merged((presence) => presence.userConnections(user)),
    onlineUsers: async () => [...new Set((await ask((presence) => presence.onlineUsers())).flat())].sort(),
  };
}

export function sortedRecord(record: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * What `runtime.presence` hands out: names are checked at once (misuse throws
 * `TypeError`), and a failed read rejects with a `BerthError` `ERR_ADAPTER`.
 */
export function guardPresence(inner: Presence): Presence {
  const read = <T>(what: string, query: () => Promise<T>): Promise<T> => {
    let pending: Promise<T>;
    try {
      pending = Promise.resolve(query());
    } catch (error) {
      pending = Promise.reject(error);
    }
    return pending.catch((error: unknown) => {
      throw toBerthError(ErrorCode.ADAPTER, `cluster presence (${what}) unavailable`, error);
    });
  };
  return {
    nodes: () => read('nodes', () => inner.nodes()),
    rooms: () => read('rooms', () => inner.rooms()),
    roomSize(room) {
      assertName('room', room);
      return read('roomSize', () => inner.roomSize(room));
    },
    roomMembers(room) {
      assertName('room', room);
      return read('roomMembers', () => inner.roomMembers(room));
    },
    roomUsers(room) {
      assertName('room', room);
      return read('roomUsers', () => inner.roomUsers(room));
    },
    userConnections(user) {
      assertName('user', user);
      return read('userConnections', () => inner.userConnections(user));
    },
    onlineUsers: () => read('onlineUsers', () => inner.onlineUsers()),
  };
}
