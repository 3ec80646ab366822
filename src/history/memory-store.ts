import { randomBytes } from 'node:crypto';
import { integer } from '../util/validate.js';
import type { HistoryLimits, HistoryMessage, HistoryRead, HistoryStore, StreamPosition } from './store.js';

interface Kept extends HistoryMessage {
  readonly bytes: number;
  /** When it was appended, on the store's clock. */
  readonly at: number;
}

interface Stream {
  readonly epoch: string;
  offset: number;
  bytes: number;
  /** Oldest first; `head` is the first one still kept. */
  messages: Kept[];
  head: number;
}

/** Options of `createMemoryHistory`. */
export interface MemoryHistoryOptions extends HistoryLimits {
  /** Milliseconds for `maxAgeMs`; pass a simulated clock's in tests. [default performance.now()] */
  readonly now?: () => number;
}

const newEpoch = () => randomBytes(6).toString('base64url');

/**
 * What keeping one message costs besides its payload (93 bytes measured on
 * Node 20), counted against `maxBytes` and `maxTotalBytes` so that they bound
 * memory, not just payloads.
 */
const MESSAGE_OVERHEAD = 96;

/**
 * History kept in this process: the reference store. Every stream's epoch is
 * new with each store, so a restart changes every epoch, as it loses every
 * message. Trimming runs as a stream is written or read, so a stream nobody
 * touches keeps its last messages until the next touch or eviction.
 */
export function createMemoryHistory(options: MemoryHistoryOptions = {}): HistoryStore {
  return new MemoryHistory(options);
}

class MemoryHistory implements HistoryStore {
  readonly #streams = new Map<string, Stream>();
  readonly #maxMessages: number;
  readonly #maxBytes: number;
  readonly #maxAgeMs: number;
  readonly #maxStreams: number;
  readonly #maxTotalBytes: number;
  /** Payload bytes kept in every stream. */
  #totalBytes = 0;
  readonly #now: () => number;

  constructor(options: MemoryHistoryOptions) {
    this.#maxMessages = integer('options.maxMessages', options.maxMessages ?? 1000, 0, Number.MAX_SAFE_INTEGER);
    this.#maxBytes = integer('options.maxBytes', options.maxBytes ?? 1024 * 1024, 0, Number.MAX_SAFE_INTEGER);
    this.#maxAgeMs = integer('options.maxAgeMs', options.maxAgeMs ?? 300_000, 0, Number.MAX_SAFE_INTEGER);
    this.#maxStreams = integer('options.maxStreams', options.maxStreams ?? 100_000, 1, Number.MAX_SAFE_INTEGER);
    this.#maxTotalBytes = integer('options.maxTotalBytes', options.maxTotalBytes ?? 64 * 1024 * 1024, 0, Number.MAX_SAFE_INTEGER);
    if (this.#maxTotalBytes < this.#maxBytes) {
      throw new RangeError(`options.maxTotalBytes must be at least options.maxBytes (${this.#maxBytes}), got ${this.#maxTotalBytes}`);
    }
    this.#now = options.now ?? (() => performance.now());
  }

  append(stream: string, message: Omit<HistoryMessage, 'offset'>): StreamPosition {
    const entry = this.#stream(stream);
    // Written last: the stream least recently written is the first to be forgotten.
    this.#streams.delete(stream);
    this.#streams.set(stream, entry);
    entry.offset++;
    const bytes = MESSAGE_OVERHEAD + (typeof message.data === 'string' ? Buffer.byteLength(message.data) : message.data.byteLength);
    entry.messages.push({
      offset: entry.offset,
      data: message.data,
      binary: message.binary,
      except: message.except,
      bytes,
      at: this.#now(),
    });
    entry.bytes += bytes;
    this.#totalBytes += bytes;
    this.#trim(entry);
    this.#evict(stream);
    return { offset: entry.offset, epoch: entry.epoch };
  }

  position(stream: string): StreamPosition {
    const entry = this.#stream(stream);
    return { offset: entry.offset, epoch: entry.epoch };
  }

  async read(stream: string, since: StreamPosition): Promise<HistoryRead> {
    if (
      typeof since !== 'object' ||
      since === null ||
      !Number.isSafeInteger(since.offset) ||
      since.offset < 0 ||
      typeof since.epoch !== 'string'
    ) {
      throw new TypeError('since must be { offset: an integer ≥ 0, epoch: a string }');
    }
    const entry = this.#streams.get(stream);
    // A read never creates a stream: reading names that were never written must not evict real ones.
    if (entry === undefined) return { recovered: false, position: { offset: 0, epoch: '' }, reason: 'epoch-changed' };
    this.#trim(entry);
    const position = { offset: entry.offset, epoch: entry.epoch };
    if (since.epoch !== entry.epoch) return { recovered: false, position, reason: 'epoch-changed' };
    if (since.offset > entry.offset) return { recovered: false, position, reason: 'ahead' };
    const oldest = entry.head < entry.messages.length ? entry.messages[entry.head]!.offset : entry.offset + 1;
    if (since.offset + 1 < oldest) return { recovered: false, position, reason: 'trimmed' };
    const messages: HistoryMessage[] = [];
    for (let i = entry.head + (since.offset + 1 - oldest); i < entry.messages.length; i++) {
      const { offset, data, binary, except } = entry.messages[i]!;
      messages.push(except === undefined ? { offset, data, binary } : { offset, data, binary, except });
    }
    return { recovered: true, position, messages };
  }

  async close(): Promise<void> {
    this.#streams.clear();
    this.#totalBytes = 0;
  }

  #stream(name: string): Stream {
    let entry = this.#streams.get(name);
    if (entry === undefined) {
      entry = { epoch: newEpoch(), offset: 0, bytes: 0, messages: [], head: 0 };
      this.#streams.set(name, entry);
      this.#evict();
    }
    return entry;
  }

  /** Drops the oldest messages past any bound. */
  #trim(entry: Stream): void {
    const oldestKept = this.#now() - this.#maxAgeMs;
    const { messages } = entry;
    while (entry.head < messages.length) {
      const oldest = messages[entry.head]!;
      const kept = messages.length - entry.head;
      if (kept <= this.#maxMessages && entry.bytes <= this.#maxBytes && oldest.at >= oldestKept) break;
      entry.bytes -= oldest.bytes;
      this.#totalBytes -= oldest.bytes;
      messages[entry.head++] = undefined as unknown as Kept;
    }
    if (entry.head === messages.length) {
      entry.messages = [];
      entry.head = 0;
    } else if (entry.head > 64 && entry.head * 2 > messages.length) {
      entry.messages = messages.slice(entry.head);
      entry.head = 0;
    }
  }

  /**
   * Forgets the streams written longest ago while there are too many, or they
   * hold too many bytes together; never `keep`, the stream being written.
   */
  #evict(keep?: string): void {
    for (const [name, entry] of this.#streams) {
      if (this.#streams.size <= this.#maxStreams && this.#totalBytes <= this.#maxTotalBytes) return;
      if (name === keep) continue;
      this.#totalBytes -= entry.bytes;
      this.#streams.delete(name);
    }
  }
}
