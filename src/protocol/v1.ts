/**
 * `berth.v1`, the wire protocol a client asks for with
 * `Sec-WebSocket-Protocol: berth.v1` (docs/protocol.md), as the server
 * speaks it: the subprotocol it chooses, the messages it sends, framed once,
 * and the decoding of what clients send. The frame itself, which
 * `berth/client` shares, is src/wire/codec.ts; nothing here touches a socket.
 */
import type { Target } from '../../machines/types.js';
import { Frame, type Payload } from '../delivery/frame.js';
import type { StreamPosition } from '../history/store.js';
import { decodeBinary, decodeText, encodeBinary, InvalidMessage, shown } from '../wire/codec.js';
import { BERTH_PREFIX, MAX_EARLIER_TOKENS, PROTOCOL_V1, RESUME_INTENT, type RequestId } from '../wire/v1.js';

export type { Payload, RequestId };
export { InvalidMessage, PROTOCOL_V1, RESUME_INTENT };

/**
 * The subprotocol the server answers an offer with: `own` whenever it is offered; else the first
 * offered name that is not berth's (a raw client's own, echoed as ws would: a WebSocket client that
 * offered subprotocols fails a handshake that selects none); else none. A `berth.*` name other than
 * `own` (`berth.v2`, `berth.resume` alone) is never chosen: the server does not speak it, and a client
 * that offered only such names gets no subprotocol, which its WebSocket reports as a failed handshake.
 */
export function chooseSubprotocol(offered: ReadonlySet<string>, own: string): string | false {
  if (offered.has(own)) return own;
  for (const name of offered) if (!name.startsWith(BERTH_PREFIX)) return name;
  return false;
}

/** Whether an upgrade's `Sec-WebSocket-Protocol` offered `berth.resume`: its client will send `resume` first. */
export function offersResume(offered: string | undefined): boolean {
  return offered !== undefined && offered.split(',').some((name) => name.trim() === RESUME_INTENT);
}

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
  if (payload.binary) return Frame.bytes(encodeBinary(header, payload.data as Uint8Array, Buffer.allocUnsafe), true);
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

/**
 * Messages of the stream were lost on their way to this node and its history no longer holds them:
 * the stream now stands at this position, and what lay between the client's position and it is
 * gone (`trimmed`), or the stream's history was lost and it goes on in a new epoch (`epoch-changed`).
 */
export function lostFrame(stream: string, position: StreamPosition, reason: 'trimmed' | 'epoch-changed'): Frame {
  return Frame.text(JSON.stringify({ t: 'lost', s: stream, o: position.offset, e: position.epoch, reason }));
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

/**
 * Decodes one frame a `berth.v1` client sent; throws `InvalidMessage`, with the request's `id` when
 * the frame is a request whose id is valid, so that the error answers that request.
 */
export function decodeClientFrame(data: string | Buffer, binary: boolean): ClientMessage {
  if (!binary) {
    const message = decodeText(data as string);
    if (message.t === 'msg' || message.t === 'req') {
      const id = message.t === 'req' ? requestId(message) : undefined;
      if (typeof message.d !== 'string') {
        throw new InvalidMessage(`"${message.t}" needs "d", a string (send bytes as a binary message)`, id);
      }
      return id === undefined ? { kind: 'msg', data: message.d, binary: false } : { kind: 'req', id, data: message.d, binary: false };
    }
    if (message.t === 'resume') return resumeOf(message);
    throw new InvalidMessage(`unknown message kind ${shown(message.t)}`);
  }
  const { message, payload } = decodeBinary(data as Buffer);
  if (message.t === 'msg') return { kind: 'msg', data: payload, binary: true };
  if (message.t === 'req') return { kind: 'req', id: requestId(message), data: payload, binary: true };
  throw new InvalidMessage(`unknown message kind ${shown(message.t)}`);
}

/** Most positions a resume may name. */
const MAX_POSITIONS = 1000;

const isToken = (token: unknown): token is string => typeof token === 'string' && token.length > 0 && token.length <= 64;

function resumeOf(message: Record<string, unknown>): ClientMessage {
  const { token, positions, earlier } = message;
  if (!isToken(token)) throw new InvalidMessage('"resume" needs "token", the session token of a welcome');
  if (earlier !== undefined && (!Array.isArray(earlier) || earlier.length > MAX_EARLIER_TOKENS || !earlier.every(isToken))) {
    throw new InvalidMessage(`"earlier" must be a list of at most ${MAX_EARLIER_TOKENS} session tokens`);
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
