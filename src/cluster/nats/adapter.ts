import { connect, Events, type ConnectionOptions, type NatsConnection, type QueuedIterator, type Status, type Subscription } from 'nats';
import { within } from '../../util/timers.js';
import type { Adapter } from '../adapter.js';
import { engineAdapter } from '../core/engine-adapter.js';
import { CLOSE_TIMEOUT_MS, type Engine, type EngineContext } from '../core/engine.js';
import type { InterestKey } from '../interest.js';
import { openBuckets } from './buckets.js';
import { Names } from './names.js';
import { natsSettingsOf, type NatsAdapterOptions, type NatsSettings } from './options.js';
import { NatsPresence } from './presence.js';

/** Retries quickly at first, then every 2 s, for as long as the adapter lives (before the first connection; nats.js reconnects after it). */
const retryDelay = (attempt: number) => Math.min(50 * 2 ** attempt, 2000);

/**
 * An adapter that carries broadcasts between nodes over NATS and keeps cluster-wide presence in
 * JetStream key-value. A broadcast to a room goes on the room's subject (`<prefix>.room.<token>`), to
 * a user on the user's (`<prefix>.user.<token>`), to everyone on `<prefix>.all`, where a token is
 * the name's base64url (`tokenOf`); a node subscribes to a room's or user's subject while it hosts a
 * member of it (and `unsubscribeLingerMs` after the last one left), so NATS's interest-based routing
 * carries a broadcast only to the nodes that host its target.
 *
 * Delivery across nodes is at most once: a broadcast published while NATS is unreachable, or past
 * `maxPublishBacklogBytes`, is dropped and counted, and one in flight when the link breaks may be lost
 * (receivers count the gap). Local delivery never waits for NATS. If NATS is down when the runtime
 * starts, the runtime starts anyway, local-only with health `degraded`, and joins the cluster when
 * NATS comes up.
 */
export function createNatsAdapter(options: NatsAdapterOptions): Adapter {
  return engineAdapter('NATS', natsSettingsOf(options), NatsEngine);
}

/** NATS as the shared adapter drives it: one connection, a subject per room and user, presence in key-value buckets. */
class NatsEngine implements Engine {
  readonly presence: NatsPresence;
  readonly #settings: NatsSettings;
  readonly #context: EngineContext;
  readonly #names: Names;
  #nc: NatsConnection | undefined;
  readonly #owned: boolean;
  readonly #subscriptions = new Map<InterestKey, Subscription>();
  /** Subscriptions a `subscribe` waits on the server for, with the server's refusal of each once it came. */
  readonly #awaited = new Map<Subscription, unknown>();
  #all: Subscription | undefined;
  /** The connection's status events, followed until the adapter closes (a connection given outlives it). */
  #status: QueuedIterator<Status> | undefined;
  #retry: NodeJS.Timeout | undefined;
  /** Publishes made since the last confirming PING was sent, confirmed by the next one's answer. */
  #unconfirmed: { readonly confirmed: Promise<void>; readonly confirm: () => void } | undefined;
  #confirming = false;
  #up = false;
  /** Set when presence could not be registered with the link up. */
  #registrationDue = false;
  #closed = false;

  constructor(settings: NatsSettings, context: EngineContext) {
    this.#settings = settings;
    this.#context = context;
    this.#names = new Names(settings.prefix);
    this.#nc = settings.connection;
    this.#owned = settings.connection === undefined;
    this.presence = new NatsPresence({
      nodeId: context.node.nodeId,
      entryTtlMs: settings.entryTtlMs,
      readTimeoutMs: settings.presenceTimeoutMs,
      maxEntries: settings.maxPresenceEntries,
      failed: (error, what) => context.node.failed(error, what),
    });
  }

