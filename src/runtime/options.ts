import type { Server as HttpServer } from 'node:http';
import type { InspectionEvent, Observer } from 'xstate';
import type { HeartbeatTiming } from '../machines/connection.machine.js';
import type { Adapter } from './adapter.js';
import { normalizeOrigin, type Authenticate } from './admission.js';
import { createMemoryAdapter } from './memory-adapter.js';
import type { OutboxLimits, OverflowPolicy } from './outbox.js';
import type { HealthThresholds } from './health.js';

/** Per-connection limit on incoming messages (a token bucket). */
export interface RateLimitOptions {
  /** Sustained messages per second. */
  readonly messagesPerSecond: number;
  /** Messages allowed in a burst. [default messagesPerSecond] */
  readonly burst?: number;
  /** `drop` discards messages over the limit (emitting `drop`); `close` closes with 1008. [default 'close'] */
  readonly policy?: 'drop' | 'close';
}

/** Bounds of each connection's outbox, the frames waiting to be written to it (S7). */
export interface OutboxOptions {
  /** Frames waiting at most. [default 1024] */
  readonly maxMessages?: number;
  /** Bytes waiting at most; frames are shared between recipients, so this bounds references, not copies. [default 8388608] */
  readonly maxBytes?: number;
  /** Past a bound: `close` closes with 4001 (slow consumer), `drop-oldest` and `drop-newest` discard frames and emit `drop`. [default 'close'] */
  readonly overflow?: OverflowPolicy;
}

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
  /** How long a closing connection waits for the peer's close frame before its socket is destroyed. [default 5000] */
  readonly closeTimeoutMs?: number;
  /** Decides each upgrade: return `{ user, data }` to accept, `{ refuse: 401 | 403 }` to refuse. [default accept all] */
  readonly authenticate?: Authenticate<TData>;
  /** Browser origins allowed to connect, e.g. `['https://app.example']`; others (and a missing Origin) get 403. [default any origin] */
  readonly allowedOrigins?: readonly string[];
  /** Per-connection incoming message limit. [default none] */
  readonly rateLimit?: RateLimitOptions | false;
  /** Per-connection outgoing bounds; `connection.setOutboxLimits` overrides them for one connection. */
  readonly outbox?: OutboxOptions;
  /** When `health()` says `degraded`. */
  readonly health?: HealthThresholds;
  /** Carries broadcasts to other nodes. [default createMemoryAdapter(), a cluster of one] */
  readonly adapter?: Adapter;
  /** An XState inspection observer; it sees the supervisor and every connection actor. */
  readonly inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
  /** The clock of every actor's delays (heartbeat, close timeout); pass a `SimulatedClock` in tests. [default real time] */
  readonly clock?: Clock;
}

/** A clock for actor delays: `SimulatedClock` from xstate fits. */
export interface Clock {
  setTimeout(callback: (...args: unknown[]) => void, timeout: number): unknown;
  clearTimeout(id: unknown): void;
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
  readonly authenticate: Authenticate<TData> | undefined;
  readonly allowedOrigins: ReadonlySet<string> | undefined;
  readonly rateLimit: Required<RateLimitOptions> | null;
  readonly outbox: OutboxLimits;
  readonly health: Required<HealthThresholds>;
  readonly adapter: Adapter;
  readonly inspect: RuntimeOptions<TData>['inspect'];
  readonly clock: Clock | undefined;
}

