import {
  connect,
  Events,
  type ConnectionOptions,
  type Msg,
  type NatsConnection,
  type NatsError,
  type QueuedIterator,
  type Status,
  type Subscription,
} from 'nats';
import { within } from '../../util/timers.js';
import type { Adapter, AdapterNode, BroadcastMessage, PresenceChange } from '../adapter.js';
import { Envelopes } from '../envelope.js';
import { Interest, interestKeyOf, type InterestKey } from '../interest.js';
import type { Presence } from '../presence.js';
import { openBuckets } from './buckets.js';
import { Names } from './names.js';
import { settingsOf, type NatsAdapterOptions, type NatsSettings } from './options.js';
import { NatsPresence } from './presence.js';

/** How long `close()` waits for NATS to take this node's presence away before it lets go. */
const CLOSE_TIMEOUT_MS = 2000;

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
  return new NatsAdapter(options);
}

class NatsAdapter implements Adapter {
  readonly #settings: NatsSettings;
  readonly #names: Names;
  #nc: NatsConnection | undefined;
  readonly #owned: boolean;
  #node: AdapterNode | undefined;
  #envelopes: Envelopes | undefined;
  #interest: Interest | undefined;
  #presence: NatsPresence | undefined;
  readonly #subscriptions = new Map<InterestKey, Subscription>();
  #all: Subscription | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  /** The connection's status events, followed until the adapter closes (a connection given outlives it). */
  #status: QueuedIterator<Status> | undefined;
  #retry: NodeJS.Timeout | undefined;
  /** Bytes published and not yet confirmed by the server. */
  #backlogBytes = 0;
  /** Of those, bytes published since the last confirming PING was sent. */
  #unconfirmedBytes = 0;
  #confirming = false;
  #up = false;
  /** Set when presence could not be registered with the link up. */
  #registrationDue = false;
  #lastError: unknown;
  #closed = false;
  /** Set once `attach` has settled: the link's state while first connecting is not news. */
  #attached = false;
  /** Settles `attach` once the link is first up (presence registered), or first failed. */
  #firstLink: () => void = () => {};

  constructor(options: NatsAdapterOptions) {
    this.#settings = settingsOf(options);
    this.#names = new Names(this.#settings.prefix);
    this.#nc = options.connection;
    this.#owned = options.connection === undefined;
  }

  /** Reads NATS; rejects until the adapter is attached, and while NATS is unreachable. */
  readonly presence: Presence = {
    nodes: () => this.#ask((presence) => presence.nodes(), 'nodes'),
    rooms: () => this.#ask((presence) => presence.rooms(), 'rooms'),
    roomSize: (room) => this.#ask((presence) => presence.roomSize(room), 'roomSize'),
    roomMembers: (room) => this.#ask((presence) => presence.roomMembers(room), 'roomMembers'),
    roomUsers: (room) => this.#ask((presence) => presence.roomUsers(room), 'roomUsers'),
    userConnections: (user) => this.#ask((presence) => presence.userConnections(user), 'userConnections'),
    onlineUsers: () => this.#ask((presence) => presence.onlineUsers(), 'onlineUsers'),
  };

