import { DeflateStream } from './deflate-stream.js';
import { Frame, type DeflateContext, type SharedDeflated } from './frame.js';

/**
 * Once a connection that could share a context was out of step with it, the
 * context starts afresh after at most this many messages: every connection
 * back in step costs the others one message compressed without what came
 * before it.
 */
export const RESYNC_EVERY = 16;
/** A context none of whose frames a connection took for this long closes at its next message. */
export const IDLE_MS = 10_000;
/** With every context taken, a target gets one only by closing a context unused for this long. */
export const EVICT_AFTER_MS = 1_000;
/** The window and memory level of a shared context: ws's defaults, so the same messages compress alike. */
const WINDOW_BITS = 15;
const MEM_LEVEL = 8;

/**
 * One target's compression context: its messages, compressed each against
 * the ones before it, for every connection whose inflate window holds
 * exactly those messages (RFC 7692 context takeover, shared). A connection's
 * window holds what it inflated, however it was compressed, so a connection
 * stays in step as long as every compressed message it receives is this
 * context's next one; a connection that missed one or inflated another
 * message is out of step until the context resets.
 */
class SharedContext implements DeflateContext {
  readonly #stream: DeflateStream;
  #seq = 0;
  #fresh = true;
  #sinceReset = 0;
  #strays = 0;
  #taken = false;
  /** When a connection last took one of its frames, as far as is known: no later than it did. */
  lastUsed: number;
  /** When it compressed its last message: a frame taken since was taken after this. */
  lastCompressed: number;

  constructor(level: number, now: number) {
    this.#stream = new DeflateStream({ level, windowBits: WINDOW_BITS, memLevel: MEM_LEVEL });
    this.lastUsed = this.lastCompressed = now;
  }

  /** Whether a connection took one of its frames since the last message; clears the mark. */
  takeMark(): boolean {
    const taken = this.#taken;
    this.#taken = false;
    return taken;
  }

  taken(): void {
    this.#taken = true;
  }

  strayed(): void {
    this.#strays++;
  }

  compress(frame: Frame, now: number): SharedDeflated {
    this.lastCompressed = now;
    const reset = this.#fresh || (this.#strays > 0 && this.#sinceReset >= RESYNC_EVERY);
    if (reset) {
      if (!this.#fresh) this.#stream.reset();
      this.#fresh = false;
      this.#strays = 0;
      this.#sinceReset = 0;
    }
    this.#sinceReset++;
    return { context: this, seq: ++this.#seq, frame: Frame.compressed(frame, this.#stream.deflate(frame.payload())), reset };
  }

  close(): void {
    this.#stream.close();
  }
}

/**
 * The shared contexts of a runtime, one per target that has one, at most
 * `max`: a target gets one when two connections could have shared it, and
 * loses it when no connection took its frames for a while.
 */
export class SharedContexts {
  readonly #contexts = new Map<string, SharedContext>();
  readonly #max: number;
  readonly #level: number;
  readonly #now: () => number;
  #closed = false;

  constructor(max: number, level: number, now: () => number = () => performance.now()) {
    this.#max = max;
    this.#level = level;
    this.#now = now;
  }

  get size(): number {
    return this.#contexts.size;
  }

  /** `frame` compressed in the context of `key`, if it has one. */
  compress(frame: Frame, key: string): SharedDeflated | undefined {
    const context = this.#contexts.get(key);
    if (context === undefined) return undefined;
    const now = this.#now();
    if (context.takeMark()) context.lastUsed = now;
    else if (now - context.lastUsed > IDLE_MS) {
      // Nobody in step with it any more: what it would compress, nobody would take.
      context.close();
      this.#contexts.delete(key);
      return undefined;
    }
    return this.#compressIn(context, key, frame, now);
  }

  /**
   * Gives `key` a context, unless every context is in use, with `frame` as its first message: answers
   * `frame` compressed there. Nothing if `key` has a context already (one opened after `frame` was
   * sent, which has compressed later messages).
   */
  open(key: string, frame: Frame): SharedDeflated | undefined {
    if (this.#closed || this.#contexts.has(key)) return undefined;
    const now = this.#now();
    if (this.#contexts.size >= this.#max && !this.#evict(now)) return undefined;
    let context: SharedContext;
    try {
      context = new SharedContext(this.#level, now);
    } catch {
      // zlib could not start one (out of memory): the message goes compressed on its own.
      return undefined;
    }
    this.#contexts.set(key, context);
    return this.#compressIn(context, key, frame, now);
  }

  /** `frame` compressed in `context`; a context that fails is closed, and the message goes compressed on its own. */
  #compressIn(context: SharedContext, key: string, frame: Frame, now: number): SharedDeflated | undefined {
    try {
      return context.compress(frame, now);
    } catch {
      context.close();
      this.#contexts.delete(key);
      return undefined;
    }
  }

  close(): void {
    this.#closed = true;
    for (const context of this.#contexts.values()) context.close();
    this.#contexts.clear();
  }

  /** Closes the context used longest ago if that is long enough ago; whether it did. */
  #evict(now: number): boolean {
    let oldest: [string, SharedContext] | undefined;
    for (const entry of this.#contexts) {
      // Taken since its last message: taken no earlier than that message was compressed.
      if (entry[1].takeMark()) entry[1].lastUsed = Math.max(entry[1].lastUsed, entry[1].lastCompressed);
      if (oldest === undefined || entry[1].lastUsed < oldest[1].lastUsed) oldest = entry;
    }
    if (oldest === undefined || now - oldest[1].lastUsed < EVICT_AFTER_MS) return false;
    oldest[1].close();
    this.#contexts.delete(oldest[0]);
    return true;
  }
}
