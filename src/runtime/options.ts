import type { Server as HttpServer } from 'node:http';
import type { InspectionEvent, Observer } from 'xstate';
import type { HeartbeatTiming } from '../../machines/connection.machine.js';
import type { Adapter } from '../cluster/adapter.js';
import { createMemoryAdapter } from '../cluster/memory-adapter.js';
import { createMemoryHistory } from '../history/memory-store.js';
import type { HistoryStore } from '../history/store.js';
import { normalizeOrigin, type Authenticate } from '../connection/admission.js';
import { resolveRateLimit, type RateLimit, type RateLimitOptions } from '../connection/rate-limit.js';
import { resolveOutboxLimits, type OutboxLimits, type OutboxOptions } from '../delivery/outbox.js';
import { resolveCompression, type CompressionOptions, type CompressionSettings } from '../delivery/deflate.js';
import type { HealthThresholds } from '../observability/health.js';
import { duration, integer, object, optionalFunction, positive, text } from '../util/validate.js';

/** Options of `createRuntime`. Give `port` (standalone), `server` (attach), or neither (call `runtime.handleUpgrade` yourself). */
export interface RuntimeOptions<TData = unknown> {
  /** Listen on this port with a server of berth's own; 0 picks a free port. */
  readonly port?: number;
  /** Interface for the standalone server. [default all interfaces] */
  readonly host?: string;
  /** An existing HTTP(S) server to attach to through its `upgrade` event; berth never closes it. */
  readonly server?: HttpServer;
  /** Accept upgrades only for this path (the query string is ignored). [default any path] */
  readonly path?: string;
  /** Most sockets open at once, counting handshakes in progress; beyond it, HTTP 503. [default Infinity] */
  readonly maxConnections?: number;
  /** `Retry-After` seconds sent with a 503. [default 5] */
  readonly retryAfterSeconds?: number;
  /** Largest incoming message in bytes; a bigger one closes the connection with 1009. [default 1048576] */
  readonly maxPayload?: number;
  /** Ping every `intervalMs`; no pong within `timeoutMs` terminates the connection. `false` turns it off. [default { intervalMs: 30000, timeoutMs: 10000 }] */
  readonly heartbeat?: Partial<HeartbeatTiming> | false;
  /**
   * How long a closing connection waits for the peer to finish the closing handshake (its close
   * frame, then the end of its TCP side) before its socket is destroyed. [default 5000]
   */
  readonly closeTimeoutMs?: number;
  /**
   * With `port`: how long berth's own server waits for an upgrade request's headers before it
   * answers 408 and closes the socket. A server you attach keeps its own timeouts: set its
   * `headersTimeout` (and `connectionsCheckingInterval` when you create it). [default 5000]
   */
  readonly handshakeTimeoutMs?: number;
  /** Decides each upgrade: return `{ user, data }` to accept, `{ refuse: 401 | 403 }` to refuse. [default accept all] */
  readonly authenticate?: Authenticate<TData>;
  /** Browser origins allowed to connect, e.g. `['https://app.example']`; others (and a missing Origin) get 403. [default any origin] */
  readonly allowedOrigins?: readonly string[];
  /** Per-connection incoming message limit. [default none] */
  readonly rateLimit?: RateLimitOptions | false;
  /** Per-connection outgoing bounds; `connection.setOutboxLimits` overrides them for one connection. */
  readonly outbox?: OutboxOptions;
  /**
   * permessage-deflate (RFC 7692) for clients that offer it: each message is compressed once, whatever
   * its number of recipients (a room's in a context the room's members share), and clients' compressed
   * messages are inflated (within `maxPayload`). `true` for the defaults. [default false]
   */
  readonly compression?: boolean | CompressionOptions;
  /** When `health()` says `degraded`. */
  readonly health?: HealthThresholds;
  /** Carries broadcasts to other nodes. [default createMemoryAdapter(), a cluster of one] */
  readonly adapter?: Adapter;
  /**
   * Sessions of `berth.v1` connections: one that drops (not a deliberate close) is kept this long for its
   * client to resume; `false` keeps none. [default { windowMs: 120000, maxSessions: 10000 }]
   */
  readonly recovery?: RecoveryOptions | false;
  /** Numbers and keeps the messages of every stream `berth.v1` clients receive. [default createMemoryHistory()] */
  readonly history?: HistoryStore;
  /** An XState inspection observer; it sees the supervisor and every connection actor. With it, the supervisor, its sessions and connections run as XState Actors; without it, as their machines compiled, which costs less (docs/inspection.md). */
  readonly inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
  /** The clock of every actor's delays (heartbeat, close timeout); pass a `SimulatedClock` in tests. [default real time] */
  readonly clock?: Clock;
}

/** Options of `recovery`. */
export interface RecoveryOptions {
  /** How long a dropped `berth.v1` connection's session waits for its client. [default 120000] */
  readonly windowMs?: number;
  /** Sessions kept at once; past it, a dropped connection keeps none. [default 10000] */
  readonly maxSessions?: number;
  /**
   * How long a client that offered `berth.resume` has to send its `resume`: until then what the
   * connection is sent waits; after it, it goes out and the connection carries on as a fresh one. [default 5000]
   */
  readonly resumeTimeoutMs?: number;
}

