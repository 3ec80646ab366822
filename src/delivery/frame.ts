import type { EncodedFrame } from '../../machines/types.js';
import { describe } from '../util/validate.js';

/** Data a connection can send: text, or bytes (binary frames unless `binary: false`). */
export type SendData = string | Uint8Array | ArrayBuffer;

const OPCODE_TEXT = 0x1;
const OPCODE_BINARY = 0x2;
const FIN = 0x80;
/** RFC 7692: set on the first frame of a compressed message. */
const RSV1 = 0x40;

/** Up to this payload size header and payload share one buffer; above it the payload is referenced, not copied. */
const MERGE_LIMIT = 16 * 1024;

function headerLength(payloadLength: number): number {
  return payloadLength < 126 ? 2 : payloadLength < 65536 ? 4 : 10;
}

function writeHeader(target: Buffer, opcode: number, payloadLength: number, flags = 0): number {
  target[0] = FIN | flags | opcode;
  if (payloadLength < 126) {
    target[1] = payloadLength;
    return 2;
  }
  if (payloadLength < 65536) {
    target[1] = 126;
    target.writeUInt16BE(payloadLength, 2);
    return 4;
  }
  target[1] = 127;
  // RFC 6455 §5.2: 64-bit length; a Buffer is at most 2^53 - 1 bytes.
  target.writeUInt32BE(Math.floor(payloadLength / 2 ** 32), 2);
  target.writeUInt32BE(payloadLength >>> 0, 6);
  return 10;
}

/** A shared compression context, as the frames compressed in it refer to it (deflate-contexts.ts). */
export interface DeflateContext {
  /** A connection took one of its frames: it is in use. */
  taken(): void;
  /** A connection that could have taken one of its frames was out of step with it. */
  strayed(): void;
}

/** What compression notes on a broadcast's frame: which target's stream it is in, and its form there. */
export interface FrameDeflate {
  /** The target whose messages share a compression context (a room, everyone), by name. */
  readonly key: string;
  /** Connections that could share a context it was queued for while its target had none: two open one. */
  takers: number;
  /** This message compressed in its target's context, if the target had one when it was sent or was given one for it. */
  shared: SharedDeflated | undefined;
}

/** A message compressed against the ones its context compressed before it. */
export interface SharedDeflated {
  readonly context: DeflateContext;
  /** Its place among the messages the context compressed. */
  readonly seq: number;
  /** The compressed frame, valid for a connection whose window holds exactly what the context's does. */
  readonly frame: Frame;
  /** The context was reset before it: it refers to nothing earlier, so any connection may take it. */
  readonly reset: boolean;
}

/**
 * A complete server-to-client WebSocket frame (unmasked, FIN set), built
 * once and written to any number of sockets: every recipient's outbox holds
 * a reference to the same bytes: a broadcast to 10 000 connections costs
 * one copy of its payload, not 10 000.
 */
export class Frame implements EncodedFrame {
  /** What goes on the wire, in order: one buffer, or a header and the caller's payload. */
  readonly chunks: readonly Buffer[];
  readonly byteLength: number;
  readonly payloadLength: number;
  /** How many outboxes hold this frame now; kept by their ledger. */
  holders = 0;
  /** Set by compression on a broadcast's frame whose target may share a compression context. */
  deflate: FrameDeflate | undefined = undefined;
  /** Its compressed forms, by window bits (`Deflater`); usually one. Undefined until one is asked for. */
  #variants: Map<number, Frame | null> | undefined;

  private constructor(chunks: readonly Buffer[], payloadLength: number) {
    this.chunks = chunks;
    this.payloadLength = payloadLength;
    let byteLength = 0;
    for (const chunk of chunks) byteLength += chunk.length;
    this.byteLength = byteLength;
  }

