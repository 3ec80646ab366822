import type { InterestKey } from '../interest.js';
import { NodePresence } from '../node-presence.js';
import type { Presence, PresenceChange } from '../presence.js';
import { Keys } from './keys.js';
import type { RedisLink } from './link.js';
import { Liveness } from './liveness.js';
import { PresenceReads } from './presence-reads.js';
import { apply, index, isNoScript, SCRIPTS } from './scripts.js';

/** Connections per script call when a room's or user's entries are written; more make several calls. */
const WRITE_CHUNK = 1000;

export interface RedisPresenceOptions {
  readonly prefix: string;
  readonly nodeId: string;
  readonly nodeTimeoutMs: number;
  /** Most entries a read collects (`maxPresenceEntries`); a larger answer is refused. */
  readonly maxEntries: number;
  /** A write failed while the link was up, or removing a dead node did. */
  readonly failed: (error: unknown, what: string) => void;
}

/**
 * This node's presence in Redis, and cluster-wide reads of everyone's.
 *
 * Every change is applied at once to a local `NodePresence` (the truth for
 * this node); the rooms and users it touched are written at the end of the
 * event-loop turn, each as its local copy now says (so writes can be
 * repeated without harm): one script call per room or user touched, on that
 * room's or user's slot, and one for this node's index. When writes cannot
 * be trusted to have landed — the link dropped, a shard restarted or lost
 * its scripts, the heartbeat lapsed — the node registers as a new instance
 * and writes its entries whole from the local copy; the old instance's are
 * removed.
 */
export class RedisPresence implements Presence {
  readonly #link: RedisLink;
  readonly #keys: Keys;
  readonly #options: RedisPresenceOptions;
  readonly #local = new NodePresence();
  readonly #liveness: Liveness;
  readonly #reads: PresenceReads;
  /** Rooms and users touched this turn, with the connections whose entries changed. */
  #dirty = new Map<InterestKey, Set<string>>();
  #flushQueued = false;
  /** Set when Redis may not hold what the local copy holds. */
  #stale = true;
  #rebuilding: Promise<void> | undefined;
  #closed = false;

  constructor(link: RedisLink, options: RedisPresenceOptions) {
    this.#link = link;
    this.#options = options;
    this.#keys = new Keys(options.prefix);
    this.#liveness = new Liveness(link, this.#keys, options);
    this.#reads = new PresenceReads(link, this.#keys, this.#liveness, options.maxEntries);
  }

  /** This node's own presence, as every change tracked so far left it. */
  get local(): NodePresence {
    return this.#local;
  }

