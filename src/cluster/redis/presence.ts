import { NodePresence } from '../node-presence.js';
import { sortedRecord, type Presence, type PresenceChange } from '../presence.js';
import { within } from '../../util/timers.js';
import type { RedisClient } from './client.js';
import { heartbeat, query, register, unregister, update } from './scripts.js';

/** Operations per update script call when this node's entries are written whole. */
const REBUILD_CHUNK = 2000;

export interface RedisPresenceOptions {
  readonly prefix: string;
  readonly nodeId: string;
  readonly nodeTimeoutMs: number;
  /** A read that Redis has not answered within this long rejects. */
  readonly readTimeoutMs: number;
  /** A write failed while the link was up, or a read failed or timed out. */
  readonly failed: (error: unknown, what: string) => void;
}

/**
 * This node's presence in Redis, and cluster-wide reads of everyone's.
 *
 * Every change is applied at once to a local `NodePresence` (the truth for
 * this node) and written to Redis in one script call per event-loop turn.
 * When writes cannot be trusted to have landed — the link dropped, Redis
 * restarted, or the heartbeat lapsed and another node swept this one away —
 * the node's entries are rewritten whole from the local copy.
 */
export class RedisPresence implements Presence {
  readonly #client: RedisClient;
  readonly #options: RedisPresenceOptions;
  readonly #local = new NodePresence();
  #pending: string[] = [];
  #flushQueued = false;
  /** Set when Redis may not hold what the local copy holds. */
  #stale = true;
  #rebuilding: Promise<void> | undefined;
  #closed = false;

  constructor(client: RedisClient, options: RedisPresenceOptions) {
    this.#client = client;
    this.#options = options;
  }

  /** This node's own presence, as every change tracked so far left it. */
  get local(): NodePresence {
    return this.#local;
  }

  /** Applies a change here and queues its write; returns the entry as it was before it (`NodePresence.apply`). */
  track(change: PresenceChange): { user: string | undefined; rooms: string[] } | undefined {
    const before = this.#local.apply(change);
    if (this.#closed) return before;
    const op = operation(change, before);
    if (op === undefined) return before;
    for (const part of op) this.#pending.push(part);
    if (!this.#flushQueued) {
      this.#flushQueued = true;
      queueMicrotask(() => this.#flush());
    }
    return before;
  }

  /** Registers the node and writes its entries whole. Called when the link comes (back) up. */
  rebuild(): Promise<void> {
    this.#stale = true;
    this.#rebuilding ??= this.#rebuild().finally(() => (this.#rebuilding = undefined));
    return this.#rebuilding;
  }

  /** Renews the heartbeat, sweeps dead nodes, and rebuilds if this node's entries lapsed or may be stale. */
  async beat(): Promise<void> {
    if (!this.#client.isReady || this.#closed) return;
    if (this.#stale) return this.rebuild();
    const renewed = await heartbeat.eval(this.#client, this.#args(String(this.#options.nodeTimeoutMs)));
    if (renewed !== 1) await this.rebuild();
  }

  /** Removes this node and its entries at once (graceful shutdown). */
  async close(): Promise<void> {
    this.#closed = true;
    this.#pending = [];
    if (this.#client.isReady) await unregister.eval(this.#client, this.#args());
  }

  nodes(): Promise<string[]> {
    return this.#ask('nodes').then(strings);
  }

  async rooms(): Promise<Record<string, number>> {
    const flat = (await this.#ask('rooms')) as Array<string | number>;
    const sizes: Record<string, number> = {};
    for (let i = 0; i < flat.length; i += 2) sizes[String(flat[i])] = Number(flat[i + 1]);
    return sortedRecord(sizes);
  }

  async roomSize(room: string): Promise<number> {
    return Number(await this.#ask('roomSize', room));
  }

  roomMembers(room: string): Promise<string[]> {
    return this.#ask('roomMembers', room).then(strings);
  }

  roomUsers(room: string): Promise<string[]> {
    return this.#ask('roomUsers', room).then(strings);
  }

  userConnections(user: string): Promise<string[]> {
    return this.#ask('userConnections', user).then(strings);
  }

  onlineUsers(): Promise<string[]> {
    return this.#ask('onlineUsers').then(strings);
  }

  #ask(question: string, name = ''): Promise<unknown> {
    // Fail at once rather than wait in the client's queue for a Redis that is gone.
    if (!this.#client.isReady) return Promise.reject(new Error('not connected to Redis'));
    // Writes still waiting for the end of the turn go first: a node reads its own writes.
    if (this.#flushQueued) this.#flush();
    // A stalled Redis (paused, or swamped by a slow script) answers nothing: the read gives up, and says so.
    const read = within(
      query.run(this.#client, [this.#options.prefix, question, name]),
      this.#options.readTimeoutMs,
      `presence read (${question})`,
    );
    read.catch((error: unknown) => this.#options.failed(error, 'presence read'));
    return read;
  }

  #args(...rest: string[]): string[] {
    return [this.#options.prefix, this.#options.nodeId, ...rest];
  }

  #flush(): void {
    if (!this.#flushQueued) return;
    this.#flushQueued = false;
    const ops = this.#pending;
    this.#pending = [];
    // While the link is down or a rebuild is due, the local copy holds these changes;
    // the rebuild writes them.
    if (ops.length === 0 || this.#stale || !this.#client.isReady) {
      if (!this.#client.isReady) this.#stale = true;
      return;
    }
    update.eval(this.#client, this.#args(...ops)).then(
      (applied) => {
        // 0: this node had been swept away (its heartbeat lapsed); register again.
        if (applied !== 1) void this.rebuild();
      },
      (error: unknown) => {
        if (this.#client.isReady) this.#options.failed(error, 'presence write');
        this.#stale = true;
      },
    );
  }

  async #rebuild(): Promise<void> {
    if (!this.#client.isReady || this.#closed) return;
    this.#pending = [];
    // Every command below is queued on the one connection in this same turn, in order,
    // so changes tracked after this point are written after the rebuild.
    const writes: Array<Promise<unknown>> = [register.eval(this.#client, this.#args(String(this.#options.nodeTimeoutMs)))];
    let chunk: string[] = [];
    for (const [id, entry] of this.#local.connections) {
      chunk.push('c', id, entry.user ?? '');
      for (const room of entry.rooms) chunk.push('j', id, room);
      if (chunk.length >= REBUILD_CHUNK) {
        writes.push(update.eval(this.#client, this.#args(...chunk)));
        chunk = [];
      }
    }
    if (chunk.length > 0) writes.push(update.eval(this.#client, this.#args(...chunk)));
    this.#stale = false;
    try {
      await Promise.all(writes);
    } catch (error) {
      this.#stale = true;
      if (this.#client.isReady) this.#options.failed(error, 'presence rebuild');
    }
  }
}

/** The script operation for a change; `before` is the entry as it was (for bind and disconnect). */
function operation(change: PresenceChange, before: { user: string | undefined; rooms: string[] } | undefined): string[] | undefined {
  switch (change.kind) {
    case 'connect':
      return ['c', change.id, change.user ?? ''];
    case 'join':
      return ['j', change.id, change.room];
    case 'leave':
      return ['l', change.id, change.room];
    case 'bind':
      return before === undefined ? undefined : ['b', change.id, before.user ?? '', change.user ?? ''];
    case 'disconnect':
      return before === undefined ? undefined : ['d', change.id, before.user ?? '', String(before.rooms.length), ...before.rooms];
  }
}

function strings(reply: unknown): string[] {
  return (reply as unknown[]).map(String).sort();
}
