/**
 * The client's side of `berth.v1` messages (docs/protocol.md), on the codec
 * it shares with the server: what it sends, and what the server sends,
 * decoded and checked, so that a malformed frame is an `InvalidMessage`
 * and never a wrong value further in.
 */
import { decodeBinary, decodeText, encodeBinary, InvalidMessage, shown } from '../wire/codec.js';
import type { RequestId } from '../wire/v1.js';

/** A message the server sent, as checked by `readServerFrame`. */
export type ServerMessage =
  | { readonly t: 'welcome'; readonly id: string; readonly session?: string }
  | {
      readonly t: 'resumed';
      readonly recovered: boolean;
      readonly reason?: string;
      readonly lost?: ReadonlyArray<{ readonly s: string; readonly reason: string }>;
    }
  | { readonly t: 'msg'; readonly s: string; readonly o: number; readonly e: string; readonly d?: string }
  | { readonly t: 'joined' | 'skip'; readonly s: string; readonly o: number; readonly e: string }
  | { readonly t: 'lost'; readonly s: string; readonly o: number; readonly e: string; readonly reason: string }
  | { readonly t: 'left'; readonly s: string }
  | { readonly t: 'reply'; readonly id: RequestId; readonly d?: string }
  | { readonly t: 'error'; readonly id?: RequestId; readonly code: string; readonly message: string };

/** A frame the server sent: its message and, in the binary form, the payload. */
export interface ServerFrame {
  readonly message: ServerMessage;
  readonly payload: Uint8Array | undefined;
}

const isString = (value: unknown): value is string => typeof value === 'string';
const isId = (value: unknown): value is RequestId => typeof value === 'number' || typeof value === 'string';
const isPosition = (message: Record<string, unknown>): boolean =>
  isString(message.s) && Number.isSafeInteger(message.o) && (message.o as number) >= 0 && isString(message.e);
const isLost = (lost: unknown): boolean =>
  Array.isArray(lost) && lost.every((entry: { s?: unknown; reason?: unknown } | null) => isString(entry?.s) && isString(entry?.reason));

/** What each kind needs, as an `InvalidMessage` says it. */
const SHAPES: Record<ServerMessage['t'], string> = {
  welcome: '"id", a string (and "session", a string)',
  resumed: '"recovered", a boolean ("reason", a string, unless recovered; "lost", a list of { "s", "reason" })',
  msg: '"s", "o" (an integer ≥ 0) and "e", and "d", a string, or a binary payload',
  joined: '"s", "o" (an integer ≥ 0) and "e"',
  skip: '"s", "o" (an integer ≥ 0) and "e"',
  lost: '"s", "o" (an integer ≥ 0), "e" and "reason"',
  left: '"s", a string',
  reply: '"id", and "d", a string, or a binary payload',
  error: '"code" and "message", strings (and "id")',
};

/**
 * Decodes and checks a frame the server sent (text, or an ArrayBuffer or view of bytes). Undefined
 * for a kind of a later version of `berth.v1`: a client ignores it, as the protocol's versioning rule
 * says. Throws `InvalidMessage`, with the `id` of a `reply` or `error` whose id could be read.
 */
export function readServerFrame(data: unknown): ServerFrame | undefined {
  let message: Record<string, unknown>;
  let payload: Uint8Array | undefined;
  if (typeof data === 'string') message = decodeText(data);
  else if (data instanceof ArrayBuffer) ({ message, payload } = decodeBinary(new Uint8Array(data)));
  else if (ArrayBuffer.isView(data)) ({ message, payload } = decodeBinary(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)));
  else throw new InvalidMessage('a frame must be text or bytes');
  const text = payload === undefined;
  let valid: boolean;
  switch (message.t) {
    case 'welcome':
      valid = isString(message.id) && (message.session === undefined || isString(message.session));
      break;
    case 'resumed':
      valid =
        typeof message.recovered === 'boolean' &&
        (message.recovered || isString(message.reason)) &&
        (message.lost === undefined || isLost(message.lost));
      break;
    case 'msg':
      valid = isPosition(message) && (!text || isString(message.d));
      break;
    case 'joined':
    case 'skip':
      valid = isPosition(message);
      break;
    case 'lost':
      valid = isPosition(message) && isString(message.reason);
      break;
    case 'left':
      valid = isString(message.s);
      break;
    case 'reply':
      valid = isId(message.id) && (!text || isString(message.d));
      break;
    case 'error':
      valid = isString(message.code) && isString(message.message) && (message.id === undefined || isId(message.id));
      break;
    default:
      if (!isString(message.t)) throw new InvalidMessage(`a message needs "t", a string: ${shown(message)}`);
      return undefined;
  }
  if (!valid) {
    const id = (message.t === 'reply' || message.t === 'error') && isId(message.id) ? message.id : undefined;
    throw new InvalidMessage(`"${message.t}" needs ${SHAPES[message.t]}: ${shown(message)}`, id);
  }
  return { message: message as ServerMessage, payload };
}

/**
 * A `msg` or `req` frame of `data`: bytes go binary; a string, or with `json` any other value as JSON,
 * goes as text. Throws `TypeError` for data that has no such form.
 */
export function clientFrame(header: { t: 'msg' } | { t: 'req'; id: number }, data: unknown, json: boolean): string | Uint8Array {
  if (data instanceof Uint8Array) return encodeBinary(header, data);
  if (json) {
    const text = JSON.stringify(data);
    if (text === undefined) throw new TypeError('data has no JSON form (undefined, a function or a symbol)');
    return JSON.stringify({ ...header, d: text });
  }
  if (typeof data !== 'string') throw new TypeError('data must be a string or a Uint8Array (or pass json: true)');
  return JSON.stringify({ ...header, d: data });
}

/** The `resume` message: the session to take, where each stream stood, and the `earlier` tokens to try after it. */
export function resumeFrame(
  token: string,
  positions: ReadonlyMap<string, { readonly offset: number; readonly epoch: string }>,
  earlier: readonly string[],
): string {
  const at: Record<string, { o: number; e: string }> = {};
  for (const [stream, { offset, epoch }] of positions) at[stream] = { o: offset, e: epoch };
  return JSON.stringify(earlier.length === 0 ? { t: 'resume', token, positions: at } : { t: 'resume', token, positions: at, earlier });
}
