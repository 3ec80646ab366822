import zlib from 'node:zlib';
import type { EncodedFrame } from '../../machines/types.js';
import { integer, object } from '../util/validate.js';
import { SharedContexts } from './deflate-contexts.js';
import { streamingDeflate, withoutTrailer } from './deflate-stream.js';
import { Frame, type SharedDeflated } from './frame.js';
import type { WireForm } from './outbox.js';

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
  /**
   * How many targets (rooms, everyone) may have a compression context of their own at once, each
   * about 256 KiB (at most 10 000): a target's messages are compressed once, each against the ones before it, for all
   * its members alike (context takeover, shared). 0 answers every offer with
   * `server_no_context_takeover` and compresses each message on its own. [default 64]
   */
  readonly contexts?: number;
}

export interface CompressionSettings {
  readonly threshold: number;
  readonly level: number;
  readonly inboundWindowBits: number;
  /** 0 when this Node cannot drive a deflate stream synchronously (`streamingDeflate`). */
  readonly contexts: number;
}

export function resolveCompression(option: boolean | CompressionOptions | undefined): CompressionSettings | undefined {
  if (option === undefined || option === false) return undefined;
  if (option !== true) object('options.compression', option);
  const given: CompressionOptions = option === true ? {} : option;
  return {
    threshold: integer('options.compression.threshold', given.threshold ?? 1024, 0, Number.MAX_SAFE_INTEGER),
    level: integer('options.compression.level', given.level ?? 6, 1, 9),
    inboundWindowBits: integer('options.compression.inboundWindowBits', given.inboundWindowBits ?? 15, 9, 15),
    contexts: streamingDeflate ? integer('options.compression.contexts', given.contexts ?? 64, 0, 10_000) : 0,
  };
}

/** What zlib keeps ahead of its window: a match may reach back at most 2^bits − 262 bytes. */
const MIN_LOOKAHEAD = 262;

/** What a peer's permessage-deflate settled for the server's side. */
export interface PeerDeflateParams {
  /** The window berth may compress with toward it, 9–15 bits. */
  readonly windowBits: number;
  /** It keeps its inflate context between messages (no `server_no_context_takeover`). */
  readonly contextTakeover: boolean;
}

/**
 * Compresses each message once for every recipient that negotiated
 * permessage-deflate, in one of two forms, both shared by every recipient
 * that takes it:
 *
 * - **In its target's context.** A room (or everyone) may have a context of
 *   its own (`SharedContexts`) that compresses its messages each against the
 *   ones before it, as a context per connection would, once for all its
 *   members: valid for every member whose inflate window holds exactly that
 *   context's messages, which `Peer` keeps track of.
 * - **On its own** (context-free), valid on any connection: for a recipient
 *   out of step with the context, a message with no context (a direct send,
 *   a room without one), and every message when `contexts` is 0, in which
 *   case berth answers every offer with `server_no_context_takeover` (RFC
 *   7692 §7.1.1.1 allows it whether or not the client asked).
 *
 * A client may limit the window the server compresses with
 * (`server_max_window_bits`). A message that fits in a smaller window is
 * compressed on its own with that one, so one compression serves every
 * client whose limit allows it; only a larger message to a client with a
 * smaller limit needs a second. Such a client gets no context's frames.
 */
export class Deflater {
  readonly #settings: CompressionSettings;
  readonly #contexts: SharedContexts | undefined;
  /** The shortest payload compressed: `threshold`, and never an empty one. */
  readonly threshold: number;

  constructor(settings: CompressionSettings) {
    this.#settings = settings;
    this.threshold = Math.max(1, settings.threshold);
    this.#contexts = settings.contexts > 0 ? new SharedContexts(settings.contexts, settings.level) : undefined;
  }

  /** Whether targets share compression contexts (so offers are answered with context takeover). */
  get sharesContexts(): boolean {
    return this.#contexts !== undefined;
  }

