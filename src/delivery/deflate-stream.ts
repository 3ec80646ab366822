import zlib from 'node:zlib';

/** The trailer a sync flush ends with, which RFC 7692 §7.2.1 has the sender remove. */
const SYNC_TRAILER = Buffer.from([0x00, 0x00, 0xff, 0xff]);

/** `deflated` without its sync-flush trailer (RFC 7692 §7.2.1). */
export function withoutTrailer(deflated: Buffer): Buffer {
  const end = deflated.length >= 4 && deflated.subarray(-4).equals(SYNC_TRAILER) ? deflated.length - 4 : deflated.length;
  return deflated.subarray(0, end);
}

/** What a zlib stream keeps, as Node 18–22 keep it: the native handle and the two counts its writes leave. */
interface ZlibInternals {
  _handle?: {
    writeSync?: (flush: number, input: Buffer, inOff: number, inLen: number, out: Buffer, outOff: number, outLen: number) => void;
  } | null;
  _writeState?: Uint32Array;
}

/** Output space per write: a message that deflates to less comes out in one piece, with no copy here. */
const OUT_CHUNK = 64 * 1024;
/** Shared by every stream: each write is synchronous, and its result is used before the next. */
let scratch: Buffer | undefined;

/**
 * A raw deflate stream that keeps its context between messages and runs
 * synchronously: each `deflate` compresses one message against the ones
 * before it (since the last `reset`) and ends it with a sync flush, as RFC
 * 7692 frames a message. Node has no public synchronous streaming API (its
 * sync one-shot functions close their stream after one call), so this drives
 * the stream's native handle the way those functions do, without closing
 * it. `streamingDeflate` says whether this Node allows it; where it does not,
 * berth compresses every message on its own.
 */
export class DeflateStream {
  readonly #zlib: zlib.DeflateRaw;
  readonly #write: NonNullable<NonNullable<ZlibInternals['_handle']>['writeSync']>;
  readonly #state: Uint32Array;
  #error: Error | undefined;

  constructor(options: { level: number; windowBits: number; memLevel: number }) {
    this.#zlib = zlib.createDeflateRaw(options);
    const internals = this.#zlib as unknown as ZlibInternals;
    const handle = internals._handle;
    const write = handle?.writeSync;
    if (handle == null || typeof write !== 'function' || !(internals._writeState instanceof Uint32Array)) {
      this.#zlib.close();
      throw new Error('this Node does not expose a zlib handle to write synchronously');
    }
    this.#write = write.bind(handle);
    this.#state = internals._writeState;
    // A failure (out of memory, say) comes as the stream's error event; keep it for the next write to throw.
    this.#zlib.on('error', (error: Error) => (this.#error = error));
  }

  /**
   * `message`, deflated against what this stream compressed since its last reset, trailer removed. The
   * result may be a view of the stream's own buffer: valid until the next call.
   */
  deflate(message: Buffer): Buffer {
    const out = (scratch ??= Buffer.allocUnsafeSlow(OUT_CHUNK));
    const parts: Buffer[] = [];
    let offset = 0;
    let remaining = message.length;
    for (;;) {
      this.#write(zlib.constants.Z_SYNC_FLUSH, message, offset, remaining, out, 0, out.length);
      // A failed write closes the stream at once (its handle gone) and emits the error a tick later.
      if (this.#error !== undefined || (this.#zlib as unknown as ZlibInternals)._handle == null) {
        throw this.#error ?? new Error('zlib failed to deflate');
      }
      const availableOut = this.#state[0]!;
      const availableIn = this.#state[1]!;
      offset += remaining - availableIn;
      remaining = availableIn;
      const produced = out.subarray(0, out.length - availableOut);
      // A full buffer means zlib has more to give; otherwise the flush is complete.
      if (availableOut !== 0) {
        if (parts.length === 0) return withoutTrailer(produced);
        parts.push(produced);
        return withoutTrailer(Buffer.concat(parts));
      }
      parts.push(Buffer.from(produced));
    }
  }

  /** Forgets every earlier message: what it compresses next refers to nothing before it. */
  reset(): void {
    this.#zlib.reset();
  }

  close(): void {
    this.#zlib.close();
  }
}

/** Whether this Node lets berth drive a deflate stream synchronously (checked once, by a round trip). */
export const streamingDeflate: boolean = (() => {
  try {
    const stream = new DeflateStream({ level: 6, windowBits: 15, memLevel: 8 });
    const message = Buffer.from('berth berth berth berth');
    const first = Buffer.from(stream.deflate(message));
    const second = stream.deflate(message);
    stream.close();
    const inflated = zlib.inflateRawSync(Buffer.concat([first, SYNC_TRAILER, second, SYNC_TRAILER]), {
      finishFlush: zlib.constants.Z_SYNC_FLUSH,
    });
    // The second message refers back to the first, so it comes out shorter.
    return inflated.equals(Buffer.concat([message, message])) && second.length < first.length;
  } catch {
    return false;
  }
})();
