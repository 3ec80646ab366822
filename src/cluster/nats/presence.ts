import { randomBytes } from 'node:crypto';
import type { KV, KvEntry } from 'nats';
import { PresenceLimitError, refuseOverLimit } from '../core/engine.js';
import { NodePresence } from '../node-presence.js';
import { sortedRecord, type Presence, type PresenceChange } from '../presence.js';
import { isStale, readAll, valueOf, type Buckets } from './buckets.js';
import { indexPart, memberListValue, writeIndex, type Index, type IndexPart, type MemberList } from './entries.js';
import { tokenOf } from './names.js';

type Kind = 'room' | 'user' | 'members';

export interface NatsPresenceOptions {
  readonly nodeId: string;
  readonly entryTtlMs: number;
  /** A whole read of a bucket not done within this long stops, and rejects. */
  readonly readTimeoutMs: number;
  /** A read whose answer would pass this many entries rejects (`maxPresenceEntries`). */
  readonly maxEntries: number;
  /** A write failed while the link was up. */
  readonly failed: (error: unknown, what: string) => void;
}

/**
 * This node's presence in JetStream key-value, and cluster-wide reads of everyone's. Every change is
 * applied at once to a local `NodePresence` (the truth for this node, and what answers for it in
 * every read, so a node reads its own writes at once); the keys it touched are marked and written
 * from that copy, one write in flight per key, so a burst of changes to a room costs a few writes.
 */
export class NatsPresence implements Presence {
  readonly #options: NatsPresenceOptions;
  readonly #local = new NodePresence();
  /** Open while the link is up. */
  #buckets: Buckets | undefined;
  /** This node's current registration ('' before the first). */
  #owner = '';
  #revision = 0;
  /** Earlier registrations of this node: dropped from whatever index this node writes. */
  readonly #retired = new Set<string>();
  readonly #dirty = new Map<string, { kind: Kind; name: string }>();
  readonly #writing = new Map<string, Promise<void>>();
  /** When this registration last wrote each of its keys, oldest first. */
  readonly #written = new Map<string, number>();
  #flushQueued = false;
  /** Set when a write failed with the link up: the next heartbeat registers anew. */
  #stale = false;
  #registering: Promise<void> | undefined;
  #closed = false;

  constructor(options: NatsPresenceOptions) {
    this.#options = options;
  }

  /** This node's own presence, as every change tracked so far left it. */
  get local(): NodePresence {
    return this.#local;
  }

  /** Whether reads can be answered: the buckets are open and this node is registered. */
  get ready(): boolean {
    return this.#buckets !== undefined && this.#owner !== '' && this.#registering === undefined;
  }

