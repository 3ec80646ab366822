/**
 * The demo chat's wire protocol: JSON text, one message per WebSocket frame
 * (a raw client) or per `berth.v1` message (berth/client). The name comes
 * with the upgrade (`/ws?name=…`). This file only parses and encodes; what
 * the messages do is `server.ts`'s.
 */

/** Longest name, in characters (Unicode code points), after trimming. */
export const MAX_NAME_LENGTH = 32;
/** Longest `say`/`whisper` text, in characters (Unicode code points). */
export const MAX_TEXT_LENGTH = 2000;
/** Room names: 1–64 ASCII letters, digits, `_` or `-`, so they are safe in URLs, logs and element ids. */
export const ROOM_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** What a client may send. */
export type ClientMessage =
  | { readonly type: 'join'; readonly room: string }
  | { readonly type: 'leave'; readonly room: string }
  | { readonly type: 'say'; readonly room: string; readonly text: string }
  | { readonly type: 'whisper'; readonly to: string; readonly text: string };

/** Why a client message was refused; sent as `{"type":"error","code",...}`. */
export type ErrorCode = 'bad-json' | 'unknown-type' | 'invalid' | 'not-in-room';

/** What the server sends. */
export type ServerMessage =
  | { readonly type: 'welcome'; readonly id: string; readonly name: string }
  | { readonly type: 'joined'; readonly room: string; readonly members: readonly string[] }
  | Presence
  | { readonly type: 'left'; readonly room: string }
  | { readonly type: 'said'; readonly room: string; readonly from: string; readonly text: string; readonly at: number }
  | { readonly type: 'whispered'; readonly from: string; readonly text: string }
  | { readonly type: 'error'; readonly code: ErrorCode; readonly message: string };

/**
 * Someone's connection `id` joined or left a room. `dropped`: it left because
 * its connection was lost, and may come back; `resumed`: it came back, with
 * the session of the connection it lost. Each is there only when true.
 */
export interface Presence {
  readonly type: 'presence';
  readonly room: string;
  readonly name: string;
  readonly id: string;
  readonly event: 'join' | 'leave';
  readonly dropped?: true;
  readonly resumed?: true;
}

/** A refused client message, ready to send back. */
export type ProtocolError = Extract<ServerMessage, { type: 'error' }>;

export function protocolError(code: ErrorCode, message: string): ProtocolError {
  return { type: 'error', code, message };
}

export function encode(message: ServerMessage): string {
  return JSON.stringify(message);
}

/**
 * Parses one text frame. Names come back trimmed; text comes back as sent
 * (its whitespace may be deliberate). Unknown extra fields are ignored so
 * a newer client still talks to an older server.
 */
export function parseClientMessage(data: string): ClientMessage | ProtocolError {
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return protocolError('bad-json', 'message is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return protocolError('invalid', 'message must be a JSON object');
  }
  const fields = value as Record<string, unknown>;
  switch (fields.type) {
    case 'join':
    case 'leave':
      return isRoom(fields.room) ? { type: fields.type, room: fields.room } : invalid('room', roomRule);
    case 'say':
      if (!isRoom(fields.room)) return invalid('room', roomRule);
      return isText(fields.text) ? { type: 'say', room: fields.room, text: fields.text } : invalid('text', textRule);
    case 'whisper': {
      const to = parseName(fields.to);
      if (to === undefined) return invalid('to', nameRule);
      return isText(fields.text) ? { type: 'whisper', to, text: fields.text } : invalid('text', textRule);
    }
    default:
      return typeof fields.type === 'string'
        ? protocolError('unknown-type', `unknown message type ${JSON.stringify(fields.type.slice(0, 40))}`)
        : invalid('type', 'a string');
  }
}

/** What a name must be, for messages to people. */
export const NAME_RULE = `1–${MAX_NAME_LENGTH} characters after trimming`;

const nameRule = `a string of ${NAME_RULE}`;
const roomRule = '1–64 characters of A–Z, a–z, 0–9, _ or -';
const textRule = `a string of 1–${MAX_TEXT_LENGTH} characters`;

function invalid(field: string, rule: string): ProtocolError {
  return protocolError('invalid', `${field} must be ${rule}`);
}

/** Counts code points, not UTF-16 units, so an emoji is one character as a person would count it. */
function characters(text: string): number {
  let count = 0;
  for (const _ of text) count++;
  return count;
}

/** A name as given (the `name` of the upgrade URL, a whisper's `to`), trimmed; undefined unless it is 1–32 characters. */
export function parseName(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const name = value.trim();
  const length = characters(name);
  return length >= 1 && length <= MAX_NAME_LENGTH ? name : undefined;
}

function isRoom(value: unknown): value is string {
  return typeof value === 'string' && ROOM_PATTERN.test(value);
}

function isText(value: unknown): value is string {
  if (typeof value !== 'string') return false;
  // Cheap bound first: more UTF-16 units than twice the limit cannot fit.
  if (value.length === 0 || value.length > 2 * MAX_TEXT_LENGTH) return false;
  return characters(value) <= MAX_TEXT_LENGTH;
}
