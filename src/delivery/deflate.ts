import zlib from 'node:zlib';
import type { EncodedFrame } from '../../machines/types.js';
import { integer, object } from '../util/validate.js';
import { Frame } from './frame.js';

/** The `compression` option: permessage-deflate (RFC 7692), compressed once per message for every recipient. */
export interface CompressionOptions {
  /** Messages whose payload is shorter than this many bytes go uncompressed (the extension allows it per message). [default 1024] */
  readonly threshold?: number;
  /** zlib level, 1 (fastest) to 9 (smallest). [default 6] */
  readonly level?: number;
  /**
   * The largest window (`client_max_window_bits`, 9–15) a client may compress its messages with, when
   * its offer lets the server choose: the size of the inflate context the server keeps for each
   * connection that sends compressed messages (2^bits bytes, plus zlib's state). [default 15]
   */
  readonly inboundWindowBits?: number;
}

export interface CompressionSettings {
  readonly threshold: number;
  readonly level: number;
  readonly inboundWindowBits: number;
}

export function resolveCompression(option: boolean | CompressionOptions | undefined): CompressionSettings | undefined {
  if (option === undefined || option === false) return undefined;
  if (option !== true) object('options.compression', option);
  const given: CompressionOptions = option === true ? {} : option;
  return {
    threshold: integer('options.compression.threshold', given.threshold ?? 1024, 0, Number.MAX_SAFE_INTEGER),
    level: integer('options.compression.level', given.level ?? 6, 1, 9),
    inboundWindowBits: integer('options.compression.inboundWindowBits', given.inboundWindowBits ?? 15, 9, 15),
  };
}

/** What zlib keeps ahead of its window: a match may reach back at most 2^bits − 262 bytes. */
const MIN_LOOKAHEAD = 262;
/** The trailer a sync flush ends with, which RFC 7692 §7.2.1 has the sender remove. */
const SYNC_TRAILER = Buffer.from([0x00, 0x00, 0xff, 0xff]);

/**
 * Compresses each message once for every recipient that negotiated
 * permessage-deflate. Every connection's extension says
 * `server_no_context_takeover` (berth answers every offer with it, which RFC
 * 7692 §7.1.1.1 allows whether or not the client asked), so a compressed
 * message depends on no earlier one and the same bytes are valid on every
 * connection. The compressed frame is kept on the plain one; the outboxes of
 * all deflate recipients share it as they share the plain frame.
 *
 * A client may limit the window the server compresses with
 * (`server_max_window_bits`). A message that fits in a smaller window is
 * compressed with that one, so one compression serves every client whose
 * limit allows it; only a larger message to a client with a smaller limit
 * needs a second.
 */
export class Deflater {
  readonly #settings: CompressionSettings;

  constructor(settings: CompressionSettings) {
    this.#settings = settings;
  }

  /**
   * The frame to write to a connection that negotiated the extension with `windowBits` for the
   * server: the compressed form of `frame`, or `frame` itself when it is small, not one of berth's
   * frames, or would not shrink.
   */
  frameFor(frame: EncodedFrame, windowBits: number): EncodedFrame {
    if (!(frame instanceof Frame) || frame.payloadLength < this.#settings.threshold) return frame;
    const bits = Math.min(windowBits, windowFor(frame.payloadLength));
    return frame.variant(bits, () => this.#compress(frame, bits)) ?? frame;
  }

  #compress(frame: Frame, windowBits: number): Frame | undefined {
    const deflated = zlib.deflateRawSync(frame.payload(), {
      level: this.#settings.level,
      windowBits,
      finishFlush: zlib.constants.Z_SYNC_FLUSH,
    });
    const end = deflated.length >= 4 && deflated.subarray(-4).equals(SYNC_TRAILER) ? deflated.length - 4 : deflated.length;
    // Larger compressed than plain (already compressed data, short random bytes): sent plain.
    if (end >= frame.payloadLength) return undefined;
    return Frame.compressed(frame, deflated.subarray(0, end));
  }
}

/** The smallest window (9–15 bits) in which a message of `length` bytes compresses as in the largest. */
function windowFor(length: number): number {
  let bits = 9;
  while (bits < 15 && 2 ** bits - MIN_LOOKAHEAD < length) bits++;
  return bits;
}
