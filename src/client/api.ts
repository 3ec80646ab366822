/** The public types of `berth/client`: its options, events, message maps and errors. */
import type { Backoff, clientStateOf } from '../../machines/client.machine.js';

/** Where a client is. */
export type ClientState = ReturnType<typeof clientStateOf>;

/** The WebSocket class the client uses: the browser's, or `ws`'s in Node. */
export interface WebSocketClass {
  new (url: string, protocols: string[]): ClientSocket;
}

/** What the client needs of a WebSocket (the browser's and `ws`'s both fit). */
export interface ClientSocket {
  binaryType: string;
  readonly readyState: number;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

/** What `createClient` takes besides the URL. */
export interface ClientOptions {
  /** The WebSocket class. [default globalThis.WebSocket, or `ws` in Node] */
  readonly WebSocket?: WebSocketClass;
  /** [default { initialMs: 250, maxMs: 30000 }] */
  readonly backoff?: Partial<Backoff>;
  /** Messages `send` queues while the client is not open; past it `send` returns false and drops nothing already queued. [default 1000] */
  readonly maxQueue?: number;
  /** How long `request` waits for its reply. [default 10000] */
  readonly requestTimeoutMs?: number;
  /** How long `close` waits for the server's close. [default 5000] */
  readonly closeTimeoutMs?: number;
  /** How long a connection attempt waits for the server's welcome before it is dropped and retried with backoff. [default 10000] */
  readonly connectTimeoutMs?: number;
  /**
   * Whether to reconnect after a close with this code. [default: after 1001, 1005, 1006, 1011–1014,
   * 4001 and other berth codes marked reconnect in the catalog; never after 1000, 1002, 1003, 1007–1010
   * or an application's 4100–4999]
   */
  readonly reconnect?: (code: number) => boolean;
}

/** A message of a stream, as the client received it. */
export interface StreamMessage<T = string | Uint8Array> {
  readonly stream: string;
  readonly offset: number;
  readonly epoch: string;
  /** Text as a string, bytes as a Uint8Array; with `json: true`, text parsed as JSON. */
  readonly data: T;
}

/**
 * What a client sends and receives: `createClient<Chat>(url, { json: true })` types `send`, `request`
 * and every `message`'s `data` with it, and carries them as JSON text.
 */
export interface MessageMap {
  /** What the server sends: each `message` event's `data`. */
  readonly receive: unknown;
  /** What `send` takes. */
  readonly send: unknown;
  /** What `request` takes. [default: `send`] */
  readonly request?: unknown;
  /** What a `request` resolves with. [default: `receive`] */
  readonly reply?: unknown;
}

/** Without a message map: text as strings, bytes as `Uint8Array`s, both ways. */
export interface RawMessages {
  readonly receive: string | Uint8Array;
  readonly send: string | Uint8Array;
  readonly request: string | Uint8Array;
  readonly reply: string | Uint8Array;
}

/** What `request` takes under a message map. */
export type RequestOf<M extends MessageMap> = M extends { readonly request: infer R } ? R : M['send'];
/** What a `request` resolves with under a message map. */
export type ReplyOf<M extends MessageMap> = M extends { readonly reply: infer R } ? R : M['receive'];

/** A request the server answered with an error, or that got no answer. */
export class ClientRequestError extends Error {
  override readonly name = 'ClientRequestError';
  /** The server's code (`no-handler`, `handler-failed`, the application's own), or `timeout`, `disconnected`, `invalid-json`, `invalid-server-message`. */
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

/** The code of the `error` event for a frame from the server that is no `berth.v1` message. */
export const INVALID_SERVER_MESSAGE = 'invalid-server-message';

/**
 * The events of a client, by name, and what each carries (`client.on`): nouns for what arrives, `close`,
 * and a past participle for every other outcome.
 */
export interface ClientEvents<M extends MessageMap = RawMessages> {
  state: ClientState;
  message: StreamMessage<M['receive']>;
  welcome: { id: string };
  close: { code: number; reason: string };
  /**
   * Back after a drop: `recovered` with every message missed replayed (before this event, in order), or
   * not — then `lost` names the streams, `reason` says why, and the client starts fresh.
   */
  resumed: { recovered: boolean; lost: ReadonlyArray<{ stream: string; reason: string }>; reason: string | undefined };
  /**
   * The server answered something the client sent with an error (not a request's); with `json: true`,
   * a text message was not JSON (`code` `invalid-json`: the message is skipped, its position kept); or
   * the server sent a frame that is no `berth.v1` message (`code` `invalid-server-message`: the frame
   * is skipped, and `message` says what is wrong with it).
   */
  error: { code: string; message: string };
  /**
   * Messages of `stream` were lost while the connection stayed open (durable streams: its server's node
   * missed them, and the cluster's history no longer holds them): `reason` is `trimmed` or
   * `epoch-changed`. What follows on the stream is delivered as usual.
   */
  lost: { stream: string; reason: string };
}

/** Every client event by name: subscribing to any other name throws. */
export const CLIENT_EVENTS: { readonly [K in keyof ClientEvents]: true } = {
  state: true,
  message: true,
  welcome: true,
  close: true,
  lost: true,
  resumed: true,
  error: true,
};
