import type { IncomingMessage } from 'node:http';
import { isThenable } from '../util/thenable.js';
import { CloseCode } from './close-codes.js';

/** An upgrade answered with plain HTTP instead of a handshake. */
export class Refusal {
  constructor(
    readonly status: number,
    readonly reason: string,
    readonly headers: Readonly<Record<string, string>> = {},
    /**
     * Pacing a browser can see: a `berth.v1` client is told this refusal by a
     * completed handshake and a close with `code` and `retry-after=<seconds>`,
     * since a browser only ever sees 1006 for a refused upgrade.
     */
    readonly pace?: { readonly code: number; readonly retryAfterSeconds: number },
  ) {}
}

/** What `authenticate` returns to refuse an upgrade. */
export interface AuthRefusal {
  readonly refuse: 401 | 403;
  /** Sent as the response body. [default 'unauthorized' or 'forbidden'] */
  readonly reason?: string;
}

/** What `authenticate` returns to accept an upgrade; `undefined` accepts with no user and no data. */
export interface AuthGrant<TData> {
  /** Bound as the connection's user before any event about it is emitted. */
  readonly user?: string;
  /** Attached to the connection as `connection.data`. */
  readonly data?: TData;
}

/** What `authenticate` returns (or resolves with): a grant, a refusal, or nothing, which accepts. */
export type AuthDecision<TData> = AuthGrant<TData> | AuthRefusal | undefined | void;

/** Decides an upgrade from its request: accept (with user and data) or refuse with 401/403. */
export type Authenticate<TData> = (request: IncomingMessage) => AuthDecision<TData> | Promise<AuthDecision<TData>>;

/** What admission grants an accepted upgrade. */
export interface Grant<TData> {
  readonly user: string | undefined;
  readonly data: TData | undefined;
}

export interface AdmissionPolicy<TData> {
  readonly maxConnections: number;
  readonly retryAfterSeconds: number;
  readonly allowedOrigins: ReadonlySet<string> | undefined;
  readonly authenticate: Authenticate<TData> | undefined;
  /** Connections that hold a socket now, plus upgrades being decided. */
  load(): number;
  /** False once the runtime stopped admitting. */
  admitting(): boolean;
}

/**
 * Decides an upgrade, cheapest check first: shutting down or full (503 with
 * `Retry-After`), origin not allowed (403), then `authenticate` (401/403).
 * Synchronous unless `authenticate` returns a promise.
 */
export function admit<TData>(
  policy: AdmissionPolicy<TData>,
  request: IncomingMessage,
): Grant<TData> | Refusal | Promise<Grant<TData> | Refusal> {
  const unavailable = checkAvailable(policy);
  if (unavailable) return unavailable;
  if (policy.allowedOrigins !== undefined && !policy.allowedOrigins.has(normalizeOrigin(request.headers.origin))) {
    return new Refusal(403, 'origin not allowed');
  }
  if (policy.authenticate === undefined) return { user: undefined, data: undefined };
  const decision = policy.authenticate(request);
  if (isThenable(decision)) {
    // The runtime may have begun to shut down while the hook ran.
    return Promise.resolve(decision).then((settled) => checkAvailable(policy, true) ?? toGrant(settled));
  }
  return toGrant(decision);
}

function checkAvailable<TData>(policy: AdmissionPolicy<TData>, alreadyCounted = false): Refusal | undefined {
  const retryAfter = { 'Retry-After': String(policy.retryAfterSeconds) };
  const retryAfterSeconds = policy.retryAfterSeconds;
  if (!policy.admitting()) {
    return new Refusal(503, 'server shutting down', retryAfter, { code: CloseCode.SERVICE_RESTART, retryAfterSeconds });
  }
  // `load()` already counts this upgrade as pending, hence `>`.
  if (!alreadyCounted && policy.load() > policy.maxConnections) {
    return new Refusal(503, 'connection limit reached', retryAfter, { code: CloseCode.TRY_AGAIN_LATER, retryAfterSeconds });
  }
  return undefined;
}

function toGrant<TData>(decision: AuthDecision<TData>): Grant<TData> | Refusal {
  if (decision === undefined || decision === null) return { user: undefined, data: undefined };
  if (typeof decision !== 'object') {
    throw new TypeError(`authenticate must return an object or undefined, got ${typeof decision}`);
  }
  if ('refuse' in decision) {
    if (decision.refuse !== 401 && decision.refuse !== 403) {
      throw new RangeError(`authenticate may refuse with 401 or 403, got ${String(decision.refuse)}`);
    }
    return new Refusal(decision.refuse, decision.reason ?? (decision.refuse === 401 ? 'unauthorized' : 'forbidden'));
  }
  if (decision.user !== undefined && (typeof decision.user !== 'string' || decision.user === '')) {
    throw new TypeError('authenticate returned a user that is not a non-empty string');
  }
  return { user: decision.user, data: decision.data };
}

/** Origins compare case-insensitively, without a trailing slash; a missing Origin is ''. */
export function normalizeOrigin(origin: string | undefined): string {
  return (origin ?? '').trim().toLowerCase().replace(/\/+$/, '');
}