  /** Frames text: encoded to UTF-8 straight into the frame's buffer. */
  static text(text: string): Frame {
    const payloadLength = Buffer.byteLength(text);
    const buffer = Buffer.allocUnsafe(headerLength(payloadLength) + payloadLength);
    const offset = writeHeader(buffer, OPCODE_TEXT, payloadLength);
    buffer.write(text, offset, 'utf8');
    return new Frame([buffer], payloadLength);
  }

  /** The same message compressed (RFC 7692): `deflated` is the payload of `plain`, deflated, its sync trailer removed. */
  static compressed(plain: Frame, deflated: Buffer): Frame {
    const payloadLength = deflated.length;
    const header = headerLength(payloadLength);
    const opcode = plain.chunks[0]![0]! & 0x0f;
    const buffer = Buffer.allocUnsafe(header + payloadLength);
    writeHeader(buffer, opcode, payloadLength, RSV1);
    deflated.copy(buffer, header);
    return new Frame([buffer], payloadLength);
  }

  /** The payload bytes, without the header (a view of the frame's bytes when they are in one buffer). */
  payload(): Buffer {
    // One buffer with header and payload, or a header and the caller's payload.
    if (this.chunks.length === 2) return this.chunks[1]! as Buffer;
    return (this.chunks[0]! as Buffer).subarray(headerLength(this.payloadLength));
  }

  /** The variant for `bits`, made by `make` the first time it is asked for (undefined: none, send this one). */
  variant(bits: number, make: () => Frame | undefined): Frame | undefined {
    this.#variants ??= new Map();
    let variant = this.#variants.get(bits);
    if (variant === undefined) {
      variant = make() ?? null;
      this.#variants.set(bits, variant);
    }
    return variant ?? undefined;
  }

  /** Frames bytes as a binary frame, or with `binary` false as a text frame (the caller vouches the bytes are UTF-8). */
  static bytes(payload: Uint8Array, binary: boolean): Frame {
    const opcode = binary ? OPCODE_BINARY : OPCODE_TEXT;
    const payloadLength = payload.byteLength;
    const header = headerLength(payloadLength);
    if (payloadLength <= MERGE_LIMIT) {
      const buffer = Buffer.allocUnsafe(header + payloadLength);
      writeHeader(buffer, opcode, payloadLength);
      buffer.set(payload, header);
      return new Frame([buffer], payloadLength);
    }
    const head = Buffer.allocUnsafe(header);
    writeHeader(head, opcode, payloadLength);
    const body = Buffer.isBuffer(payload) ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    return new Frame([head, body], payloadLength);
  }
}

/** A payload as the application gave it, in the two forms that travel: text or bytes, and whether it is binary. */
export interface Payload {
  readonly data: string | Uint8Array;
  readonly binary: boolean;
}

/** `data` as a payload, by the framing rules of `encode`: strings are text, bytes binary unless `binary` is false. */
export function toPayload(data: SendData, binary: boolean | undefined): Payload {
  return { data: data instanceof ArrayBuffer ? new Uint8Array(data) : data, binary: binary ?? typeof data !== 'string' };
}

/** Throws `TypeError` unless `data` is something a frame can carry. */
export function encodeCheck(data: unknown): asserts data is SendData {
  if (typeof data !== 'string' && !(data instanceof Uint8Array) && !(data instanceof ArrayBuffer)) {
    throw new TypeError(`data must be a string, Uint8Array or ArrayBuffer, got ${describe(data)}`);
  }
}

/** Frames what an application sends, once: strings as text, bytes as binary unless `binary: false`. */
export function encode(data: SendData, binary: boolean | undefined): Frame {
  if (typeof data === 'string') return binary === true ? Frame.bytes(Buffer.from(data), true) : Frame.text(data);
  if (data instanceof Uint8Array) return Frame.bytes(data, binary ?? true);
  if (data instanceof ArrayBuffer) return Frame.bytes(new Uint8Array(data), binary ?? true);
  throw new TypeError(`data must be a string, Uint8Array or ArrayBuffer, got ${describe(data)}`);
}