  /** Applies a change here and queues its write; returns the entry as it was before it (`NodePresence.apply`). */
  track(change: PresenceChange): { user: string | undefined; rooms: string[] } | undefined {
    const before = this.#local.apply(change);
    if (this.#closed) return before;
    const { id } = change;
    switch (change.kind) {
      case 'connect':
        if (change.user !== undefined) this.#touch(`user:${change.user}`, id);
        break;
      case 'join':
      case 'leave':
        this.#touch(`room:${change.room}`, id);
        break;
      case 'bind':
        if (before === undefined) break;
        if (before.user !== undefined) this.#touch(`user:${before.user}`, id);
        if (change.user !== undefined) this.#touch(`user:${change.user}`, id);
        // Each room's entry of the connection holds its user.
        for (const room of this.#local.connections.get(id)?.rooms ?? []) this.#touch(`room:${room}`, id);
        break;
      case 'disconnect':
        if (before === undefined) break;
        for (const room of before.rooms) this.#touch(`room:${room}`, id);
        if (before.user !== undefined) this.#touch(`user:${before.user}`, id);
        break;
    }
    return before;
  }

  /**
   * Registers a new instance of this node and writes its entries whole. Called when the link comes (back)
   * up. Never rejects: a failure with the link up is reported, and the next heartbeat tries again.
   */
  rebuild(): Promise<void> {
    this.#stale = true;
    this.#rebuilding ??= this.#rebuild()
      .finally(() => (this.#rebuilding = undefined))
      .catch((error: unknown) => {
        if (this.#link.isReady) this.#options.failed(error, 'presence rebuild');
      });
    return this.#rebuilding;
  }

  /** Renews the heartbeat, and rebuilds if this node's instance lapsed or its entries may be stale. */
  async beat(): Promise<void> {
    if (!this.#link.isReady || this.#closed) return;
    if (this.#stale) return this.rebuild();
    if (!(await this.#liveness.beat())) await this.rebuild();
  }

  /** Removes this node and its entries at once (graceful shutdown). */
  async close(): Promise<void> {
    this.#closed = true;
    this.#dirty.clear();
    await this.#rebuilding;
    if (!this.#link.isReady) return;
    const hosted: InterestKey[] = [];
    for (const room of this.#local.rooms.keys()) hosted.push(`room:${room}`);
    for (const user of this.#local.users.keys()) hosted.push(`user:${user}`);
    await this.#liveness.leave(hosted);
  }

  nodes(): Promise<string[]> {
    return this.#ask(() => this.#reads.nodes());
  }

  rooms(): Promise<Record<string, number>> {
    return this.#ask(() => this.#reads.rooms());
  }

  roomSize(room: string): Promise<number> {
    return this.#ask(() => this.#reads.roomSize(room));
  }

  roomMembers(room: string): Promise<string[]> {
    return this.#ask(() => this.#reads.roomMembers(room));
  }

  roomUsers(room: string): Promise<string[]> {
    return this.#ask(() => this.#reads.roomUsers(room));
  }

  userConnections(user: string): Promise<string[]> {
    return this.#ask(() => this.#reads.userConnections(user));
  }

  onlineUsers(): Promise<string[]> {
    return this.#ask(() => this.#reads.onlineUsers());
  }

  /** A node reads its own writes: a rebuild under way lands first, then what waits for the end of the turn. */
  async #ask<T>(read: () => Promise<T>): Promise<T> {
    await this.#rebuilding;
    void this.#flush();
    return read();
  }

  #touch(key: InterestKey, id: string): void {
    let ids = this.#dirty.get(key);
    if (ids === undefined) this.#dirty.set(key, (ids = new Set()));
    ids.add(id);
    if (!this.#flushQueued) {
      this.#flushQueued = true;
      queueMicrotask(() => void this.#flush());
    }
  }

  /**
   * Writes every room and user touched since the last flush, as the local copy says they are now.
   * Every call is queued in this same turn, so on each shard they run in the order changes were made.
   * Never rejects: a failed write marks the copy stale (the next heartbeat rewrites it whole) and is reported.
   */
  #flush(): Promise<void> {
    this.#flushQueued = false;
    const dirty = this.#dirty;
    this.#dirty = new Map();
    const instance = this.#liveness.instance;
    // While the link is down or a rebuild is due, the local copy holds these changes; the rebuild writes them.
    if (dirty.size === 0 || this.#stale || instance === undefined || !this.#link.isReady) {
      if (dirty.size > 0 && !this.#link.isReady) this.#stale = true;
      return Promise.resolve();
    }
    const writes: Array<Promise<unknown>> = [];
    let sizes: string[] = [];
    for (const [key, ids] of dirty) {
      const room = key.startsWith('room:');
      const name = key.slice(5);
      const members = room ? this.#local.rooms.get(name) : this.#local.users.get(name);
      let ops: string[] = [];
      for (const id of ids) {
        if (members?.has(id)) ops.push('+', id, room ? (this.#local.connections.get(id)?.user ?? '') : '');
        else ops.push('-', id);
        if (ops.length >= 3 * WRITE_CHUNK) {
          writes.push(apply.call(this.#link, [this.#keys.hosts(key), this.#keys.members(key, instance)], [instance, ...ops]));
          ops = [];
        }
      }
      if (ops.length > 0)
        writes.push(apply.call(this.#link, [this.#keys.hosts(key), this.#keys.members(key, instance)], [instance, ...ops]));
      sizes.push(room ? 'r' : 'u', name, String(members?.size ?? 0));
      if (sizes.length >= 3 * WRITE_CHUNK) {
        writes.push(this.#index(instance, sizes));
        sizes = [];
      }
    }
    if (sizes.length > 0) writes.push(this.#index(instance, sizes));
    return Promise.all(writes).then(
      () => {},
      (error: unknown) => {
        this.#stale = true;
        // A shard without the scripts (restarted, failed over, flushed): load them and write everything again.
        if (isNoScript(error)) void this.rebuild();
        else if (this.#link.isReady) this.#options.failed(error, 'presence write');
      },
    );
  }

  #index(instance: string, sizes: string[]): Promise<unknown> {
    return index.call(this.#link, [this.#keys.index(instance, 'rooms'), this.#keys.index(instance, 'users')], sizes);
  }

  async #rebuild(): Promise<void> {
    if (!this.#link.isReady || this.#closed) return;
    // Loaded on every master first, on the connections the writes below take: they find the scripts there.
    await Promise.all(SCRIPTS.map((script) => this.#link.everyMaster(['SCRIPT', 'LOAD', script.source])));
    // Registered before anything is written, so that no reader takes the new instance's entries for a dead one's.
    await this.#liveness.register();
    if (this.#closed) return;
    // Changes tracked while this was under way are in the local copy: everything is written as it is now.
    this.#dirty = new Map();
    for (const [room, ids] of this.#local.rooms) this.#dirty.set(`room:${room}`, new Set(ids));
    for (const [user, ids] of this.#local.users) this.#dirty.set(`user:${user}`, new Set(ids));
    this.#stale = false;
    await this.#flush();
  }
}
