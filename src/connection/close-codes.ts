/**
 * WebSocket close codes berth sends, receives and reports, with their
 * meanings and what a client should do next.
 *
 * Ranges (RFC 6455 §7.4): 1000–2999 protocol, 3000–3999 registered libraries,
 * 4000–4999 private use. berth reserves 4000–4099 for its own codes; use
 * 4100–4999 for your application's.
 */
export const CloseCode = {
  /** 1000 — the purpose of the connection is fulfilled. */
  NORMAL: 1000,
  /** 1001 — the server is shutting down (`runtime.close()`) or the page is navigating away. */
  GOING_AWAY: 1001,
  /** 1002 — the peer broke the protocol, for instance with an invalid close code. */
  PROTOCOL_ERROR: 1002,
  /** 1003 — the endpoint cannot accept this data type. */
  UNSUPPORTED_DATA: 1003,
  /** 1005 — reported when a close frame carried no code; never sent. */
  NO_STATUS: 1005,
  /** 1006 — reported when the connection ended without a close frame (dropped, terminated); never sent. */
  ABNORMAL: 1006,
  /** 1007 — a text frame was not valid UTF-8. */
  INVALID_PAYLOAD: 1007,
  /** 1008 — a policy was violated; berth sends it when a peer floods past its rate limit. */
  POLICY_VIOLATION: 1008,
  /** 1009 — a message was larger than `maxPayload`. */
  MESSAGE_TOO_BIG: 1009,
  /** 1010 — the client expected an extension the server did not negotiate. */
  MANDATORY_EXTENSION: 1010,
  /** 1011 — the server hit an unexpected condition; berth sends it when an application handler throws. */
  INTERNAL_ERROR: 1011,
  /** 1012 — the server is restarting; reconnect. */
  SERVICE_RESTART: 1012,
  /** 1013 — temporary overload; reconnect later. */
  TRY_AGAIN_LATER: 1013,
  /** 1014 — a gateway got an invalid response upstream. */
  BAD_GATEWAY: 1014,
  /** 4001 — the client read too slowly and its outbox overflowed under the `close` policy; reconnect. */
  SLOW_CONSUMER: 4001,
  /** 4002 — the client resumed this connection's session on another connection (this one looked open, but was gone); do not reconnect. */
  REPLACED: 4002,
} as const;

/** The name of a close code of the catalog (`NORMAL`, `SLOW_CONSUMER` …): a key of `CloseCode`. */
export type CloseCodeName = keyof typeof CloseCode;

/** One row of the catalog. */
export interface CloseCodeInfo {
  readonly code: number;
  readonly name: CloseCodeName;
  readonly meaning: string;
  /** Whether a client should reconnect after it. */
  readonly reconnect: boolean;
  /** Whether the code may appear in a close frame on the wire. */
  readonly onWire: boolean;
}

/** The catalog, in code order; the table in docs/close-codes.md is the same data. */
export const closeCodeCatalog: readonly CloseCodeInfo[] = [
  { code: 1000, name: 'NORMAL', meaning: 'normal closure', reconnect: false, onWire: true },
  { code: 1001, name: 'GOING_AWAY', meaning: 'server shutting down or client navigating away', reconnect: true, onWire: true },
  { code: 1002, name: 'PROTOCOL_ERROR', meaning: 'protocol error (e.g. an invalid close code)', reconnect: false, onWire: true },
  { code: 1003, name: 'UNSUPPORTED_DATA', meaning: 'data type not accepted', reconnect: false, onWire: true },
  { code: 1005, name: 'NO_STATUS', meaning: 'close frame without a code (reported only)', reconnect: true, onWire: false },
  { code: 1006, name: 'ABNORMAL', meaning: 'ended without a close frame (reported only)', reconnect: true, onWire: false },
  { code: 1007, name: 'INVALID_PAYLOAD', meaning: 'text frame was not valid UTF-8', reconnect: false, onWire: true },
  { code: 1008, name: 'POLICY_VIOLATION', meaning: 'policy violated (rate limit exceeded)', reconnect: false, onWire: true },
  { code: 1009, name: 'MESSAGE_TOO_BIG', meaning: 'message larger than maxPayload', reconnect: false, onWire: true },
  { code: 1010, name: 'MANDATORY_EXTENSION', meaning: 'required extension not negotiated', reconnect: false, onWire: true },
  {
    code: 1011,
    name: 'INTERNAL_ERROR',
    meaning: 'unexpected server condition (an application handler threw)',
    reconnect: true,
    onWire: true,
  },
  { code: 1012, name: 'SERVICE_RESTART', meaning: 'server restarting', reconnect: true, onWire: true },
  { code: 1013, name: 'TRY_AGAIN_LATER', meaning: 'temporary overload', reconnect: true, onWire: true },
  { code: 1014, name: 'BAD_GATEWAY', meaning: 'invalid upstream response', reconnect: true, onWire: true },
  { code: 4001, name: 'SLOW_CONSUMER', meaning: 'client read too slowly; outbox overflowed', reconnect: true, onWire: true },
  { code: 4002, name: 'REPLACED', meaning: 'session resumed on another connection', reconnect: false, onWire: true },
];

const byCode = new Map(closeCodeCatalog.map((info) => [info.code, info]));

/** The catalog row for a code, or `undefined` for codes berth does not name (e.g. your 4100–4999). */
export function describeCloseCode(code: number): CloseCodeInfo | undefined {
  return byCode.get(code);
}

/**
 * Whether `code` may be sent in a close frame (RFC 6455 §7.4.1): 1000–1003,
 * 1007–1014 and 3000–4999. 1004–1006 and 1015 are reserved and never sent.
 */
export function isSendableCloseCode(code: number): boolean {
  return Number.isInteger(code) && ((code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999));
}

/** Longest close reason in UTF-8 bytes: a control frame carries 125 bytes, two of them the code. */
export const MAX_CLOSE_REASON_BYTES = 123;

/**
 * Checks arguments to a server-side close. Throws `TypeError` for a code that
 * may not be sent and `RangeError` for a reason longer than 123 UTF-8 bytes.
 */
export function assertCloseArguments(code: number, reason: string): void {
  if (typeof code !== 'number' || !isSendableCloseCode(code)) {
    throw new TypeError(`close code must be 1000–1003, 1007–1014 or 3000–4999, got ${String(code)}`);
  }
  if (typeof reason !== 'string') {
    throw new TypeError(`close reason must be a string, got ${typeof reason}`);
  }
  const bytes = Buffer.byteLength(reason);
  if (bytes > MAX_CLOSE_REASON_BYTES) {
    throw new RangeError(`close reason must be at most ${MAX_CLOSE_REASON_BYTES} bytes in UTF-8, got ${bytes}`);
  }
}
