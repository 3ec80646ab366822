/**
 * Stable codes of the errors berth emits on its `error` event, and of the
 * `BerthError`s it throws. Other caller misuse throws `TypeError` or
 * `RangeError` synchronously.
 */
export const ErrorCode = {
  /** An application event handler threw or its promise rejected. Its connection (if any) is closed with 1011. */
  HANDLER_FAILED: 'ERR_HANDLER_FAILED',
  /** The `authenticate` hook threw or rejected; the upgrade was answered with HTTP 500. */
  AUTHENTICATE_FAILED: 'ERR_AUTHENTICATE_FAILED',
  /** The peer sent something the transport refused (bad frame, oversized message, invalid close code), or the socket failed. */
  SOCKET: 'ERR_SOCKET',
  /** A write to a socket failed; the connection is closed. */
  SEND_FAILED: 'ERR_SEND_FAILED',
  /** The adapter failed: a broadcast did not reach other nodes, the cluster link went down, or a presence write or read failed. Local delivery is not affected. */
  ADAPTER: 'ERR_ADAPTER',
  /** A `berth.v1` client sent a frame that is not a message of the protocol; it was answered with an `error` message and dropped. */
  PROTOCOL: 'ERR_PROTOCOL',
  /** The history store failed to number a stream's message; its `berth.v1` recipients did not get it (counted as dropped, `history-unavailable`). */
  HISTORY: 'ERR_HISTORY',
  /** A connection actor failed unexpectedly (a bug in berth); its socket was terminated. */
  ACTOR_FAILED: 'ERR_ACTOR_FAILED',
  /**
   * Thrown (not emitted) by `sendToRoom`, `sendToUser` and `sendToAll` once `runtime.close()` has
   * resolved: nobody is left to receive it, and a send that reaches nobody is never silent.
   */
  CLOSED: 'ERR_CLOSED',
} as const;

/** A code of `ErrorCode` (`'ERR_ADAPTER'` …): what `BerthError.code` holds. */
export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

/** An error berth reports on its `error` event; `code` is stable, `cause` the original error if any. */
export class BerthError extends Error {
  override readonly name = 'BerthError';
  readonly code: ErrorCodeValue;

  constructor(code: ErrorCodeValue, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** The `error` codes berth itself answers with (docs/protocol.md); an application's would be mistaken for them. */
const BERTH_REQUEST_CODES: ReadonlySet<string> = new Set(['invalid-message', 'no-handler', 'handler-failed']);

/**
 * What a request handler throws to answer a request with a typed error: the
 * client gets `{ t: 'error', id, code, message }` with these, and the
 * connection carries on. Anything else a handler throws answers
 * `handler-failed` (and is reported as `ERR_HANDLER_FAILED`).
 */
export class RequestError extends Error {
  override readonly name = 'RequestError';
  /** Sent to the client; a short, stable string of your application's (`not-found`, `forbidden` …). */
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    if (typeof code !== 'string' || code.length === 0) throw new TypeError('a RequestError needs a non-empty string code');
    if (BERTH_REQUEST_CODES.has(code)) throw new TypeError(`a RequestError may not use berth's own code ${JSON.stringify(code)}`);
    this.code = code;
  }
}

/** Wraps anything thrown into a `BerthError` with the given code. */
export function toBerthError(code: ErrorCodeValue, what: string, thrown: unknown): BerthError {
  const detail = thrown instanceof Error ? thrown.message : String(thrown);
  return new BerthError(code, `${what}: ${detail}`, { cause: thrown });
}
