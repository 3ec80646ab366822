import type { EncodedFrame } from '../../machines/types.js';
import { integer, oneOf } from '../util/validate.js';
import type { FlushScheduler } from './flush-scheduler.js';

/** What happens when a frame would push an outbox past its limits. */
export type OverflowPolicy = 'drop-oldest' | 'drop-newest' | 'close';

/** Bounds of each connection's outbox, the frames waiting to be written to it. */
export interface OutboxOptions {
  /** Frames waiting at most. [default 1024] */
  readonly maxMessages?: number;
  /** Bytes waiting at most; frames are shared between recipients, so this bounds references, not copies. [default 8388608] */
  readonly maxBytes?: number;
  /** Past a bound: `close` closes with 4001 (slow consumer), `drop-oldest` and `drop-newest` discard frames and emit `dropped`. [default 'close'] */
  readonly overflow?: OverflowPolicy;
}

const OVERFLOW_POLICIES: readonly OverflowPolicy[] = ['close', 'drop-oldest', 'drop-newest'];

/** Fills in and checks outbox bounds; `name` prefixes the option in error messages. */
export function resolveOutboxLimits(limits: OutboxOptions, name = 'options.outbox'): OutboxLimits {
  return {
    maxMessages: integer(`${name}.maxMessages`, limits.maxMessages ?? 1024, 1, Number.MAX_SAFE_INTEGER),
    maxBytes: integer(`${name}.maxBytes`, limits.maxBytes ?? 8 * 1024 * 1024, 1, Number.MAX_SAFE_INTEGER),
    overflow: oneOf(`${name}.overflow`, limits.overflow ?? 'close', OVERFLOW_POLICIES),
  };
}

/** Bounds of one connection's outbox. */
export interface OutboxLimits {
  /** Frames waiting at most. */
  readonly maxMessages: number;
  /** Bytes waiting at most (frames are shared, so this bounds references, not copies). */
  readonly maxBytes: number;
  readonly overflow: OverflowPolicy;
}

/** The socket side an outbox writes to. */
export interface OutboxSocket {
  readonly isOpen: boolean;
  /** Bytes handed to the socket and not yet to the kernel. */
  readonly writableLength: number;
  /** Writes the chunks as one write (a single syscall where the kernel takes them). */
  write(chunks: readonly Uint8Array[], done: (error?: Error | null) => void): void;
  /** Calls `listener` once the socket has drained its user-land buffer. */
  onceDrain(listener: () => void): void;
}

/** What an outbox reports to its connection. */
export interface OutboxOwner {
  /** Frames were discarded under `drop-oldest` or `drop-newest`. */
  dropped(count: number): void;
  /** The `close` policy fired; the outbox is already empty. */
  overflowed(): void;
  /** A write failed. Reported once. */
  failed(error: Error): void;
}

/**
 * For a peer that negotiated permessage-deflate: how each queued frame goes on the wire (compressed
 * once, shared), chosen as it is written, in order, so that compression sees exactly what reaches the
 * peer; and, as it is queued, that it will be written to such a peer.
 */
export interface WireForm {
  queued(frame: EncodedFrame): void;
  frameFor(frame: EncodedFrame): EncodedFrame;
}

/** A frame as outboxes hold it: how many of them hold it now. */
interface HeldFrame extends EncodedFrame {
  holders?: number;
}

/**
 * The bytes all of a runtime's outboxes hold, each frame counted once however
 * many outboxes share it: what waiting frames cost in memory. (An outbox's own
 * `bytes` counts every frame it holds, so their sum counts a shared frame once
 * per recipient.)
 */
export class OutboxLedger {
  #held = 0;

  get heldBytes(): number {
    return this.#held;
  }

  hold(frame: HeldFrame): void {
    if (frame.holders === undefined || frame.holders === 0) {
      frame.holders = 1;
      this.#held += frame.byteLength;
    } else {
      frame.holders++;
    }
  }

  release(frame: HeldFrame): void {
    if (frame.holders === undefined || frame.holders === 0) return;
    if (--frame.holders === 0) this.#held -= frame.byteLength;
  }
}

/**
 * Above this many bytes queued in the socket's user-land buffer the outbox
 * stops writing and waits for `drain`: the rest stays in the bounded outbox
 * rather than in an unbounded socket buffer.
 */
export const SOCKET_HIGH_WATER_MARK = 64 * 1024;

/**
 * Several small frames are copied into one buffer up to this size; beyond it
 * they go as a vectored write (cork/uncork), which spares the copy. Measured
 * with `npm run bench -- --only fanout-burst` (ten 106-byte frames per socket
 * per turn, 10 000 sockets): 0.92–0.96 µs of server CPU per delivery copying,
 * 1.21–1.26 µs with a writev of every frame.
 */
const COALESCE_LIMIT = 16 * 1024;

/**
 * The buffer the last merged write was copied into, when the socket handed
 * all of it to the kernel at once: nothing references it any more, so the
 * next merge reuses it instead of allocating (a fanout of 10 000 sockets
 * otherwise leaves 10 000 short-lived buffers outside the heap per turn). A
 * socket that queued the write keeps its buffer, and the next merge takes a
 * new one.
 */
