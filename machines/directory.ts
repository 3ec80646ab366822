import type { Target } from './types.js';

/** One registered connection as the supervisor knows it. */
export interface DirectoryEntry<Port, Ref> {
  readonly id: string;
  readonly ref: Ref;
  readonly port: Port;
  user: string | undefined;
  readonly rooms: Set<string>;
  /** Set once the connection began to disconnect; from then on it is in no room and no user. */
  leaving: boolean;
}

/** Plain-data view of a directory, as `toJSON()` (and so the inspector) shows it. */
export interface DirectoryView {
  connections: Record<string, { user: string | undefined; rooms: string[]; leaving: boolean }>;
  rooms: Record<string, string[]>;
  users: Record<string, string[]>;
}

/**
 * The supervisor's registry: connections, `room → members` and `user → connections`.
 *
 * It is mutated in place by the supervisor's actions, one event at a time, so
 * every operation costs O(1) (or O(rooms of one connection)) whatever the
 * number of connections: copying maps of 10 000 entries on every event would
 * make registration quadratic. Snapshots of the supervisor therefore share it.
 */
export class Directory<Port = unknown, Ref = unknown> {
  readonly connections = new Map<string, DirectoryEntry<Port, Ref>>();
  readonly rooms = new Map<string, Set<DirectoryEntry<Port, Ref>>>();
  readonly users = new Map<string, Set<DirectoryEntry<Port, Ref>>>();

  /** Adds a connection; false if the id is already registered. */
  register(id: string, ref: Ref, port: Port, user?: string): boolean {
    if (this.connections.has(id)) return false;
    const entry: DirectoryEntry<Port, Ref> = { id, ref, port, user: undefined, rooms: new Set(), leaving: false };
    this.connections.set(id, entry);
    if (user !== undefined) this.bind(id, user);
    return true;
  }

  /** True if the connection is registered and has not begun to leave. */
  isActive(id: string): boolean {
    const entry = this.connections.get(id);
    return entry !== undefined && !entry.leaving;
  }

  /** Adds an active connection to a room; false if it is leaving or unknown. */
  join(id: string, room: string): boolean {
    const entry = this.connections.get(id);
    if (entry === undefined || entry.leaving) return false;
    if (entry.rooms.has(room)) return true;
    entry.rooms.add(room);
    addTo(this.rooms, room, entry);
    return true;
  }

  /** Removes a connection from a room; false if it was not a member. */
  leave(id: string, room: string): boolean {
    const entry = this.connections.get(id);
    if (entry === undefined || !entry.rooms.delete(room)) return false;
    removeFrom(this.rooms, room, entry);
    return true;
  }

  /** Binds (or with `undefined`, unbinds) the user of an active connection; false if leaving or unknown. */
  bind(id: string, user: string | undefined): boolean {
    const entry = this.connections.get(id);
    if (entry === undefined || entry.leaving) return false;
    if (entry.user === user) return true;
    if (entry.user !== undefined) removeFrom(this.users, entry.user, entry);
    entry.user = user;
    if (user !== undefined) addTo(this.users, user, entry);
    return true;
  }

  /** Takes a connection out of every room and user; it stays registered until `remove`. */
  markLeaving(id: string): void {
    const entry = this.connections.get(id);
    if (entry === undefined || entry.leaving) return;
    entry.leaving = true;
    for (const room of entry.rooms) removeFrom(this.rooms, room, entry);
    entry.rooms.clear();
    if (entry.user !== undefined) removeFrom(this.users, entry.user, entry);
    entry.user = undefined;
  }

  /** Forgets a connection entirely. */
  remove(id: string): void {
    this.markLeaving(id);
    this.connections.delete(id);
  }

  /**
   * Calls `visit` for every active connection the target names, except the
   * connection `except`. Returns how many were visited. An empty or unknown
   * room or user costs one map lookup.
   */
  forEachRecipient(target: Target, except: string | undefined, visit: (entry: DirectoryEntry<Port, Ref>) => void): number {
    let members: Iterable<DirectoryEntry<Port, Ref>> | undefined;
    switch (target.kind) {
      case 'room':
        members = this.rooms.get(target.room);
        break;
      case 'user':
        members = this.users.get(target.user);
        break;
      case 'all':
        members = this.connections.values();
        break;
    }
    if (members === undefined) return 0;
    let count = 0;
    for (const entry of members) {
      if (entry.leaving || entry.id === except) continue;
      visit(entry);
      count++;
    }
    return count;
  }

  toJSON(): DirectoryView {
    const ids = (set: Set<DirectoryEntry<Port, Ref>>) => [...set].map((entry) => entry.id);
    const view: DirectoryView = { connections: {}, rooms: {}, users: {} };
    for (const [id, entry] of this.connections) {
      view.connections[id] = { user: entry.user, rooms: [...entry.rooms], leaving: entry.leaving };
    }
    for (const [room, members] of this.rooms) view.rooms[room] = ids(members);
    for (const [user, members] of this.users) view.users[user] = ids(members);
    return view;
  }
}

function addTo<K, V>(index: Map<K, Set<V>>, key: K, value: V): void {
  let set = index.get(key);
  if (set === undefined) {
    set = new Set();
    index.set(key, set);
  }
  set.add(value);
}

function removeFrom<K, V>(index: Map<K, Set<V>>, key: K, value: V): void {
  const set = index.get(key);
  if (set === undefined) return;
  set.delete(value);
  // An empty room or user is forgotten, so the maps only hold what is live.
  if (set.size === 0) index.delete(key);
}
