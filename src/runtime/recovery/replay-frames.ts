/**
 * The frames of replayed messages, built once for every client that resumes.
 * A message of a stream, at an offset within an epoch, never changes, and
 * neither does its `msg` frame: when 10 000 clients of ten rooms come back at
 * once, each room's missed messages are framed once, not once per client, and
 * every outbox holds the same bytes, as a broadcast's do. Bounded by bytes;
 * the oldest frames go first.
 */
import type { Frame } from '../../delivery/frame.js';
import type { HistoryMessage } from '../../history/store.js';
import { messageFrame } from '../../protocol/v1.js';

export class ReplayFrames {
  readonly #maxBytes: number;
  readonly #frames = new Map<string, Frame>();
  #bytes = 0;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  get bytes(): number {
    return this.#bytes;
  }

  frame(stream: string, epoch: string, message: HistoryMessage): Frame {
    const key = `${message.offset} ${epoch} ${stream}`;
    let frame = this.#frames.get(key);
    if (frame !== undefined) return frame;
    frame = messageFrame(stream, { offset: message.offset, epoch }, message);
    // Larger than the whole budget: built for this client, kept for none.
    if (frame.byteLength > this.#maxBytes) return frame;
    this.#frames.set(key, frame);
    this.#bytes += frame.byteLength;
    for (const [oldest, kept] of this.#frames) {
      if (this.#bytes <= this.#maxBytes) break;
      this.#frames.delete(oldest);
      this.#bytes -= kept.byteLength;
    }
    return frame;
  }
}