  /**
   * Notes a broadcast's frame as a message of `key`'s stream (a room, everyone), before any connection
   * takes it: compressed in that target's context now, if it has one, since a context takes its
   * messages in the order they are sent.
   */
  share(frame: EncodedFrame, key: string): void {
    const contexts = this.#contexts;
    // An empty message stays plain: a context whose sync flush has nothing to flush emits no bytes.
    if (contexts === undefined || !(frame instanceof Frame) || frame.payloadLength < this.threshold) return;
    frame.deflate = { key, takers: 0, shared: contexts.compress(frame, key) };
  }

  /** What to write to a connection that negotiated the extension so, in place of what it is sent. */
  peer(params: PeerDeflateParams): WireForm {
    const shares = this.#contexts !== undefined && params.contextTakeover && params.windowBits === 15;
    return new Peer(this, params.windowBits, shares ? this.#contexts : undefined);
  }

  /**
   * `frame` compressed on its own for a connection that negotiated the extension with `windowBits`
   * for the server; `frame` itself when it is small, not one of berth's frames, or would not shrink.
   */
  frameFor(frame: EncodedFrame, windowBits: number): EncodedFrame {
    if (!(frame instanceof Frame) || frame.payloadLength < this.threshold) return frame;
    const bits = Math.min(windowBits, windowFor(frame.payloadLength));
    return frame.variant(bits, () => this.#compress(frame, bits)) ?? frame;
  }

  /** Frees every context. */
  close(): void {
    this.#contexts?.close();
  }

  #compress(frame: Frame, windowBits: number): Frame | undefined {
    const deflated = withoutTrailer(
      zlib.deflateRawSync(frame.payload(), {
        level: this.#settings.level,
        windowBits,
        finishFlush: zlib.constants.Z_SYNC_FLUSH,
      }),
    );
    // Larger compressed than plain (already compressed data, short random bytes): sent plain.
    if (deflated.length >= frame.payloadLength) return undefined;
    return Frame.compressed(frame, deflated);
  }
}

/**
 * One connection's side of compression: which context its inflate window is
 * in step with, and from which of that context's messages on. Its frames are
 * chosen as they are written, in order, so what it tracks is what the
 * connection receives: a frame its outbox drops never counts.
 */
class Peer implements WireForm {
  readonly #deflater: Deflater;
  readonly #windowBits: number;
  /** The contexts this connection may share; undefined if it cannot (its offer, its window). */
  readonly #contexts: SharedContexts | undefined;
  #context: SharedDeflated['context'] | undefined;
  #next = 0;

  constructor(deflater: Deflater, windowBits: number, contexts: SharedContexts | undefined) {
    this.#deflater = deflater;
    this.#windowBits = windowBits;
    this.#contexts = contexts;
  }

  /**
   * A frame of a target without a context, queued for a second connection that could share one: the
   * target gets one, and this message is its first. Frames are chosen as they are written, after the
   * broadcast has queued them all, so usually no connection has taken it yet; one that took it on its
   * own is out of step like any other, and the context's first message refers to nothing before it.
   */
  queued(frame: EncodedFrame): void {
    if (this.#contexts === undefined || !(frame instanceof Frame)) return;
    const noted = frame.deflate;
    if (noted !== undefined && noted.shared === undefined && ++noted.takers === 2) noted.shared = this.#contexts.open(noted.key, frame);
  }

  frameFor(frame: EncodedFrame): EncodedFrame {
    if (!(frame instanceof Frame) || frame.payloadLength < this.#deflater.threshold) return frame;
    const shared = this.#contexts === undefined ? undefined : frame.deflate?.shared;
    if (shared !== undefined) {
      if (shared.reset || (shared.context === this.#context && shared.seq === this.#next)) {
        this.#context = shared.context;
        this.#next = shared.seq + 1;
        shared.context.taken();
        return shared.frame;
      }
      shared.context.strayed();
    }
    const variant = this.#deflater.frameFor(frame, this.#windowBits);
    // Whatever it inflates enters its window, which then holds what no context's does.
    if (variant !== frame) this.#context = undefined;
    return variant;
  }
}

/** The smallest window (9–15 bits) in which a message of `length` bytes compresses as in the largest. */
function windowFor(length: number): number {
  let bits = 9;
  while (bits < 15 && 2 ** bits - MIN_LOOKAHEAD < length) bits++;
  return bits;
}
