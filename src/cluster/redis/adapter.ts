import { createClient, createCluster, type RedisClusterOptions } from 'redis';
import { within } from '../../util/timers.js';
import { duration, integer, object, positive, text } from '../../util/validate.js';
import type { Adapter, AdapterNode, BroadcastMessage, PresenceChange } from '../adapter.js';
import { Envelopes } from '../envelope.js';
import { Receipts } from '../receipts.js';
import { Interest, interestKeyOf } from '../interest.js';
import type { Presence } from '../presence.js';
import type { RedisClient, RedisClusterClient } from './client.js';
import { Keys } from './keys.js';
import { linkOf, type LinkEvent, type RedisLink } from './link.js';
import { RedisPresence } from './presence.js';

/** Options of `createRedisAdapter`: a `url`, a `cluster`, or a `client` you own. */
export interface RedisAdapterOptions {
  /** One Redis server to connect to; the adapter creates, owns and closes its two connections. */
  readonly url?: string;
  /**
   * A Redis Cluster to connect to, as node-redis `createCluster()` takes it
   * (`{ rootNodes: [{ url: 'redis://10.0.0.1:7000' }, …] }`); the adapter creates, owns and closes
   * its clients. Room and user channels are then sharded (`SSUBSCRIBE`, `SPUBLISH`).
   */
  readonly cluster?: RedisClusterOptions;
  /**
   * A node-redis client to use instead of a URL, from `createClient()` or `createCluster()`: the
   * adapter connects it if it is not open, never closes it, and subscribes on `subscriber` (default
   * `client.duplicate()`, which the adapter owns).
   */
  readonly client?: RedisClient | RedisClusterClient;
  readonly subscriber?: RedisClient | RedisClusterClient;
  /** Namespace of keys and channel, so several applications can share one Redis. [default 'berth'] */
  readonly prefix?: string;
  /** A node that stops renewing its heartbeat for this long is left out of presence, then removed. [default 10000] */
  readonly nodeTimeoutMs?: number;
  /** How often the heartbeat is renewed (one field, and one other node's looked at). [default nodeTimeoutMs / 4] */
  readonly heartbeatIntervalMs?: number;
  /** How long `runtime.ready` waits for a first connection before starting local-only (health `degraded`). [default 5000] */
  readonly connectTimeoutMs?: number;
  /**
   * How long a presence read waits for Redis before it rejects with `ERR_ADAPTER` (a stalled Redis
   * answers nothing; the read is not left hanging). [default 2000]
   */
  readonly presenceTimeoutMs?: number;
  /**
   * Most entries a presence read collects: `roomMembers`, `roomUsers` and `userConnections` count
   * the members they would return, `rooms` and `onlineUsers` every node's entries they would read.
   * A read past it rejects with `ERR_ADAPTER` (its cause a `RangeError`) before reading them; it is
   * not counted as an adapter failure. [default 10000]
   */
  readonly presenceLimit?: number;
  /**
   * Bytes of broadcasts handed to Redis and not yet acknowledged. Past it (Redis
   * slow or stalled) broadcasts are dropped and counted instead of queued in
   * memory. [default 16777216]
   */
  readonly maxPublishBacklogBytes?: number;
  /**
   * How long a node stays subscribed to a room's (or user's) channel after its last local member
   * left, so that one leaving and coming back does not make the subscription flap. [default 2000]
   */
  readonly unsubscribeLingerMs?: number;
}

/** How long `close()` waits for Redis to take this node's presence away before it lets go. */
const CLOSE_TIMEOUT_MS = 2000;

/**
 * Between attempts to reach a Redis that is gone: short, because every broadcast published between
 * Redis coming back and the next attempt is dropped (it was about a second, on average, with a 2 s
 * cap; about 90 ms with this one). An attempt at a Redis that is down is a refused connection: cheap at this pace.
 */
const RECONNECT_MAX_DELAY_MS = 100;