  async attach(node: AdapterNode): Promise<void> {
    this.#node = node;
    this.#envelopes = new Envelopes(node);
    this.#presence = new NatsPresence({
      nodeId: node.nodeId,
      entryTtlMs: this.#settings.entryTtlMs,
      readTimeoutMs: this.#settings.presenceTimeoutMs,
      maxEntries: this.#settings.maxPresenceEntries,
      failed: (error, what) => node.failed(error, what),
    });
    this.#interest = new Interest(
      this.#presence.local,
      {
        want: (key) => this.#want(key),
        drop: (key) => this.#drop(key),
      },
      this.#settings.unsubscribeLingerMs,
    );
    this.#heartbeat = setInterval(() => this.#beat(), this.#settings.heartbeatIntervalMs).unref();
    const linked = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, this.#settings.connectTimeoutMs);
      this.#firstLink = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    if (this.#nc !== undefined) void this.#connected(this.#nc);
    else void this.#connect(0);
    await linked;
    this.#attached = true;
    if (!this.#up) node.linkChanged(false, this.#lastError ?? new Error(`no NATS connection within ${this.#settings.connectTimeoutMs} ms`));
  }

  publish(message: BroadcastMessage): void {
    const node = this.#node;
    const envelopes = this.#envelopes;
    const nc = this.#nc;
    if (node === undefined || envelopes === undefined) return;
    // nats.js would hold a publish made while disconnected, then discard it on the next connection attempt.
    if (nc === undefined || !this.#up || this.#backlogBytes > this.#settings.maxPublishBacklogBytes) {
      // Its number is used up all the same: the nodes that should have received it count it as lost.
      envelopes.skip(message.target);
      node.dropped(1);
      return;
    }
    const key = interestKeyOf(message.target);
    const wire = envelopes.seal(message, key ?? 'all');
    try {
      nc.publish(key === undefined ? this.#names.all : this.#names.subjectOf(key), wire);
    } catch (error) {
      // Larger than the server's max_payload, say.
      node.dropped(1);
      node.failed(error, 'publish');
      return;
    }
    this.#backlogBytes += wire.length;
    this.#unconfirmedBytes += wire.length;
    this.#confirm(nc);
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
    clearTimeout(this.#retry);
    this.#interest?.close();
    try {
      if (this.#presence !== undefined && this.#up) await within(this.#presence.close(), CLOSE_TIMEOUT_MS, 'removing presence');
    } finally {
      this.#up = false;
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
  }

  /** Connects (the adapter's own connection), retrying until it succeeds or the adapter closes. */
  async #connect(attempt: number): Promise<void> {
    const options: ConnectionOptions = {
      servers: this.#settings.servers,
      name: `berth ${this.#node?.nodeId}`,
      // Envelopes skip a node's own broadcasts anyway; the server need not send them back.
      noEcho: true,
      timeout: this.#settings.connectTimeoutMs,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
      // A server that stops answering (its host gone, no reset) is found within a few heartbeats, not minutes.
      pingInterval: this.#settings.heartbeatIntervalMs,
      maxPingOut: 3,
    };
    try {
      const nc = await connect(options);
      if (this.#closed) {
        await nc.close();
        return;
      }
      this.#nc = nc;
      await this.#connected(nc);
    } catch (error) {
      this.#lastError = error;
      // The first failed attempt settles `attach`: the runtime starts local-only rather than wait.
      this.#firstLink();
      if (!this.#closed) this.#retry = setTimeout(() => void this.#connect(attempt + 1), retryDelay(attempt)).unref();
    }
  }

  /** A connection is open: listens for its state, subscribes, and registers presence. */
  async #connected(nc: NatsConnection): Promise<void> {
    void this.#watch(nc);
    this.#all = nc.subscribe(this.#names.all, { callback: this.#receive });
    for (const key of this.#interest?.wanted ?? []) this.#subscribe(nc, key);
    try {
      // However long it takes: `attach` stops waiting after connectTimeoutMs, the link comes up when it answers.
      await nc.flush();
    } catch (error) {
      // The connection broke first: the reconnect brings the link up.
      this.#lastError = error;
      this.#firstLink();
      return;
    }
    await this.#linkUp(nc);
    this.#firstLink();
  }

  /** The link is up: presence is registered anew (the server may have restarted empty), then the runtime is told. */
  async #linkUp(nc: NatsConnection): Promise<void> {
    if (this.#closed || nc !== this.#nc) return;
    this.#up = true;
    await this.#register(nc);
    this.#tell();
  }

  /** Opens the buckets and registers this node; if that fails (JetStream not ready, say), the next heartbeat tries again. */
  async #register(nc: NatsConnection): Promise<void> {
    this.#registrationDue = false;
    try {
      const buckets = await openBuckets(nc, this.#names, {
        nodeTimeoutMs: this.#settings.nodeTimeoutMs,
        entryTtlMs: this.#settings.entryTtlMs,
        replicas: this.#settings.replicas,
        // Longer than a read's own limit, so that a read that times out says which read it was.
        timeoutMs: 2 * this.#settings.presenceTimeoutMs,
      });
      if (this.#up && !this.#closed) await this.#presence?.register(buckets);
    } catch (error) {
      if (!this.#up || this.#closed) return;
      this.#registrationDue = true;
      this.#node?.failed(error, 'presence registration');
    }
  }

  #linkDown(error: unknown): void {
    this.#up = false;
    this.#lastError = error;
    this.#presence?.disconnected();
    this.#tell();
  }

  #tell(): void {
    if (this.#attached && !this.#closed) this.#node?.linkChanged(this.#up, this.#up ? undefined : this.#lastError);
  }

  /** Follows the connection's state until it closes. */
  async #watch(nc: NatsConnection): Promise<void> {
    void nc.closed().then((error) => {
      if (!this.#closed && nc === this.#nc) this.#linkDown(error ?? new Error('the NATS connection was closed'));
    });
    // nats.js returns a QueuedIterator, whose stop() ends the loop below.
    const statuses = nc.status() as QueuedIterator<Status>;
    this.#status = statuses;
    for await (const status of statuses) {
      if (this.#closed) return;
      if (status.type === Events.Disconnect) this.#linkDown(new Error(`disconnected from NATS ${String(status.data)}`));
      // nats.js has sent every subscription again before it says so.
      else if (status.type === Events.Reconnect) void this.#linkUp(nc);
      else if (status.type === Events.Error) this.#node?.failed(status.data, 'NATS');
    }
  }

  #ask<T>(read: (presence: NatsPresence) => Promise<T>, what: string): Promise<T> {
    const presence = this.#presence;
    if (presence === undefined) return Promise.reject(new Error('the NATS adapter is not attached to a runtime'));
    // Fail at once rather than wait for a NATS that is gone.
    if (!this.#up) return Promise.reject(new Error('not connected to NATS'));
    const pending = within(read(presence), this.#settings.presenceTimeoutMs, `presence read (${what})`);
    pending.catch((error: unknown) => {
      // A cap is the caller's question being too large, not NATS failing.
      if (!(error instanceof RangeError)) this.#node?.failed(error, 'presence read');
    });
    return pending;
  }

  #subscribe(nc: NatsConnection, key: InterestKey): void {
    if (!this.#subscriptions.has(key)) this.#subscriptions.set(key, nc.subscribe(this.#names.subjectOf(key), { callback: this.#receive }));
  }

  /** Subscribes to the subject of a room or user this node now hosts someone of; settles once the server has it (or `presenceTimeoutMs` passed). */
  #want(key: InterestKey): Promise<void> | undefined {
    const nc = this.#nc;
    // Not connected yet: `#connected` subscribes to everything wanted. While disconnected, nats.js sends it on reconnecting.
    if (nc === undefined || nc.isClosed()) return undefined;
    this.#subscribe(nc, key);
    if (!this.#up) return undefined;
    // The server answers a PING after it has processed the SUB before it.
    return within(nc.flush(), this.#settings.presenceTimeoutMs, `subscribing to ${this.#names.subjectOf(key)}`).catch(() => {});
  }

  #drop(key: InterestKey): void {
    this.#envelopes?.forget(key);
    this.#subscriptions.get(key)?.unsubscribe();
    this.#subscriptions.delete(key);
  }

  /** Sends a PING after what was published since the last one; its answer confirms those bytes, and another follows if more were published meanwhile. */
  #confirm(nc: NatsConnection): void {
    if (this.#confirming) return;
    this.#confirming = true;
    const bytes = this.#unconfirmedBytes;
    this.#unconfirmedBytes = 0;
    // A link that breaks rejects it: what was in flight may be lost, and the backlog is free again.
    void nc
      .flush()
      .catch(() => {})
      .then(() => {
        this.#backlogBytes -= bytes;
        this.#confirming = false;
        if (this.#unconfirmedBytes > 0 && this.#nc === nc && !nc.isClosed()) this.#confirm(nc);
        else {
          this.#backlogBytes -= this.#unconfirmedBytes;
          this.#unconfirmedBytes = 0;
        }
      });
  }

  /** The server echoes nothing to a connection opened with `noEcho`; on a connection given, `Envelopes` skips this node's own broadcasts undecoded. */
  readonly #receive = (error: NatsError | null, message: Msg): void => {
    if (error !== null) {
      this.#node?.failed(error, 'receive');
      return;
    }
    this.#envelopes?.open(message.data, message.subject);
  };

  #beat(): void {
    if (this.#registrationDue && this.#up && this.#nc !== undefined) {
      void this.#register(this.#nc);
      return;
    }
    this.#presence?.beat().catch((error: unknown) => {
      if (this.#up) this.#node?.failed(error, 'heartbeat');
    });
  }
}
