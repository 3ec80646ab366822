import type { PresenceChange } from './adapter.js';
import { assertName } from './names.js';
import { ErrorCode, toBerthError } from './errors.js';

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

interface Entry {
  user: string | undefined;
  readonly rooms: Set<string>;
}

/**
 * One node's presence, kept from its `PresenceChange`s with room and user
 * indexes: the Redis adapter keeps one for its own node, to write its entries
 * again after Redis comes back.
 */
export class NodePresence {
  readonly connections = new Map<string, Entry>();
  readonly rooms = new Map<string, Set<string>>();
  readonly users = new Map<string, Set<string>>();

  /** Applies a change; returns the entry as it was before it (for a disconnect: what to remove). */
  apply(change: PresenceChange): { user: string | undefined; rooms: string[] } | undefined {
    const entry = this.connections.get(change.id);
    switch (change.kind) {
      case 'connect':
        this.connections.set(change.id, { user: undefined, rooms: new Set() });
        this.#bind(change.id, change.user);
        return undefined;
      case 'join':
        if (entry === undefined || entry.rooms.has(change.room)) return undefined;
        entry.rooms.add(change.room);
        add(this.rooms, change.room, change.id);
        return undefined;
      case 'leave':
        if (entry === undefined || !entry.rooms.delete(change.room)) return undefined;
        remove(this.rooms, change.room, change.id);
        return undefined;
      case 'bind': {
        const previous = entry?.user;
        this.#bind(change.id, change.user);
        return entry === undefined ? undefined : { user: previous, rooms: [] };
      }
      case 'disconnect': {
        if (entry === undefined) return undefined;
        const before = { user: entry.user, rooms: [...entry.rooms] };
        for (const room of entry.rooms) remove(this.rooms, room, change.id);
        if (entry.user !== undefined) remove(this.users, entry.user, change.id);
        this.connections.delete(change.id);
        return before;
      }
    }
  }

  #bind(id: string, user: string | undefined): void {
    const entry = this.connections.get(id);
    if (entry === undefined || entry.user === user) return;
    if (entry.user !== undefined) remove(this.users, entry.user, id);
    entry.user = user;
    if (user !== undefined) add(this.users, user, id);
  }
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

function add(index: Map<string, Set<string>>, key: string, id: string): void {
  let ids = index.get(key);
  if (ids === undefined) index.set(key, (ids = new Set()));
  ids.add(id);
}

function remove(index: Map<string, Set<string>>, key: string, id: string): void {
  const ids = index.get(key);
  if (ids === undefined) return;
  ids.delete(id);
  if (ids.size === 0) index.delete(key);
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