/** Retries quickly at first, then every `RECONNECT_MAX_DELAY_MS`, for as long as the adapter lives. */
const reconnectStrategy = (retries: number) => Math.min(25 * 2 ** retries, RECONNECT_MAX_DELAY_MS);

/**
 * An adapter that carries broadcasts between nodes over Redis pub/sub and
 * keeps cluster-wide presence in Redis, on one server or a Redis Cluster. A
 * broadcast to a room goes on the room's channel (`<prefix>:{room:<room>}`,
 * sharded on a cluster), to a user on the user's (`<prefix>:{user:<user>}`),
 * to everyone on `<prefix>:broadcast`; a node
 * subscribes to a room's or user's channel while it hosts a member of it
 * (and `unsubscribeLingerMs` after the last one left), so a node receives
 * only what it hosts, and it skips its own publications that Redis echoes
 * back without decoding them.
 *
 * Delivery across nodes is at most once: a broadcast published while Redis is
 * unreachable is dropped and counted (`berth_cross_node_dropped_total`), and
 * one in flight when the link breaks may be lost. Local delivery never waits
 * for Redis. If Redis is down when the runtime starts, the runtime starts
 * anyway, local-only with health `degraded`, and joins the cluster when Redis
 * comes up.
 */
export function createRedisAdapter(options: RedisAdapterOptions): Adapter {
  return new RedisAdapter(options);
}

class RedisAdapter implements Adapter {
  readonly #prefix: string;
  readonly #keys: Keys;
  readonly #nodeTimeoutMs: number;
  readonly #heartbeatIntervalMs: number;
  readonly #connectTimeoutMs: number;
  readonly #presenceTimeoutMs: number;
  readonly #presenceLimit: number;
  readonly #maxBacklogBytes: number;
  readonly #lingerMs: number;
  #backlogBytes = 0;
  #interest: Interest | undefined;
  #envelopes: Envelopes | undefined;
  #receipts: Receipts | undefined;
  /** Channels whose unsubscribe did not reach Redis (the link was down): retried when it is back. */
  readonly #leftover = new Set<string>();
  readonly #client: RedisLink;
  readonly #subscriber: RedisLink;
  readonly #owned: RedisLink[] = [];
  #node: AdapterNode | undefined;
  #presence: RedisPresence | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #subscribed = false;
  #lastError: unknown;
  #closed = false;
  /** Set once `attach` has settled: the link's state while first connecting is not news. */
  #attached = false;
  /** Settles `attach` once the link is first up. */
  #firstLink: () => void = () => {};