let spareMergeBuffer: Buffer | undefined;

/**
 * A connection's bounded mailbox for outgoing frames. Frames are references
 * to shared bytes; the outbox is flushed at most once per event-loop turn, in
 * one write, in the order frames were pushed, so a connection's messages
 * never overtake each other.
 */
export class Outbox {
  readonly #socket: OutboxSocket;
  readonly #owner: OutboxOwner;
  readonly #scheduler: FlushScheduler;
  readonly #ledger: OutboxLedger;
  #limits: OutboxLimits;
  #queue: EncodedFrame[] = [];
  #head = 0;
  #bytes = 0;
  #scheduled = false;
  #awaitingDrain = false;
  #failed = false;
  #discarded = false;
  /** Set by `discard()`: what was queued is given up on, so failures of writes in flight are no news. */
  #abandoned = false;
  /** Runs once everything queued has been handed to the socket (a graceful close). */
  #onEmpty: (() => void) | undefined;
  /** Runs once the outbox is at most half full again (`whenRoom`). */
  #onRoom: (() => void) | undefined;
  /** For a peer that negotiated permessage-deflate: the frames to write in place of those queued. */
  readonly #wireForm: WireForm | undefined;

  /** `ledger` is shared by the outboxes of one runtime. [default one of its own] */
  constructor(
    socket: OutboxSocket,
    owner: OutboxOwner,
    scheduler: FlushScheduler,
    limits: OutboxLimits,
    ledger = new OutboxLedger(),
    wireForm?: WireForm,
  ) {
    this.#socket = socket;
    this.#owner = owner;
    this.#scheduler = scheduler;
    this.#limits = limits;
    this.#ledger = ledger;
    this.#wireForm = wireForm;
  }

  /** Frames waiting. */
  get depth(): number {
    return this.#queue.length - this.#head;
  }

  /** Bytes waiting here (a frame shared with other outboxes counts in each). */
  get bytes(): number {
    return this.#bytes;
  }

  get limits(): OutboxLimits {
    return this.#limits;
  }

  set limits(limits: OutboxLimits) {
    this.#limits = limits;
  }

