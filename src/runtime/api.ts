/** The public shape of a runtime: what `createRuntime` returns and the events it emits. */
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Registry } from 'prom-client';
import type { DirectoryView } from '../../machines/directory.js';
import type { HeartbeatPhase } from '../connection/heartbeat.js';
import type { CloseCause, Target } from '../../machines/types.js';
import type { Connection, DropReason } from '../connection/connection.js';
import type { SendData } from '../delivery/frame.js';
import type { BerthError } from '../util/errors.js';
import type { Health } from '../observability/health.js';
import type { Presence } from '../cluster/presence.js';
import type { MetricsSnapshot } from '../observability/metrics.js';
import type { SupervisorView } from './supervisor-view.js';

/**
 * Events a runtime emits: nouns for what arrives (`connection`, `message`, `error`), `close`, and a past
 * participle for every other outcome. Handlers run outside every actor, so they may call any API.
 */
export interface RuntimeEvents<TData = unknown> {
  /** A connection completed its handshake and is registered (its user, if any, already bound). */
  connection: Connection<TData>;
  /** A message arrived: text as a string, binary as a Buffer. */
  message: { connection: Connection<TData>; data: string | Buffer; binary: boolean };
  /** A connection is gone; emitted exactly once per connection, with the rooms it was taken out of. */
  close: { connection: Connection<TData>; code: number; reason: string; cause: CloseCause; rooms: readonly string[] };
  /**
   * A `berth.v1` client asked to resume a session: `recovered` with its rooms back and what it missed
   * replayed, or not, with the streams that could not be recovered (`lost`).
   */
  resumed: {
    connection: Connection<TData>;
    recovered: boolean;
    /** The connection whose session it resumed. */
    previous: string | undefined;
    lost: ReadonlyArray<{ readonly stream: string; readonly reason: string }>;
  };
  /** Something failed; `error.code` is stable (see `ErrorCode`). */
  error: { error: BerthError; connection?: Connection<TData> };
  /** An upgrade was answered with HTTP `status` instead of a handshake. */
  refused: { status: number; reason: string; request: IncomingMessage };
  /**
   * Messages were discarded: an incoming one under the `drop` rate-limit
   * policy, or `count` outgoing ones under a `drop-oldest`/`drop-newest` outbox.
   */
  dropped: { connection: Connection<TData>; reason: DropReason; count: number };
  /**
   * Broadcasts another node published never reached this node (its link to the bus dropped, the
   * publisher could not send them, the bus discarded them): `count` of them, from node `origin`, to
   * `target` (a room, a user, or everyone). Its members here missed them; `berth_cross_node_lost_total`
   * counts them and `health()` says `degraded` for `health.clusterTroubleMs`.
   *
   * With durable streams a gap is healed from the engine's history first; only what it no longer
   * holds is told, with `reason`: `trimmed` (`count` messages past the history's bounds) or
   * `epoch-changed` (the stream's history was lost, by a Redis restart or failover: how many is not
   * known, `count` is undefined). `origin` is then ''. Each `berth.v1` member is told too (a `lost` frame).
   */
  lost: { target: Target; count: number | undefined; origin: string; reason?: 'missed' | 'trimmed' | 'epoch-changed' };
}

/** Every runtime event by name: subscribing to any other name throws. */
export const RUNTIME_EVENTS: { readonly [K in keyof RuntimeEvents]: true } = {
  connection: true,
  message: true,
  close: true,
  resumed: true,
  error: true,
  refused: true,
  dropped: true,
  lost: true,
};

/** A request from a `berth.v1` client, as its handler gets it. */
export interface Request<TData = unknown> {
  readonly connection: Connection<TData>;
  /** Text as a string, bytes as a Buffer. */
  readonly data: string | Buffer;
  readonly binary: boolean;
}

/**
 * Answers a request: return (or resolve with) the reply — a string, or bytes
 * sent as binary. Throw a `RequestError` for a typed error the client sees;
 * anything else thrown answers `handler-failed` and is reported as
 * `ERR_HANDLER_FAILED`. Either way only the request fails, not the connection.
 */