  constructor(options: RedisAdapterOptions) {
    object('options', options);
    if ([options.url, options.cluster, options.client].filter((given) => given !== undefined).length !== 1) {
      throw new TypeError('give exactly one of options.url, options.cluster or options.client');
    }
    if (options.cluster !== undefined) {
      object('options.cluster', options.cluster);
      if (!Array.isArray(options.cluster.rootNodes) || options.cluster.rootNodes.length === 0) {
        throw new TypeError('options.cluster.rootNodes must be a non-empty array of { url }');
      }
    }
    if (options.url !== undefined) text('options.url', options.url, 'a redis:// or rediss:// URL', (url) => /^rediss?:\/\//.test(url));
    // Braces would be a Redis Cluster hash tag; spaces would split the channel name.
    this.#prefix = text('options.prefix', options.prefix ?? 'berth', 'non-empty, without spaces or braces', (prefix) =>
      /^[^\s{}]+$/.test(prefix),
    );
    this.#keys = new Keys(this.#prefix);
    // 0: unsubscribe as soon as the last member leaves.
    this.#lingerMs = integer('options.unsubscribeLingerMs', options.unsubscribeLingerMs ?? 2000, 0, 2_147_483_647);
    this.#nodeTimeoutMs = positive('options.nodeTimeoutMs', options.nodeTimeoutMs ?? 10_000, 1000);
    this.#heartbeatIntervalMs = duration('options.heartbeatIntervalMs', options.heartbeatIntervalMs ?? Math.round(this.#nodeTimeoutMs / 4));
    if (this.#heartbeatIntervalMs > this.#nodeTimeoutMs / 2) {
      throw new RangeError(`options.heartbeatIntervalMs must be at most half of options.nodeTimeoutMs, got ${this.#heartbeatIntervalMs}`);
    }
    this.#connectTimeoutMs = duration('options.connectTimeoutMs', options.connectTimeoutMs ?? 5000);
    this.#presenceTimeoutMs = positive('options.presenceTimeoutMs', options.presenceTimeoutMs ?? 2000, 1);
    this.#presenceLimit = integer('options.presenceLimit', options.presenceLimit ?? 10_000, 1, Number.MAX_SAFE_INTEGER);
    this.#maxBacklogBytes = integer(
      'options.maxPublishBacklogBytes',
      options.maxPublishBacklogBytes ?? 16 * 1024 * 1024,
      1,
      Number.MAX_SAFE_INTEGER,
    );
    // No offline queue: while Redis is away a publish is dropped and counted, not held.
    if (options.url !== undefined) {
      this.#client = this.#own(createClient({ url: options.url, disableOfflineQueue: true, socket: { reconnectStrategy } }) as RedisClient);
    } else if (options.cluster !== undefined) {
      const defaults = options.cluster.defaults ?? {};
      const cluster = createCluster({
        ...options.cluster,
        defaults: { ...defaults, disableOfflineQueue: true, socket: { ...defaults.socket, reconnectStrategy } },
      });
      this.#client = this.#own(cluster as unknown as RedisClusterClient);
    } else {
      this.#client = linkOf(options.client!, reconnectStrategy);
    }
    this.#subscriber =
      options.subscriber === undefined ? this.#ownLink(this.#client.duplicate()) : linkOf(options.subscriber, reconnectStrategy);
  }

  /** Reads Redis; rejects until the adapter is attached, and while Redis is unreachable. */
  readonly presence: Presence = {
    nodes: () => this.#ask((presence) => presence.nodes()),
    rooms: () => this.#ask((presence) => presence.rooms()),
    roomSize: (room) => this.#ask((presence) => presence.roomSize(room)),
    roomMembers: (room) => this.#ask((presence) => presence.roomMembers(room)),
    roomUsers: (room) => this.#ask((presence) => presence.roomUsers(room)),
    userConnections: (user) => this.#ask((presence) => presence.userConnections(user)),
    onlineUsers: () => this.#ask((presence) => presence.onlineUsers()),
  };

  async attach(node: AdapterNode): Promise<void> {
    this.#node = node;
    this.#envelopes = new Envelopes(node);
    this.#presence = new RedisPresence(this.#client, {
      prefix: this.#prefix,
      nodeId: node.nodeId,
      nodeTimeoutMs: this.#nodeTimeoutMs,
      readTimeoutMs: this.#presenceTimeoutMs,
      limit: this.#presenceLimit,
      failed: (error, what) => node.failed(error, what),
    });
    const presence = this.#presence;
    this.#receipts = new Receipts({
      othersHost: async (target) => {
        const { local } = presence;
        if (target.kind === 'all') return (await presence.nodes()).length > 1;
        if (target.kind === 'room') return (await presence.roomSize(target.room)) > (local.rooms.get(target.room)?.size ?? 0);
        return (await presence.userConnections(target.user)).length > (local.users.get(target.user)?.size ?? 0);
      },
      // Counted as dropped: it left this node and reached no other.
      unreceived: (_target, count) => node.dropped(count),
    });
    this.#interest = new Interest(
      this.#presence.local,
      {
        want: (key) => this.#want(this.#keys.channel(key)),
        drop: (key) => {
          this.#envelopes?.forget(key);
          this.#drop(this.#keys.channel(key));
        },
      },
      this.#lingerMs,
    );
    this.#listen('on');
    this.#heartbeat = setInterval(() => this.#beat(), this.#heartbeatIntervalMs).unref();
    const linked = new Promise<void>((resolve) => {
      const settle = () => {
        clearTimeout(timer);
        for (const client of [this.#client, this.#subscriber]) client.off('error', settle);
        resolve();
      };
      const timer = setTimeout(settle, this.#connectTimeoutMs);
      this.#firstLink = settle;
      // The first failed attempt settles too: the runtime starts local-only rather than wait.
      for (const client of [this.#client, this.#subscriber]) client.on('error', settle);
    });
    for (const link of [this.#client, this.#subscriber]) link.connect();
    void this.#subscribe();
    if (this.#client.isReady) this.#onClientReady();
    await linked;
    this.#attached = true;
    if (!this.#linkUp()) node.linkChanged(false, this.#lastError ?? new Error(`no Redis connection within ${this.#connectTimeoutMs} ms`));
  }

  publish(message: BroadcastMessage): void {
    const node = this.#node;
    const envelopes = this.#envelopes;
    if (node === undefined || envelopes === undefined) return;
    if (!this.#client.isReady || this.#backlogBytes > this.#maxBacklogBytes) {
      // Its number is used up all the same: the nodes that should have received it count it as lost.
      envelopes.skip(message.target);
      node.dropped(1);
      return;
    }
    const key = interestKeyOf(message.target);
    const wire = envelopes.seal(message, key ?? 'all');
    this.#backlogBytes += wire.length;
    const published =
      key === undefined
        ? this.#client.publish(this.#keys.broadcast, wire, false)
        : this.#client.publish(this.#keys.channel(key), wire, this.#client.sharded);
    published.then(
      (receivers) => {
        this.#backlogBytes -= wire.length;
        // A cluster's classic PUBLISH counts only the subscribers of the master it went to: no receipt.
        if (key === undefined && this.#client.sharded) return;
        // Redis counts this node's own subscriber among them while it hosts someone of the target.
        const own = key === undefined || this.#interest?.wanted.has(key) === true ? 1 : 0;
        this.#receipts?.published(message.target, key ?? 'all', Number(receivers) - own);
      },
      (error: unknown) => {
        this.#backlogBytes -= wire.length;
        node.dropped(1);
        if (this.#linkUp()) node.failed(error, 'publish');
      },
    );
  }

  /** Writes the change to presence; if it made a room or user wanted, resolves once that subscription is made (or failed, or took longer than `presenceTimeoutMs`). */
  track(change: PresenceChange): Promise<void> | undefined {
    if (this.#presence === undefined) return undefined;
    const before = this.#presence.track(change);
    return this.#interest?.changed(change, before);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#heartbeat);
    this.#interest?.close();
    try {
      if (this.#presence !== undefined) await within(this.#presence.close(), CLOSE_TIMEOUT_MS, 'removing presence');
    } finally {
      this.#listen('off');
      if (!this.#owned.includes(this.#subscriber) && this.#subscribed) {
        const subscriber = this.#subscriber;
        const unsubscribed = [
          subscriber.unsubscribe(this.#keys.broadcast, this.#receive, false),
          ...[...(this.#interest?.wanted ?? [])].map((key) =>
            subscriber.unsubscribe(this.#keys.channel(key), this.#receive, subscriber.sharded),
          ),
        ];
        await within(Promise.all(unsubscribed), CLOSE_TIMEOUT_MS, 'unsubscribing').catch(() => {});
      }
      // A client that is not connected would retry forever, and one that is may wait on a stalled
      // Redis: close gracefully when that is quick, destroy otherwise.
      for (const link of this.#owned) {
        link.on('error', () => {});
        if (link.isReady) await within(link.close(), CLOSE_TIMEOUT_MS, 'closing').catch(() => link.destroy());
        else if (link.isOpen) link.destroy();
      }
      for (const link of [this.#client, this.#subscriber]) if (!this.#owned.includes(link)) link.release();
    }
  }

  #listen(how: 'on' | 'off'): void {
    const listen = (link: RedisLink, event: LinkEvent, listener: (error?: unknown) => void) => link[how](event, listener);
    listen(this.#client, 'ready', this.#onClientReady);
    listen(this.#subscriber, 'ready', this.#onLinkChange);
    listen(this.#subscriber, 'ready', this.#resubscribe);
    for (const link of [this.#client, this.#subscriber]) {
      listen(link, 'error', this.#onError);
      listen(link, 'down', this.#onLinkChange);
    }
  }

  #ask<T>(read: (presence: RedisPresence) => Promise<T>): Promise<T> {
    if (this.#presence === undefined) return Promise.reject(new Error('the Redis adapter is not attached to a runtime'));
    return read(this.#presence);
  }

  #own(client: RedisClient | RedisClusterClient): RedisLink {
    return this.#ownLink(linkOf(client, reconnectStrategy));
  }

  #ownLink(link: RedisLink): RedisLink {
    this.#owned.push(link);
    return link;
  }

  /** Subscribes to a channel this node now hosts someone of; while the link is down, `#resubscribe` does it once it is back. */
  /** Settles once Redis has the subscription, or could not make it, or took longer than `presenceTimeoutMs`. */
  #want(channel: string): Promise<void> | undefined {
    this.#leftover.delete(channel);
    if (!this.#subscriber.isReady) return undefined;
    const subscribed = within(
      this.#subscriber.subscribe(channel, this.#receive, this.#subscriber.sharded),
      this.#presenceTimeoutMs,
      `subscribing to ${channel}`,
    );
    // Not made: the link's state says so; once it is back, `#resubscribe` makes it.
    return subscribed.catch(() => {});
  }

  #drop(channel: string): void {
    if (!this.#subscriber.isReady) {
      this.#leftover.add(channel);
      return;
    }
    this.#subscriber.unsubscribe(channel, this.#receive, this.#subscriber.sharded).catch(() => this.#leftover.add(channel));
  }

  /**
   * After a reconnect node-redis subscribes again to what it was subscribed to; a subscription asked for
   * while the link was down is made now, and one given up meanwhile is given up now (asking for one
   * already made changes nothing).
   */
  readonly #resubscribe = (): void => {
    const interest = this.#interest;
    if (interest === undefined || this.#closed) return;
    for (const key of interest.wanted) void this.#want(this.#keys.channel(key));
    for (const channel of [...this.#leftover]) {
      this.#leftover.delete(channel);
      this.#drop(channel);
    }
  };

  #linkUp(): boolean {
    return this.#client.isReady && this.#subscriber.isReady && this.#subscribed;
  }

  async #subscribe(): Promise<void> {
    // node-redis resubscribes by itself after a reconnect; this runs once.
    while (!this.#subscriber.isReady && !this.#closed)
      await new Promise<void>((resolve) => this.#subscriber.once('ready', () => resolve()));
    if (this.#closed) return;
    try {
      await this.#subscriber.subscribe(this.#keys.broadcast, this.#receive, false);
      this.#subscribed = true;
      this.#onLinkChange();
    } catch (error) {
      this.#onError(error);
    }
  }

  /** Redis echoes a node's own publications to it when it hosts members of the target: `Envelopes` skips those undecoded. */
  readonly #receive = (bytes: Buffer, channel: Buffer | string): void => {
    this.#envelopes?.open(bytes, String(channel));
  };

  readonly #onError = (error: unknown): void => {
    this.#lastError = error;
    this.#onLinkChange();
  };

  readonly #onClientReady = (): void => {
    // A new connection: Redis may have restarted empty, so this node's entries are written again.
    void this.#presence?.rebuild();
    this.#onLinkChange();
  };

  readonly #onLinkChange = (): void => {
    if (this.#closed || this.#node === undefined) return;
    const up = this.#linkUp();
    if (up) this.#firstLink();
    if (this.#attached) this.#node.linkChanged(up, up ? undefined : this.#lastError);
  };

  #beat(): void {
    this.#presence?.beat().catch((error: unknown) => {
      if (this.#client.isReady) this.#node?.failed(error, 'heartbeat');
    });
  }
}