  /**
   * Queues a frame for the next flush; false if it was not queued (dropped, closing, or closed). The
   * bounds count what waits as it was given: a frame that will go compressed counts its plain bytes.
   */
  push(frame: EncodedFrame): boolean {
    if (this.#discarded || this.#onEmpty !== undefined) return false;
    const { maxMessages, maxBytes } = this.#limits;
    if (this.depth + 1 > maxMessages || this.#bytes + frame.byteLength > maxBytes) {
      if (!this.#makeRoom(frame)) return false;
    }
    this.#queue.push(frame);
    this.#wireForm?.queued(frame);
    this.#ledger.hold(frame);
    this.#bytes += frame.byteLength;
    if (!this.#scheduled && !this.#awaitingDrain) {
      this.#scheduled = true;
      this.#scheduler.schedule(this);
    }
    return true;
  }

  /** Whether at most half of either bound is taken: what a paced writer fills up to. */
  get hasRoom(): boolean {
    return this.depth * 2 <= this.#limits.maxMessages && this.#bytes * 2 <= this.#limits.maxBytes;
  }

  /**
   * Calls `listener` once, when a flush leaves the outbox with room (`hasRoom`): how a writer with more
   * to send than the bounds hold (a resume's replay) is paced by the socket instead of overflowing it.
   * Never called once the outbox is discarded or ending.
   */
  whenRoom(listener: () => void): void {
    this.#onRoom = listener;
    if (!this.#scheduled && !this.#awaitingDrain && this.hasRoom) {
      // Nothing is going to flush: the room is there now.
      this.#onRoom = undefined;
      listener();
    }
  }

  /**
   * Calls `onEmpty` once every queued frame has been handed to the socket —
   * at once if none is waiting — and refuses frames from now on.
   */
  end(onEmpty: () => void): void {
    // Discarded (overflow under `close`, a failed write): nothing waits, so the close goes now.
    if (this.#discarded) {
      onEmpty();
      return;
    }
    // Bytes already in the socket go out before anything written after them, the close frame included.
    if (this.depth === 0) {
      this.#discarded = true;
      onEmpty();
      return;
    }
    this.#onEmpty = onEmpty;
  }

  /** Forgets every queued frame; nothing is written from now on. */
  discard(): void {
    this.#discarded = true;
    this.#abandoned = true;
    this.#onEmpty = undefined;
    this.#onRoom = undefined;
    this.#clear();
  }

  /** Writes what the socket will take; called by the scheduler, at most once per turn. */
  flush(): void {
    this.#scheduled = false;
    if (this.#discarded || this.#awaitingDrain) return;
    if (!this.#socket.isOpen) {
      // The peer is closing or gone: these frames cannot be delivered.
      this.discard();
      return;
    }
    while (this.depth > 0) {
      const room = SOCKET_HIGH_WATER_MARK - this.#socket.writableLength;
      if (room <= 0) {
        this.#awaitingDrain = true;
        // Created only under backpressure: most connections never need it.
        this.#socket.onceDrain(() => this.#drained());
        return;
      }
      this.#writeBatch(room);
    }
    const onEmpty = this.#onEmpty;
    if (onEmpty !== undefined) {
      this.#onEmpty = undefined;
      this.#discarded = true;
      onEmpty();
      return;
    }
    this.#roomMade();
  }

  #roomMade(): void {
    const onRoom = this.#onRoom;
    if (onRoom === undefined || this.#discarded || !this.hasRoom) return;
    this.#onRoom = undefined;
    onRoom();
  }

  /** Writes frames from the head up to about `room` bytes (at least one frame), in one write. */
  #writeBatch(room: number): void {
    const queue = this.#queue;
    let end = this.#head + 1;
    let bytes = queue[this.#head]!.byteLength;
    while (end < queue.length && bytes + queue[end]!.byteLength <= room) bytes += queue[end++]!.byteLength;
    // The frames as they go on the wire: for a deflate peer, each as compression chooses it now, in order.
    let batch: readonly EncodedFrame[] = queue;
    let from = this.#head;
    let to = end;
    let wire = bytes;
    const wireForm = this.#wireForm;
    if (wireForm !== undefined) {
      const chosen: EncodedFrame[] = [];
      wire = 0;
      for (let i = this.#head; i < end; i++) {
        const frame = wireForm.frameFor(queue[i]!);
        chosen.push(frame);
        wire += frame.byteLength;
      }
      batch = chosen;
      from = 0;
      to = chosen.length;
    }
    let chunks: readonly Uint8Array[];
    let merged: Buffer | undefined;
    if (to === from + 1) {
      chunks = batch[from]!.chunks;
    } else if (wire <= COALESCE_LIMIT && this.#socket.writableLength === 0) {
      // A socket that still holds earlier bytes queues this write too, so it is not copied: the queued
      // write refers to the shared frames (a copy would be memory of this socket's own for as long
      // as it waits). A socket with nothing queued likely takes it whole: copied into the spare.
      merged = spareMergeBuffer ?? Buffer.allocUnsafeSlow(COALESCE_LIMIT);
      spareMergeBuffer = undefined;
      let offset = 0;
      for (let i = from; i < to; i++) {
        for (const chunk of batch[i]!.chunks) {
          merged.set(chunk, offset);
          offset += chunk.length;
        }
      }
      chunks = [merged.subarray(0, wire)];
    } else {
      const list: Uint8Array[] = [];
      for (let i = from; i < to; i++) list.push(...batch[i]!.chunks);
      chunks = list;
    }
    this.#advance(end, bytes);
    this.#socket.write(chunks, this.#written);
    // Nothing left in user land: the kernel took the whole write, so its merge buffer may serve the next one.
    if (merged !== undefined && this.#socket.writableLength === 0) spareMergeBuffer = merged;
  }

  /** Drops frames from the head up to index `end`, which held `bytes` bytes. */
  #advance(end: number, bytes: number): void {
    const queue = this.#queue;
    for (let i = this.#head; i < end; i++) {
      this.#ledger.release(queue[i]!);
      queue[i] = undefined as unknown as EncodedFrame;
    }
    this.#head = end;
    this.#bytes -= bytes;
    if (this.#head === queue.length) {
      queue.length = 0;
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > queue.length) {
      this.#queue = queue.slice(this.#head);
      this.#head = 0;
    }
  }

  /** Applies the overflow policy; true if `frame` may now be queued. */
  #makeRoom(frame: EncodedFrame): boolean {
    const { maxMessages, maxBytes, overflow } = this.#limits;
    if (overflow === 'close') {
      this.discard();
      this.#owner.overflowed();
      return false;
    }
    if (overflow === 'drop-newest' || frame.byteLength > maxBytes) {
      this.#owner.dropped(1);
      return false;
    }
    let end = this.#head;
    let bytes = 0;
    while (
      end < this.#queue.length &&
      (this.depth - (end - this.#head) + 1 > maxMessages || this.#bytes - bytes + frame.byteLength > maxBytes)
    ) {
      bytes += this.#queue[end++]!.byteLength;
    }
    const dropped = end - this.#head;
    this.#advance(end, bytes);
    if (dropped > 0) this.#owner.dropped(dropped);
    return true;
  }

  #clear(): void {
    for (let i = this.#head; i < this.#queue.length; i++) this.#ledger.release(this.#queue[i]!);
    this.#queue = [];
    this.#head = 0;
    this.#bytes = 0;
  }

  #drained(): void {
    this.#awaitingDrain = false;
    this.flush();
  }

  readonly #written = (error?: Error | null): void => {
    // Once abandoned (the socket terminated, closed or overflowed), writes still in flight fail
    // because of it: the connection is already ending for its own reason, not a failed send.
    if (error === undefined || error === null || this.#failed || this.#abandoned) return;
    this.#failed = true;
    this.discard();
    this.#owner.failed(error);
  };
}