export type RequestHandler<TData = unknown> = (request: Request<TData>) => SendData | Promise<SendData>;

/** Options of a broadcast. */
export interface BroadcastOptions {
  /** A connection (or its id) that must not receive it. */
  readonly except?: Connection<unknown> | string;
  /** Send bytes as a text frame with `false`. [default true for bytes, false for strings] */
  readonly binary?: boolean;
}

/** A running berth. See `createRuntime`. */
export interface Runtime<TData = unknown> {
  /** Unique per runtime; every connection id starts with it. */
  readonly nodeId: string;
  /** Resolves once a standalone server listens (at once when attached); rejects if it cannot. */
  readonly ready: Promise<void>;
  /** The supervisor, read-only: its state and a subscription (the `inspect` option shows the live actors). */
  readonly supervisor: SupervisorView;
  /** Subscribes to an event; returns the unsubscribe. A name that is no event throws `TypeError`. */
  on<K extends keyof RuntimeEvents<TData>>(type: K, handler: (event: RuntimeEvents<TData>[K]) => unknown): () => void;
  /** Unsubscribes `handler`, or every handler of the event without one. */
  off<K extends keyof RuntimeEvents<TData>>(type: K, handler?: (event: RuntimeEvents<TData>[K]) => unknown): void;
  /**
   * Answers the requests of `berth.v1` clients (docs/protocol.md); one handler per runtime, a later
   * call replaces it, `undefined` removes it. Without one, requests are answered `no-handler`.
   */
  onRequest(handler: RequestHandler<TData> | undefined): void;
  /** The listening address of the standalone (or attached) server. */
  address(): AddressInfo | null;
  /** Handles an upgrade yourself (for `noServer` setups); the same admission rules apply. */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Sends to every member of a room on every node. */
  sendToRoom(room: string, data: SendData, options?: BroadcastOptions): void;
  /** Sends to every connection bound to a user on every node. */
  sendToUser(user: string, data: SendData, options?: BroadcastOptions): void;
  /** Sends to every connection on every node. */
  sendToAll(data: SendData, options?: BroadcastOptions): void;
  /**
   * Who is where on every node: rooms, their members and sizes, users, nodes.
   * Answered by the adapter (the Redis adapter reads Redis); the default
   * memory adapter answers for the runtimes on its bus.
   */
  readonly presence: Presence;
  /** A live connection of this node by id. */
  connection(id: string): Connection<TData> | undefined;
  /** Status (`degraded` past the `health` thresholds), counts and totals; O(connections). */
  health(): Health;
  /** Metrics: a plain snapshot, Prometheus text, or registration into your prom-client registry. */
  readonly metrics: RuntimeMetrics;
  /** This node's registry, rooms and users as plain data, with each connection's heartbeat (O(connections); for tests and debugging). */
  snapshot(): RuntimeSnapshot;
  /**
   * Stops admitting (503), closes every connection with 1001 after its queued
   * messages, waits up to `timeoutMs` for them to close, terminates the rest,
   * and releases the server and adapter. Idempotent. [timeoutMs=closeTimeoutMs]
   */
  close(options?: { timeoutMs?: number }): Promise<void>;
}

/** `runtime.snapshot()`: the supervisor's registry, and each connection's heartbeat beside it. */
export interface RuntimeSnapshot extends DirectoryView {
  connections: Record<
    string,
    DirectoryView['connections'][string] & { heartbeat: { phase: HeartbeatPhase; roundTripMs: number | undefined } }
  >;
}

/** berth's metrics; see `MetricsSnapshot` and docs/health-and-metrics.md for what each holds. */
export interface RuntimeMetrics {
  /** Everything measured, as plain data; O(connections). */
  snapshot(): MetricsSnapshot;
  /** The metrics in Prometheus text format, produced by prom-client. */
  prometheus(): Promise<string>;
  /** Adds berth's metrics to your prom-client registry too (one runtime per registry: names do not repeat). */
  register(registry: Registry): void;
  /** The runtime's own prom-client registry. */
  readonly registry: Registry;
}
