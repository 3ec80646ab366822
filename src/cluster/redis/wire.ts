import type { Target } from '../../../machines/types.js';
import type { BroadcastMessage } from '../adapter.js';

/**
 * A broadcast on the Redis channel: one version byte, one flags byte, a
 * 16-bit header length, a JSON header `[origin, kind, name, except]`, then
 * the payload bytes as the application gave them. The payload is never
 * re-encoded: a receiving node frames it once for all its recipients.
 */
const VERSION = 1;
const BINARY = 1;
const HEAD = 4;

export interface WireMessage {
  readonly origin: string;
  readonly message: BroadcastMessage;
}

export function encodeWire(origin: string, message: BroadcastMessage): Buffer {
  const { target } = message;
  const name = target.kind === 'room' ? target.room : target.kind === 'user' ? target.user : '';
  const header = Buffer.from(JSON.stringify([origin, target.kind, name, message.except ?? '']));
  if (header.length > 0xffff) throw new RangeError('broadcast header longer than 65535 bytes (room or user name too long)');
  const payload = typeof message.data === 'string' ? Buffer.from(message.data) : message.data;
  const out = Buffer.allocUnsafe(HEAD + header.length + payload.byteLength);
  out[0] = VERSION;
  out[1] = message.binary ? BINARY : 0;
  out.writeUInt16BE(header.length, 2);
  header.copy(out, HEAD);
  out.set(payload, HEAD + header.length);
  return out;
}

/**
 * Whether a broadcast on the wire was published by `origin` (its bytes, as `Buffer.from(nodeId)`),
 * read from the header's first bytes without decoding anything: a node that hosts members of a room
 * gets its own publications to it back from Redis, and skips them for the cost of a comparison.
 */
export function isFrom(bytes: Buffer, origin: Buffer): boolean {
  // The header is JSON, `["<origin>",…`: node ids are hex, so they appear unescaped.
  const at = HEAD + 2;
  return (
    bytes.length > at + origin.length &&
    bytes[0] === VERSION &&
    bytes[HEAD] === 0x5b &&
    bytes[HEAD + 1] === 0x22 &&
    bytes[at + origin.length] === 0x22 &&
    bytes.compare(origin, 0, origin.length, at, at + origin.length) === 0
  );
}

/** Throws `TypeError` on anything that is not a broadcast of this version. */
export function decodeWire(bytes: Buffer): WireMessage {
  if (bytes.length < HEAD || bytes[0] !== VERSION) throw new TypeError(`not a berth broadcast (version byte ${bytes[0]})`);
  const headerEnd = HEAD + bytes.readUInt16BE(2);
  if (headerEnd > bytes.length) throw new TypeError('berth broadcast truncated');
  const header: unknown = JSON.parse(bytes.toString('utf8', HEAD, headerEnd));
  if (!Array.isArray(header) || header.length !== 4 || !header.every((part) => typeof part === 'string')) {
    throw new TypeError('berth broadcast header malformed');
  }
  const [origin, kind, name, except] = header as [string, string, string, string];
  return {
    origin,
    message: {
      target: target(kind, name),
      except: except === '' ? undefined : except,
      // Text stays UTF-8 bytes: framing them as text needs no round trip through a string.
      data: bytes.subarray(headerEnd),
      binary: (bytes[1]! & BINARY) !== 0,
    },
  };
}

function target(kind: string, name: string): Target {
  if (kind === 'all') return { kind: 'all' };
  if (kind === 'room' && name !== '') return { kind: 'room', room: name };
  if (kind === 'user' && name !== '') return { kind: 'user', user: name };
  throw new TypeError(`berth broadcast target malformed (${kind})`);
}
