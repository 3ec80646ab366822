/**
 * The frames of `berth.v1`, both ways, for both ends: the server's protocol
 * module (src/protocol/v1.ts) and `berth/client`. Uint8Array and
 * TextEncoder/TextDecoder only, so that it runs in browsers as in Node.
 *
 * - A text frame holds one JSON object whose `t` names the kind.
 * - A binary frame holds a 16-bit big-endian header length, that many bytes
 *   of JSON header (the object without `d`), then the payload bytes.
 */
import type { RequestId } from './v1.js';

/** Longest JSON header of a binary message, in bytes. */
export const MAX_HEADER = 0xffff;

/**
 * Thrown for a frame that is not a `berth.v1` message; the message says what is wrong with it.
 * `id` is the request's, when the frame is a request whose id is valid: the error answers it.
 */
export class InvalidMessage extends Error {
  readonly id: RequestId | undefined;

  constructor(message: string, id?: RequestId) {
    super(message);
    this.id = id;
  }
}

/** A binary frame decoded: its header's JSON object (with `t` unchecked) and the payload after it. */
export interface BinaryFrame<Bytes extends Uint8Array> {
  readonly message: Record<string, unknown>;
  readonly payload: Bytes;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
/** Where a binary header is encoded before its length is known: one per process, made on first use. */
let headerScratch: Uint8Array | undefined;

/** Decodes a text frame into its JSON object; throws `InvalidMessage`. */
export function decodeText(text: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new InvalidMessage('a text frame must be a JSON object');
  }
  return object(parsed);
}

/**
 * Decodes a binary frame into its header's JSON object and the payload, a view of `bytes` (a Buffer's
 * is a Buffer); throws `InvalidMessage`.
 */
export function decodeBinary<Bytes extends Uint8Array>(bytes: Bytes): BinaryFrame<Bytes> {
  if (bytes.byteLength < 2) throw new InvalidMessage('a binary frame starts with a 16-bit header length');
  const end = 2 + ((bytes[0]! << 8) | bytes[1]!);
  if (end > bytes.byteLength) throw new InvalidMessage('binary header longer than the frame');
  let header: unknown;
  try {
    header = JSON.parse(decoder.decode(bytes.subarray(2, end)));
  } catch {
    throw new InvalidMessage('a binary header must be a JSON object');
  }
  // A typed array's subarray is of its own class: a Buffer's payload is a Buffer.
  return { message: object(header), payload: bytes.subarray(end) as Bytes };
}

/**
 * The binary form of a message: header length, JSON `header`, `payload`, written once into a buffer of
 * `allocate` (the server's `Buffer.allocUnsafe`) [default `new Uint8Array`]. Throws `RangeError` for a
 * header past `MAX_HEADER` bytes.
 */
export function encodeBinary<Bytes extends Uint8Array = Uint8Array>(
  header: object,
  payload: Uint8Array,
  allocate: (size: number) => Bytes = (size) => new Uint8Array(size) as Bytes,
): Bytes {
  const json = JSON.stringify(header);
  headerScratch ??= new Uint8Array(MAX_HEADER);
  // Encoded straight into the scratch: one pass, no intermediate buffer of the header's own.
  const { read, written } = encoder.encodeInto(json, headerScratch);
  if (read < json.length) throw new RangeError(`a berth.v1 header is at most ${MAX_HEADER} bytes (stream name too long)`);
  const out = allocate(2 + written + payload.byteLength);
  out[0] = written >> 8;
  out[1] = written & 0xff;
  out.set(headerScratch.subarray(0, written), 2);
  out.set(payload, 2 + written);
  return out;
}

/** A value of the peer's, short enough to echo back and to log. */
export function shown(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

function object(value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidMessage('a message must be a JSON object with "t"');
  }
  return value as Record<string, unknown>;
}
