import type { PresenceChange } from './presence.js';

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
