/**
 * `berth.v1`, the wire protocol a client asks for with
 * `Sec-WebSocket-Protocol: berth.v1` (docs/protocol.md). This file holds the
 * encoding of every message, both ways; nothing here touches a socket.
 *
 * - Text messages are JSON objects whose `t` names the kind.
 * - A message with a binary payload is a binary frame: a 16-bit big-endian
 *   header length, that many bytes of JSON header (the same object without
 *   `d`), then the payload bytes.
 */
import type { Target } from '../../machines/types.js';
import { Frame, type Payload } from '../delivery/frame.js';

export type { Payload };
import type { StreamPosition } from '../history/store.js';

/** The subprotocol name. */
export const PROTOCOL_V1 = 'berth.v1';
/**
 * Offered beside `berth.v1` by a client that will send `resume` as its first
 * message: the server then holds the connection's live messages from the
 * start, so that none comes before, or twice with, the replay. Never chosen.
 */
export const RESUME_INTENT = 'berth.resume';

/** Longest JSON header of a binary message. */
const MAX_HEADER = 0xffff;

/** The stream a broadcast belongs to: `room:<name>`, `user:<name>`, or `all`. */
export function streamOf(target: Target): string {
  switch (target.kind) {
    case 'room':
      return `room:${target.room}`;
    case 'user':
      return `user:${target.user}`;
    case 'all':
      return 'all';
  }
}

/** The stream of the messages sent to one connection. */
/** What every connection's own stream is named with, before its id. */
export const CONNECTION_STREAM_PREFIX = 'conn:';

export function connectionStream(id: string): string {
  return `${CONNECTION_STREAM_PREFIX}${id}`;
}

/**
 * A message of a stream, framed once for every `berth.v1` recipient:
 * `{"t":"msg","s":stream,"o":offset,"e":epoch,"d":text}`, or the binary form.
 */
export function messageFrame(stream: string, position: StreamPosition, payload: Payload): Frame {
  return payloadFrame({ t: 'msg', s: stream, o: position.offset, e: position.epoch }, payload);
}

/** A message carrying a payload: its text in `d` (text form), or its bytes after the header (binary form). */
function payloadFrame(header: Record<string, unknown>, payload: Payload): Frame {
  if (payload.binary) return Frame.bytes(binaryMessage(header, payload.data as Uint8Array), true);
  const { data } = payload;
  const text = typeof data === 'string' ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8');
  return Frame.text(JSON.stringify({ ...header, d: text }));
}

/** The first message on every `berth.v1` connection; `session` is its token when the server keeps sessions. */
export function welcomeFrame(id: string, session: string | undefined): Frame {
  return Frame.text(JSON.stringify(session === undefined ? { t: 'welcome', v: 1, id } : { t: 'welcome', v: 1, id, session }));
}

/** Why a resume recovered nothing. */
export type ResumeFailure = 'unknown-session' | 'lost' | 'already-resumed' | 'not-kept';

/** A stream a resume could not recover, and why. */
export interface LostStream {
  readonly s: string;
  readonly reason: string;
}

/** The answer to `resume`: everything before it on this connection was the replay. */
export function resumedFrame(
  answer:
    { recovered: true; previous: string; replayed: number } | { recovered: false; reason: ResumeFailure; lost: readonly LostStream[] },
): Frame {
  return Frame.text(JSON.stringify({ t: 'resumed', ...answer }));
}

/** Where a stream the connection just joined stands: its next message has offset `o + 1`. */
export function joinedFrame(stream: string, position: StreamPosition): Frame {
  return Frame.text(JSON.stringify({ t: 'joined', s: stream, o: position.offset, e: position.epoch }));
}

/**
 * The message at this offset of the stream was not for this connection (it
 * was sent with `except` naming it): the offset is taken, nothing is lost.
 */
export function skipFrame(stream: string, position: StreamPosition): Frame {
  return Frame.text(JSON.stringify({ t: 'skip', s: stream, o: position.offset, e: position.epoch }));
}

/** The connection no longer receives this stream. */
export function leftFrame(stream: string): Frame {
  return Frame.text(JSON.stringify({ t: 'left', s: stream }));
}

/** Error codes of the `error` message that berth itself sends; a request handler may answer with codes of its own, but not these. */
export const ProtocolErrorCode = {
  /** The frame is not a `berth.v1` message (not JSON, no known `t`, a field of the wrong type, a bad binary header). */
  INVALID_MESSAGE: 'invalid-message',
  /** A request arrived, and the application handles none (`runtime.onRequest` was never called). */
  NO_HANDLER: 'no-handler',
  /** The request handler threw something other than a `RequestError`, or answered with something that is no message. */
  HANDLER_FAILED: 'handler-failed',
} as const;

/** A request's correlation id: chosen by the client, echoed in its reply or error. */
export type RequestId = number | string;

/** An error the server answers a client's message with (with the id of the request it answers, if any); the connection stays open. */
export function errorFrame(code: string, message: string, id?: RequestId): Frame {
  return Frame.text(JSON.stringify(id === undefined ? { t: 'error', code, message } : { t: 'error', id, code, message }));
}

/** The answer to a request, in the text or binary form of its payload. */
export function replyFrame(id: RequestId, payload: Payload): Frame {
  return payloadFrame({ t: 'reply', id }, payload);
}

