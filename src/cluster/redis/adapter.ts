import { createClient, createCluster } from 'redis';
import { within } from '../../util/timers.js';
import type { Adapter } from '../adapter.js';
import { engineAdapter } from '../core/engine-adapter.js';
import { CLOSE_TIMEOUT_MS, type Engine, type EngineContext } from '../core/engine.js';
import type { InterestKey } from '../interest.js';
import type { RedisClient, RedisClusterClient } from './client.js';
import { RedisDurable } from './durable.js';
import { Keys } from './keys.js';
import { linkOf, type LinkEvent, type RedisLink } from './link.js';
import { redisSettingsOf, type RedisAdapterOptions, type RedisSettings } from './options.js';
import { RedisPresence } from './presence.js';

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
  return engineAdapter('Redis', redisSettingsOf(options), RedisEngine);
}

/** Redis as the shared adapter drives it: two links (commands, subscriptions), presence in hashes written by scripts. */
class RedisEngine implements Engine {
  readonly presence: RedisPresence;
  readonly durable: RedisDurable | undefined;
  readonly #context: EngineContext;
  readonly #keys: Keys;
  readonly #client: RedisLink;
  readonly #subscriber: RedisLink;
  readonly #owned: RedisLink[] = [];
  /** Channels whose unsubscribe did not reach Redis (the link was down): retried when it is back. */
  readonly #leftover = new Set<string>();
  /** Set once the channel for everyone is subscribed: node-redis subscribes to it again after every reconnect. */
  #subscribed = false;
  #closed = false;

  constructor(settings: RedisSettings, context: EngineContext) {
    this.#context = context;
    this.#keys = new Keys(settings.prefix);
    // No offline queue: while Redis is away a publish is dropped and counted, not held.
    if (settings.url !== undefined) {
      this.#client = this.#own(
        createClient({ url: settings.url, disableOfflineQueue: true, socket: { reconnectStrategy } }) as RedisClient,
      );
    } else if (settings.cluster !== undefined) {
      const defaults = settings.cluster.defaults ?? {};
      const cluster = createCluster({
        ...settings.cluster,
        defaults: { ...defaults, disableOfflineQueue: true, socket: { ...defaults.socket, reconnectStrategy } },
      });
      this.#client = this.#own(cluster as unknown as RedisClusterClient);
    } else {
      this.#client = linkOf(settings.client!, reconnectStrategy);
    }
    this.#subscriber =
      settings.subscriber === undefined ? this.#ownLink(this.#client.duplicate()) : linkOf(settings.subscriber, reconnectStrategy);
    this.presence = new RedisPresence(this.#client, {
      prefix: settings.prefix,
      nodeId: context.node.nodeId,
      nodeTimeoutMs: settings.nodeTimeoutMs,
      maxEntries: settings.maxPresenceEntries,
      failed: (error, what) => context.node.failed(error, what),
    });
    if (settings.durable !== undefined) {
      const keys = this.#keys;
      this.durable = new RedisDurable(
        this.#client,
        settings.prefix,
        settings.durable,
        context.node.nodeId,
        (stream) => (stream === 'all' ? keys.broadcast : keys.channel(stream as InterestKey)),
        (error, what) => context.node.failed(error, what),
      );
    }
  }

  start(): void {
    this.#listen('on');
    for (const link of [this.#client, this.#subscriber]) link.connect();
    this.#subscribeToAll().catch((error: unknown) => this.#onError(error));
    if (this.#client.isReady) this.#onClientReady();
  }

  async publish(key: InterestKey | undefined, wire: Buffer): Promise<number | undefined> {
    const receivers = await (key === undefined
      ? this.#client.publish(this.#keys.broadcast, wire, false)
      : this.#client.publish(this.#keys.channel(key), wire, this.#client.sharded));
    // A cluster's classic PUBLISH counts only the subscribers of the master it went to: no receipt.
    if (key === undefined && this.#client.sharded) return undefined;
    // Redis counts this node's own subscriber among them while it hosts someone of the target.
    const own = key === undefined || this.#context.wanted.has(key) ? 1 : 0;
    return Number(receivers) - own;
  }

  /** While the link is down, `#resubscribe` makes it once it is back. */
  subscribe(key: InterestKey): Promise<void> | undefined {
    const channel = this.#keys.channel(key);
    this.#leftover.delete(channel);
    if (!this.#subscriber.isReady) return undefined;
    return this.#subscriber.subscribe(channel, this.#receive, this.#subscriber.sharded);
  }

  unsubscribe(key: InterestKey): void {
    this.#drop(this.#keys.channel(key));
  }

  channelOf(key: InterestKey): string {
    return this.#keys.channel(key);
  }

  beat(): Promise<void> {
    return this.presence.beat();
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.durable?.close();
    this.#listen('off');
    if (!this.#owned.includes(this.#subscriber) && this.#subscribed) {
      const subscriber = this.#subscriber;
      const unsubscribed = [
        subscriber.unsubscribe(this.#keys.broadcast, this.#receive, false),
        ...[...this.#context.wanted].map((key) => subscriber.unsubscribe(this.#keys.channel(key), this.#receive, subscriber.sharded)),
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

  #own(client: RedisClient | RedisClusterClient): RedisLink {
    return this.#ownLink(linkOf(client, reconnectStrategy));
  }

  #ownLink(link: RedisLink): RedisLink {
    this.#owned.push(link);
    return link;
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
    if (this.#closed) return;
    for (const key of this.#context.wanted) {
      this.subscribe(key)?.catch((error: unknown) => {
        if (this.#linkUp()) this.#context.node.failed(error, `subscribing to ${this.#keys.channel(key)}`);
      });
    }
    for (const channel of [...this.#leftover]) {
      this.#leftover.delete(channel);
      this.#drop(channel);
    }
  };

  #linkUp(): boolean {
    return this.#client.isReady && this.#subscriber.isReady && this.#subscribed;
  }

  async #subscribeToAll(): Promise<void> {
    // node-redis resubscribes by itself after a reconnect; this runs once.
    while (!this.#subscriber.isReady && !this.#closed)
      await new Promise<void>((resolve) => this.#subscriber.once('ready', () => resolve()));
    if (this.#closed) return;
    await this.#subscriber.subscribe(this.#keys.broadcast, this.#receive, false);
    if (this.durable !== undefined)
      await this.#subscriber.subscribe(this.durable.control(this.#context.node.nodeId), this.#control, this.#subscriber.sharded);
    this.#subscribed = true;
    this.#onLinkChange();
  }

  /** Redis echoes a node's own publications to it when it hosts members of the target: `Envelopes` skips those undecoded. */
  readonly #receive = (bytes: Buffer, channel: Buffer | string): void => {
    if (this.durable !== undefined) this.#context.receiveDurable(bytes, String(channel));
    else this.#context.receive(bytes, String(channel));
  };

  /** With durable streams: another node asks this one to close a connection whose session a resume took over. */
  readonly #control = (bytes: Buffer): void => {
    const text = bytes.toString();
    if (text.startsWith('replace ')) this.#context.node.replace?.(text.slice('replace '.length));
  };

  readonly #onError = (error: unknown): void => {
    if (!this.#closed) this.#context.link(this.#linkUp(), error);
  };

  readonly #onClientReady = (): void => {
    // A new connection: Redis may have restarted empty, so this node's entries are written again.
    void this.presence.rebuild();
    this.durable?.load().catch((error: unknown) => this.#onError(error));
    this.#onLinkChange();
  };

  readonly #onLinkChange = (): void => {
    if (!this.#closed) this.#context.link(this.#linkUp());
  };
}