  start(): void {
    const connecting = this.#nc === undefined ? this.#connect(0) : this.#connected(this.#nc);
    connecting.catch((error: unknown) => this.#context.link(false, error));
  }

  /** nats.js would hold a publish made while disconnected, then discard it on the next connection attempt: the adapter publishes only while the link is up. */
  publish(key: InterestKey | undefined, wire: Buffer): Promise<undefined> {
    const nc = this.#nc!;
    nc.publish(key === undefined ? this.#names.all : this.#names.subjectOf(key), wire);
    this.#unconfirmed ??= settledBy();
    const { confirmed } = this.#unconfirmed;
    this.#confirm(nc);
    // NATS does not say how many subscribers a publish reached.
    return confirmed.then(() => undefined);
  }

  /** Not connected yet: `#connected` subscribes to everything wanted; while disconnected, nats.js sends it on reconnecting. */
  subscribe(key: InterestKey): Promise<void> | undefined {
    const nc = this.#nc;
    if (nc === undefined || nc.isClosed()) return undefined;
    const subscription = this.#open(nc, key);
    if (!this.#up) return undefined;
    this.#awaited.set(subscription, undefined);
    // The server answers a PING after it has processed the SUB before it, and refused it first if it did.
    return nc.flush().then(
      () => {
        const refusal = this.#awaited.get(subscription);
        this.#awaited.delete(subscription);
        if (refusal !== undefined) throw refusal;
      },
      // The connection broke first: nats.js sends the subscription again once it is back.
      () => void this.#awaited.delete(subscription),
    );
  }

  unsubscribe(key: InterestKey): void {
    this.#subscriptions.get(key)?.unsubscribe();
    this.#subscriptions.delete(key);
  }

  channelOf(key: InterestKey): string {
    return this.#names.subjectOf(key);
  }

  beat(): Promise<void> {
    if (this.#registrationDue && this.#up && this.#nc !== undefined) return this.#register(this.#nc);
    return this.presence.beat();
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#up = false;
    clearTimeout(this.#retry);
    this.#status?.stop();
    const nc = this.#nc;
    if (nc !== undefined && !nc.isClosed()) {
      if (this.#owned) {
        await within(nc.close(), CLOSE_TIMEOUT_MS, 'closing').catch(() => {});
      } else {
        for (const subscription of [this.#all, ...this.#subscriptions.values()]) subscription?.unsubscribe();
        await within(nc.flush(), CLOSE_TIMEOUT_MS, 'unsubscribing').catch(() => {});
      }
    }
    this.#subscriptions.clear();
  }

  /** Connects (the adapter's own connection), retrying until it succeeds or the adapter closes. */
  async #connect(attempt: number): Promise<void> {
    const options: ConnectionOptions = {
      servers: this.#settings.servers,
      name: `berth ${this.#context.node.nodeId}`,
      // Envelopes skip a node's own broadcasts anyway; the server need not send them back.
      noEcho: true,
      timeout: this.#settings.connectTimeoutMs,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
      // A server that stops answering (its host gone, no reset) is found within a few heartbeats, not minutes.
      pingInterval: this.#settings.heartbeatIntervalMs,
      maxPingOut: 3,
    };
    let nc: NatsConnection;
    try {
      nc = await connect(options);
    } catch (error) {
      // The first failed attempt settles `attach`: the runtime starts local-only rather than wait.
      this.#context.link(false, error);
      const retry = () => {
        this.#connect(attempt + 1).catch((failure: unknown) => this.#context.link(false, failure));
      };
      if (!this.#closed) this.#retry = setTimeout(retry, retryDelay(attempt)).unref();
      return;
    }
    if (this.#closed) {
      await nc.close();
      return;
    }
    this.#nc = nc;
    await this.#connected(nc);
  }

  /** A connection is open: listens for its state, subscribes, and registers presence. */
  async #connected(nc: NatsConnection): Promise<void> {
    this.#watch(nc).catch((error: unknown) => this.#context.node.failed(error, 'NATS'));
    this.#all = this.#subscribeTo(nc, this.#names.all);
    for (const key of this.#context.wanted) this.#open(nc, key);
    try {
      // However long it takes: `attach` stops waiting after connectTimeoutMs, the link comes up when it answers.
      await nc.flush();
    } catch (error) {
      // The connection broke first: the reconnect brings the link up.
      this.#context.link(false, error);
      return;
    }
    await this.#linkUp(nc);
  }

  /** The link is up: the runtime is told, and presence is registered anew (the server may have restarted empty); reads wait for it. */
  async #linkUp(nc: NatsConnection): Promise<void> {
    if (this.#closed || nc !== this.#nc) return;
    this.#up = true;
    const registered = this.#register(nc);
    this.#context.link(true);
    await registered;
  }

  /** Opens the buckets and registers this node; if that fails (JetStream not ready, say), the next heartbeat tries again. */
  async #register(nc: NatsConnection): Promise<void> {
    this.#registrationDue = false;
    const open = async () => {
      const buckets = await openBuckets(nc, this.#names, {
        nodeTimeoutMs: this.#settings.nodeTimeoutMs,
        entryTtlMs: this.#settings.entryTtlMs,
        replicas: this.#settings.replicas,
        // Longer than a read's own limit, so that a read that times out says which read it was.
        timeoutMs: 2 * this.#settings.presenceTimeoutMs,
      });
      if (!this.#up) throw new Error('the NATS link went down while presence was being registered');
      return buckets;
    };
    try {
      await this.presence.register(open);
    } catch (error) {
      if (!this.#up || this.#closed) return;
      this.#registrationDue = true;
      this.#context.node.failed(error, 'presence registration');
    }
  }

  #linkDown(error: unknown): void {
    this.#up = false;
    this.presence.disconnected();
    this.#context.link(false, error);
  }

  /** Follows the connection's state until it closes. */
  async #watch(nc: NatsConnection): Promise<void> {
    const closed = (error: unknown) => {
      if (!this.#closed && nc === this.#nc) this.#linkDown(error ?? new Error('the NATS connection was closed'));
    };
    nc.closed().then(closed, closed);
    // nats.js returns a QueuedIterator, whose stop() ends the loop below.
    const statuses = nc.status() as QueuedIterator<Status>;
    this.#status = statuses;
    for await (const status of statuses) {
      if (this.#closed) return;
      if (status.type === Events.Disconnect) this.#linkDown(new Error(`disconnected from NATS ${String(status.data)}`));
      // nats.js has sent every subscription again before it says so.
      else if (status.type === Events.Reconnect) this.#linkUp(nc).catch((error: unknown) => this.#context.node.failed(error, 'NATS'));
      // A refused subscription is told to the subscription itself (`#callback`).
      else if (status.type === Events.Error && status.permissionContext?.operation !== 'subscription') {
        this.#context.node.failed(status.data, 'NATS');
      }
    }
  }

  /** The subscription of a room or user, opened unless it is (a refused one is closed: it is opened again). */
  #open(nc: NatsConnection, key: InterestKey): Subscription {
    const open = this.#subscriptions.get(key);
    if (open !== undefined && !open.isClosed()) return open;
    const subscription = this.#subscribeTo(nc, this.#names.subjectOf(key));
    this.#subscriptions.set(key, subscription);
    return subscription;
  }

  /**
   * Subscribes to `subject`. The server echoes nothing to a connection opened with `noEcho`; on a
   * connection given, `Envelopes` skips this node's own broadcasts undecoded. A refusal (the server's
   * permissions; nats.js then closes the subscription) goes to the `subscribe` waiting for it, or is reported.
   */
  #subscribeTo(nc: NatsConnection, subject: string): Subscription {
    const subscription: Subscription = nc.subscribe(subject, {
      callback: (error, message) => {
        if (error === null) this.#context.receive(message.data, message.subject);
        else if (this.#awaited.has(subscription)) this.#awaited.set(subscription, error);
        else this.#context.node.failed(error, `subscribing to ${subject}`);
      },
    });
    return subscription;
  }

  /** Sends a PING after what was published since the last one; its answer confirms those, and another follows if more were published meanwhile. */
  #confirm(nc: NatsConnection): void {
    const unconfirmed = this.#unconfirmed;
    if (this.#confirming || unconfirmed === undefined) return;
    this.#confirming = true;
    this.#unconfirmed = undefined;
    // A link that breaks rejects it: what was in flight may be lost (receivers count the gap), and the backlog is free again.
    const confirmed = () => {
      this.#confirming = false;
      unconfirmed.confirm();
      if (this.#nc === nc && !nc.isClosed()) this.#confirm(nc);
      else {
        this.#unconfirmed?.confirm();
        this.#unconfirmed = undefined;
      }
    };
    nc.flush().then(confirmed, confirmed);
  }
}

/** A promise, and what settles it. */
function settledBy(): { readonly confirmed: Promise<void>; readonly confirm: () => void } {
  let confirm!: () => void;
  const confirmed = new Promise<void>((resolve) => (confirm = resolve));
  return { confirmed, confirm };
}