  /** Applies a change here and marks the keys it touched; returns the entry as it was before it (`NodePresence.apply`). */
  track(change: PresenceChange): { user: string | undefined; rooms: string[] } | undefined {
    const before = this.#local.apply(change);
    if (this.#closed) return before;
    switch (change.kind) {
      case 'connect':
        if (change.user !== undefined) this.#mark('user', change.user);
        break;
      case 'join':
      case 'leave':
        this.#mark('room', change.room);
        this.#mark('members', change.room);
        break;
      case 'bind':
        if (before === undefined) break;
        if (before.user !== undefined) this.#mark('user', before.user);
        if (change.user !== undefined) this.#mark('user', change.user);
        for (const room of this.#local.connections.get(change.id)?.rooms ?? []) this.#mark('members', room);
        break;
      case 'disconnect':
        if (before === undefined) break;
        for (const room of before.rooms) {
          this.#mark('room', room);
          this.#mark('members', room);
        }
        if (before.user !== undefined) this.#mark('user', before.user);
        break;
    }
    return before;
  }

  /**
   * The link is (back) up: opens the buckets (`open`), registers this node anew and writes every entry
   * of it; reads wait for it. The server may have restarted empty, or kept what this node wrote before
   * the link dropped and missed what changed since; a fresh registration makes both cases one.
   */
  register(open: () => Promise<Buckets>): Promise<void> {
    this.#registering ??= (async () => {
      const buckets = await open();
      if (this.#closed) return;
      this.#buckets = buckets;
      await this.#register(buckets);
    })().finally(() => {
      this.#registering = undefined;
      this.#schedule();
    });
    return this.#registering;
  }

  /** The link is down: nothing is written until `register`. */
  disconnected(): void {
    this.#buckets = undefined;
  }

  /** Renews the heartbeat (one write), registers anew if it had lapsed, and rewrites the entries due for renewal. */
  async beat(): Promise<void> {
    const buckets = this.#buckets;
    if (buckets === undefined || this.#owner === '' || this.#registering !== undefined || this.#closed) return;
    if (this.#stale) return this.register(async () => buckets);
    try {
      this.#revision = await buckets.nodes.update(this.#owner, this.#options.nodeId, this.#revision);
    } catch (error) {
      // Lapsed (this process stalled past nodeTimeoutMs, or the server lost it): everyone has left it out.
      if (isStale(error)) return this.register(async () => buckets);
      throw error;
    }
    const due = Date.now() - this.#options.entryTtlMs / 2;
    for (const [id, at] of this.#written) {
      if (at > due) break;
      this.#written.delete(id);
      const colon = id.indexOf(':');
      this.#mark(id.slice(0, colon) as Kind, id.slice(colon + 1));
    }
  }

  /** Takes this node out of presence: its heartbeat first (every reader leaves it out from then on), then its entries. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#dirty.clear();
    const buckets = this.#buckets;
    const owner = this.#owner;
    if (buckets === undefined || owner === '') return;
    await Promise.allSettled([...this.#writing.values(), this.#registering]);
    await buckets.purge(buckets.nodes, owner);
    await Promise.all(
      [...this.#written.keys()].map((id) => {
        const colon = id.indexOf(':');
        return this.#write(buckets, owner, id.slice(0, colon) as Kind, id.slice(colon + 1), true);
      }),
    );
  }

  async nodes(): Promise<string[]> {
    const entries = await this.#read((buckets) => this.#readAll(buckets.nodes, 'nodes'));
    const ids = new Set(entries.filter((entry) => entry.key !== this.#owner).map((entry) => entry.string()));
    ids.add(this.#options.nodeId);
    return [...ids].sort();
  }

  async rooms(): Promise<Record<string, number>> {
    const [entries, live] = await this.#read((buckets) =>
      Promise.all([this.#readAll(buckets.rooms, 'rooms'), this.#allLive(buckets, 'rooms')]),
    );
    const sizes: Record<string, number> = {};
    for (const [room, ids] of this.#local.rooms) sizes[room] = ids.size;
    for (const entry of entries) {
      const index = entry.json<Index>();
      for (const [owner, part] of Object.entries(index.owners)) {
        if (live.has(owner)) sizes[index.name] = (sizes[index.name] ?? 0) + part.n;
      }
    }
    for (const [room, size] of Object.entries(sizes)) if (size === 0) delete sizes[room];
    return sortedRecord(sizes);
  }

  async roomSize(room: string): Promise<number> {
    const others = await this.#read((buckets) => this.#others(buckets, buckets.rooms, room));
    return others.reduce((sum, [, part]) => sum + part.n, this.#local.rooms.get(room)?.size ?? 0);
  }

  async roomMembers(room: string): Promise<string[]> {
    const lists = await this.#memberLists(room, 'roomMembers');
    return lists.flatMap((list) => list.map(([id]) => id)).sort();
  }

  async roomUsers(room: string): Promise<string[]> {
    const lists = await this.#memberLists(room, 'roomUsers');
    return lists.flatMap((list) => list.flatMap(([, user]) => user ?? [])).sort();
  }

  async userConnections(user: string): Promise<string[]> {
    const others = await this.#read((buckets) => this.#others(buckets, buckets.users, user));
    const ids = [...(this.#local.users.get(user) ?? [])];
    refuseOverLimit(
      'userConnections',
      others.reduce((sum, [, part]) => sum + part.n, ids.length),
      this.#options.maxEntries,
    );
    for (const [, part] of others) {
      if (part.ids === undefined)
        throw new PresenceLimitError(`user ${JSON.stringify(user)} has more connections on one node than its index lists`);
      ids.push(...part.ids);
    }
    return ids.sort();
  }

  async onlineUsers(): Promise<string[]> {
    const [entries, live] = await this.#read((buckets) =>
      Promise.all([this.#readAll(buckets.users, 'onlineUsers'), this.#allLive(buckets, 'onlineUsers')]),
    );
    const users = new Set(this.#local.users.keys());
    for (const entry of entries) {
      const index = entry.json<Index>();
      if (Object.keys(index.owners).some((owner) => live.has(owner))) users.add(index.name);
    }
    return [...users].sort();
  }

  /** This node's members of `room`, then every other live owner's, as `[id, user]` lists. */
  async #memberLists(room: string, what: string): Promise<Array<ReadonlyArray<readonly [string, string | null]>>> {
    const here = [...(this.#local.rooms.get(room) ?? [])].map((id) => [id, this.#local.connections.get(id)?.user ?? null] as const);
    const lists = await this.#read(async (buckets) => {
      const others = await this.#others(buckets, buckets.rooms, room);
      refuseOverLimit(
        what,
        others.reduce((sum, [, part]) => sum + part.n, here.length),
        this.#options.maxEntries,
      );
      const values = await Promise.all(others.map(([owner]) => valueOf(buckets.members, `${tokenOf(room)}.${owner}`)));
      return values.flatMap((entry) => {
        // Not written yet (the index was, a moment before): it counts once it is.
        if (entry === undefined) return [];
        const list = entry.json<MemberList>();
        if (list.name !== room) return [];
        if (list.members === undefined)
          throw new PresenceLimitError(`room ${JSON.stringify(room)} has more members on one node than its lists hold`);
        return [list.members];
      });
    });
    return [here, ...lists];
  }

  /** The parts of other live owners in the index of `name`. */
  async #others(buckets: Buckets, bucket: KV, name: string): Promise<Array<[string, IndexPart]>> {
    const entry = await valueOf(bucket, tokenOf(name));
    if (entry === undefined) return [];
    const index = entry.json<Index>();
    if (index.name !== name) return [];
    const parts = Object.entries(index.owners).filter(([owner]) => owner !== this.#owner);
    const live = await Promise.all(parts.map(([owner]) => valueOf(buckets.nodes, owner)));
    return parts.filter((_, i) => live[i] !== undefined);
  }

  /** Every live owner but this one. */
  async #allLive(buckets: Buckets, what: string): Promise<Set<string>> {
    const entries = await this.#readAll(buckets.nodes, what);
    return new Set(entries.map((entry) => entry.key).filter((owner) => owner !== this.#owner));
  }

  #readAll(bucket: KV, what: string): Promise<KvEntry[]> {
    return readAll(bucket, { what, limit: this.#options.maxEntries, timeoutMs: this.#options.readTimeoutMs });
  }

  /** Reads once this node is registered: a registration under way (the link just came back) lands first. */
  async #read<T>(read: (buckets: Buckets) => Promise<T>): Promise<T> {
    await this.#registering?.catch(() => {});
    const buckets = this.#buckets;
    if (buckets === undefined || !this.ready) throw new Error('presence is not registered on NATS');
    return read(buckets);
  }

  #mark(kind: Kind, name: string): void {
    this.#dirty.set(`${kind}:${name}`, { kind, name });
    this.#schedule();
  }

  /** Writes what is marked at the end of this turn. */
  #schedule(): void {
    if (this.#flushQueued || this.#dirty.size === 0) return;
    this.#flushQueued = true;
    queueMicrotask(() => this.#flush());
  }

  #flush(): void {
    this.#flushQueued = false;
    const buckets = this.#buckets;
    const owner = this.#owner;
    // While the link is down (or a registration is under way) the local copy holds every change; `register` writes them.
    if (buckets === undefined || owner === '' || this.#registering !== undefined || this.#closed) return;
    for (const [id, { kind, name }] of this.#dirty) {
      if (this.#writing.has(id)) continue;
      this.#dirty.delete(id);
      const write = this.#write(buckets, owner, kind, name, false).then(
        (present) => {
          if (owner !== this.#owner) return;
          this.#written.delete(id);
          if (present) this.#written.set(id, Date.now());
        },
        (error: unknown) => {
          if (this.#buckets !== buckets || this.#closed) return;
          this.#stale = true;
          this.#options.failed(error, 'presence write');
        },
      );
      this.#writing.set(
        id,
        write.finally(() => {
          this.#writing.delete(id);
          if (this.#dirty.has(id)) this.#schedule();
        }),
      );
    }
  }

  /** Writes one key as the local copy says it is now (or removes this owner's part of it, `gone`); whether it holds something of this owner after. */
  async #write(buckets: Buckets, owner: string, kind: Kind, name: string, gone: boolean): Promise<boolean> {
    if (kind === 'members') {
      const key = `${tokenOf(name)}.${owner}`;
      const ids = gone ? undefined : this.#local.rooms.get(name);
      if (ids === undefined) {
        await buckets.purge(buckets.members, key);
        return false;
      }
      const members = [...ids].map((id) => [id, this.#local.connections.get(id)?.user ?? null] as const);
      await buckets.members.put(key, memberListValue(name, members));
      return true;
    }
    const ids = gone ? undefined : (kind === 'room' ? this.#local.rooms : this.#local.users).get(name);
    const part = ids === undefined ? undefined : indexPart(ids, Date.now(), kind === 'user');
    const expired = Date.now() - this.#options.entryTtlMs;
    // Parts of owners long gone (they would have renewed them) and of this node's earlier registrations go.
    await writeIndex(kind === 'room' ? buckets.rooms : buckets.users, name, owner, part, (other, otherPart) => {
      return !this.#retired.has(other) && otherPart.at > expired;
    });
    return part !== undefined;
  }

  async #register(buckets: Buckets): Promise<void> {
    if (this.#closed) return;
    const previous = this.#owner;
    if (previous !== '') {
      this.#retired.add(previous);
      // Left out of every answer from now on, if the server still had it.
      await buckets.purge(buckets.nodes, previous);
    }
    const owner = randomBytes(6).toString('hex');
    this.#revision = await buckets.nodes.create(owner, this.#options.nodeId);
    this.#owner = owner;
    this.#stale = false;
    this.#written.clear();
    for (const room of this.#local.rooms.keys()) {
      this.#mark('room', room);
      this.#mark('members', room);
    }
    for (const user of this.#local.users.keys()) this.#mark('user', user);
  }
}