/** What a `berth.v1` client sent, decoded. */
export type ClientMessage =
  | { readonly kind: 'msg'; readonly data: string | Buffer; readonly binary: boolean }
  | {
      readonly kind: 'resume';
      /** The session to take, then the earlier ones to try in order if it is unknown (`earlier`). */
      readonly tokens: readonly string[];
      readonly positions: ReadonlyMap<string, StreamPosition>;
    }
  | { readonly kind: 'req'; readonly id: RequestId; readonly data: string | Buffer; readonly binary: boolean };

/** Longest string request id. */
const MAX_ID_LENGTH = 64;

function requestId(message: Record<string, unknown>): RequestId {
  const { id } = message;
  if (typeof id === 'number' && Number.isSafeInteger(id) && id >= 0) return id;
  if (typeof id === 'string' && id.length > 0 && id.length <= MAX_ID_LENGTH) return id;
  throw new InvalidMessage(`"req" needs "id": an integer ≥ 0 or a string of 1–${MAX_ID_LENGTH} characters`);
}

/** Thrown for a frame that is not a `berth.v1` message; the message says what is wrong with it. */
export class InvalidMessage extends Error {}

/** Decodes one frame a `berth.v1` client sent; throws `InvalidMessage`. */
export function decodeClientFrame(data: string | Buffer, binary: boolean): ClientMessage {
  if (!binary) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(data as string);
    } catch {
      throw new InvalidMessage('a text frame must be a JSON object');
    }
    const message = object(parsed);
    if (message.t === 'msg' || message.t === 'req') {
      if (typeof message.d !== 'string') throw new InvalidMessage(`"${message.t}" needs "d", a string (send bytes as a binary message)`);
      if (message.t === 'req') return { kind: 'req', id: requestId(message), data: message.d, binary: false };
      return { kind: 'msg', data: message.d, binary: false };
    }
    if (message.t === 'resume') return resumeOf(message);
    throw new InvalidMessage(`unknown message kind ${shown(message.t)}`);
  }
  const bytes = data as Buffer;
  if (bytes.length < 2) throw new InvalidMessage('a binary frame starts with a 16-bit header length');
  const end = 2 + bytes.readUInt16BE(0);
  if (end > bytes.length) throw new InvalidMessage('binary header longer than the frame');
  let header: unknown;
  try {
    header = JSON.parse(bytes.toString('utf8', 2, end));
  } catch {
    throw new InvalidMessage('a binary header must be a JSON object');
  }
  const message = object(header);
  if (message.t === 'msg') return { kind: 'msg', data: bytes.subarray(end), binary: true };
  if (message.t === 'req') return { kind: 'req', id: requestId(message), data: bytes.subarray(end), binary: true };
  throw new InvalidMessage(`unknown message kind ${shown(message.t)}`);
}

/** Most positions a resume may name. */
const MAX_POSITIONS = 1000;
/** Most earlier tokens a resume may name. */
const MAX_EARLIER = 4;

const isToken = (token: unknown): token is string => typeof token === 'string' && token.length > 0 && token.length <= 64;

function resumeOf(message: Record<string, unknown>): ClientMessage {
  const { token, positions, earlier } = message;
  if (!isToken(token)) throw new InvalidMessage('"resume" needs "token", the session token of a welcome');
  if (earlier !== undefined && (!Array.isArray(earlier) || earlier.length > MAX_EARLIER || !earlier.every(isToken))) {
    throw new InvalidMessage(`"earlier" must be a list of at most ${MAX_EARLIER} session tokens`);
  }
  const out = new Map<string, StreamPosition>();
  if (positions !== undefined) {
    if (typeof positions !== 'object' || positions === null || Array.isArray(positions)) {
      throw new InvalidMessage('"positions" must be an object of stream → { "o": offset, "e": epoch }');
    }
    const entries = Object.entries(positions as Record<string, unknown>);
    if (entries.length > MAX_POSITIONS) throw new InvalidMessage(`"positions" names at most ${MAX_POSITIONS} streams`);
    for (const [stream, position] of entries) {
      const { o, e } = (position ?? {}) as { o?: unknown; e?: unknown };
      if (!Number.isSafeInteger(o) || (o as number) < 0 || typeof e !== 'string') {
        throw new InvalidMessage(`the position of ${shown(stream)} must be { "o": an integer ≥ 0, "e": a string }`);
      }
      out.set(stream, { offset: o as number, epoch: e });
    }
  }
  return { kind: 'resume', tokens: [token, ...((earlier as string[] | undefined) ?? [])], positions: out };
}

/** A value of the client's, short enough to echo back and to log. */
function shown(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

function object(value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new InvalidMessage('a message must be a JSON object with "t"');
  return value as Record<string, unknown>;
}

/** A binary message: header length, JSON header, payload. */
export function binaryMessage(header: Record<string, unknown>, payload: Uint8Array): Buffer {
  const head = Buffer.from(JSON.stringify(header));
  if (head.length > MAX_HEADER) throw new RangeError(`a berth.v1 header is at most ${MAX_HEADER} bytes (stream name too long)`);
  const out = Buffer.allocUnsafe(2 + head.length + payload.byteLength);
  out.writeUInt16BE(head.length, 0);
  head.copy(out, 2);
  out.set(payload, 2 + head.length);
  return out;
}