/** Validates options, throwing `TypeError`/`RangeError` naming the option, and fills in defaults. */
export function resolveOptions<TData>(options: RuntimeOptions<TData>): ResolvedOptions<TData> {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  if (options.port !== undefined && options.server !== undefined) {
    throw new TypeError('give either options.port or options.server, not both');
  }
  if (options.port !== undefined) integer('port', options.port, 0, 65535);
  if (options.path !== undefined && (typeof options.path !== 'string' || !options.path.startsWith('/'))) {
    throw new TypeError(`options.path must be a string starting with '/', got ${String(options.path)}`);
  }
  const heartbeat =
    options.heartbeat === false
      ? null
      : {
          intervalMs: positive('heartbeat.intervalMs', options.heartbeat?.intervalMs ?? 30_000),
          timeoutMs: positive('heartbeat.timeoutMs', options.heartbeat?.timeoutMs ?? 10_000),
        };
  let rateLimit: Required<RateLimitOptions> | null = null;
  if (options.rateLimit) {
    const { messagesPerSecond, burst = messagesPerSecond, policy = 'close' } = options.rateLimit;
    positive('rateLimit.messagesPerSecond', messagesPerSecond);
    if (!(burst >= 1)) throw new RangeError(`options.rateLimit.burst must be at least 1, got ${String(burst)}`);
    if (policy !== 'drop' && policy !== 'close') {
      throw new TypeError(`options.rateLimit.policy must be 'drop' or 'close', got ${String(policy)}`);
    }
    rateLimit = { messagesPerSecond, burst, policy };
  }
  if (options.authenticate !== undefined && typeof options.authenticate !== 'function') {
    throw new TypeError('options.authenticate must be a function');
  }
  if (options.allowedOrigins !== undefined && !Array.isArray(options.allowedOrigins)) {
    throw new TypeError('options.allowedOrigins must be an array of origins');
  }
  const maxConnections = options.maxConnections ?? Infinity;
  const outbox = resolveOutboxLimits(options.outbox ?? {});
  if (maxConnections !== Infinity) integer('maxConnections', maxConnections, 0, Number.MAX_SAFE_INTEGER);
  return {
    port: options.port,
    host: options.host,
    server: options.server,
    path: options.path,
    maxConnections,
    retryAfterSeconds: integer('retryAfterSeconds', options.retryAfterSeconds ?? 5, 0, 86_400),
    maxPayload: integer('maxPayload', options.maxPayload ?? 1024 * 1024, 1, 2 ** 31),
    heartbeat,
    closeTimeoutMs: positive('closeTimeoutMs', options.closeTimeoutMs ?? 5000),
    authenticate: options.authenticate,
    allowedOrigins: options.allowedOrigins && new Set(options.allowedOrigins.map(normalizeOrigin)),
    rateLimit,
    outbox,
    health: {
      maxOutboxDepth: positive('health.maxOutboxDepth', options.health?.maxOutboxDepth ?? Math.max(1, Math.floor(outbox.maxMessages / 2))),
      maxEventLoopLagMs: positive('health.maxEventLoopLagMs', options.health?.maxEventLoopLagMs ?? 200),
    },
    adapter: options.adapter ?? createMemoryAdapter(),
    inspect: options.inspect,
    clock: options.clock,
  };
}

/** Fills in and checks outbox bounds; `name` prefixes the option in error messages. */
export function resolveOutboxLimits(limits: OutboxOptions, name = 'outbox'): OutboxLimits {
  const overflow = limits.overflow ?? 'close';
  if (overflow !== 'close' && overflow !== 'drop-oldest' && overflow !== 'drop-newest') {
    throw new TypeError(`options.${name}.overflow must be 'close', 'drop-oldest' or 'drop-newest', got ${String(overflow)}`);
  }
  return {
    maxMessages: integer(`${name}.maxMessages`, limits.maxMessages ?? 1024, 1, Number.MAX_SAFE_INTEGER),
    maxBytes: integer(`${name}.maxBytes`, limits.maxBytes ?? 8 * 1024 * 1024, 1, Number.MAX_SAFE_INTEGER),
    overflow,
  };
}

function integer(name: string, value: number, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new TypeError(`options.${name} must be an integer, got ${String(value)}`);
  }
  if (value < min || value > max) throw new RangeError(`options.${name} must be within ${min}–${max}, got ${value}`);
  return value;
}

function positive(name: string, value: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new TypeError(`options.${name} must be a finite number, got ${String(value)}`);
  }
  if (value <= 0) throw new RangeError(`options.${name} must be greater than 0, got ${value}`);
  return value;
}