/** A clock for actor delays and the rate limiter: `SimulatedClock` from xstate fits. */
export interface Clock {
  setTimeout(callback: (...args: unknown[]) => void, timeout: number): unknown;
  clearTimeout(id: unknown): void;
  /** Milliseconds; the rate limiter refills by it. [default performance.now()] */
  now?(): number;
}

export interface ResolvedOptions<TData> {
  readonly port: number | undefined;
  readonly host: string | undefined;
  readonly server: HttpServer | undefined;
  readonly path: string | undefined;
  readonly maxConnections: number;
  readonly retryAfterSeconds: number;
  readonly maxPayload: number;
  readonly heartbeat: HeartbeatTiming | null;
  readonly closeTimeoutMs: number;
  readonly handshakeTimeoutMs: number;
  readonly authenticate: Authenticate<TData> | undefined;
  readonly allowedOrigins: ReadonlySet<string> | undefined;
  readonly rateLimit: RateLimit | null;
  readonly outbox: OutboxLimits;
  readonly compression: CompressionSettings | undefined;
  readonly health: Required<HealthThresholds>;
  readonly adapter: Adapter;
  readonly history: HistoryStore;
  readonly recovery: { readonly windowMs: number; readonly maxSessions: number; readonly resumeTimeoutMs: number } | null;
  readonly inspect: RuntimeOptions<TData>['inspect'];
  readonly clock: Clock | undefined;
}

/** Validates options, throwing `TypeError`/`RangeError` naming the option, and fills in defaults. */
export function resolveOptions<TData>(options: RuntimeOptions<TData>): ResolvedOptions<TData> {
  object('options', options);
  if (options.port !== undefined && options.server !== undefined) {
    throw new TypeError('give either options.port or options.server, not both');
  }
  if (options.port !== undefined) integer('options.port', options.port, 0, 65535);
  if (options.path !== undefined) text('options.path', options.path, "a string starting with '/'", (path) => path.startsWith('/'));
  const heartbeat =
    options.heartbeat === false
      ? null
      : {
          intervalMs: duration('options.heartbeat.intervalMs', options.heartbeat?.intervalMs ?? 30_000),
          timeoutMs: duration('options.heartbeat.timeoutMs', options.heartbeat?.timeoutMs ?? 10_000),
        };
  optionalFunction('options.authenticate', options.authenticate);
  if (options.allowedOrigins !== undefined && !Array.isArray(options.allowedOrigins)) {
    throw new TypeError('options.allowedOrigins must be an array of origins');
  }
  const maxConnections = options.maxConnections ?? Infinity;
  if (maxConnections !== Infinity) integer('options.maxConnections', maxConnections, 0, Number.MAX_SAFE_INTEGER);
  const outbox = resolveOutboxLimits(options.outbox ?? {});
  return {
    port: options.port,
    host: options.host,
    server: options.server,
    path: options.path,
    maxConnections,
    retryAfterSeconds: integer('options.retryAfterSeconds', options.retryAfterSeconds ?? 5, 0, 86_400),
    maxPayload: integer('options.maxPayload', options.maxPayload ?? 1024 * 1024, 1, 2 ** 31),
    heartbeat,
    closeTimeoutMs: duration('options.closeTimeoutMs', options.closeTimeoutMs ?? 5000),
    handshakeTimeoutMs: integer('options.handshakeTimeoutMs', options.handshakeTimeoutMs ?? 5000, 1, 2 ** 31 - 1),
    authenticate: options.authenticate,
    allowedOrigins: options.allowedOrigins && new Set(options.allowedOrigins.map(normalizeOrigin)),
    rateLimit: resolveRateLimit(options.rateLimit),
    outbox,
    compression: resolveCompression(options.compression),
    health: {
      maxOutboxDepth: positive(
        'options.health.maxOutboxDepth',
        options.health?.maxOutboxDepth ?? Math.max(1, Math.floor(outbox.maxMessages / 2)),
      ),
      maxEventLoopLagMs: positive('options.health.maxEventLoopLagMs', options.health?.maxEventLoopLagMs ?? 200),
      clusterTroubleMs: positive('options.health.clusterTroubleMs', options.health?.clusterTroubleMs ?? 10_000),
    },
    adapter: options.adapter ?? createMemoryAdapter(),
    history: options.history ?? createMemoryHistory(),
    recovery:
      options.recovery === false
        ? null
        : {
            windowMs: duration('options.recovery.windowMs', options.recovery?.windowMs ?? 120_000),
            maxSessions: integer('options.recovery.maxSessions', options.recovery?.maxSessions ?? 10_000, 0, Number.MAX_SAFE_INTEGER),
            resumeTimeoutMs: integer('options.recovery.resumeTimeoutMs', options.recovery?.resumeTimeoutMs ?? 5000, 1, 2 ** 31 - 1),
          },
    inspect: options.inspect,
    clock: options.clock,
  };
}
