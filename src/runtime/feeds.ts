/**
 * With durable streams, the engine numbers every message of a stream once
 * for the whole cluster; a feed delivers one stream's messages to this node
 * in offset order, exactly once. A message that comes before its
 * turn waits while the feed reads what is missing from the engine's history;
 * what the history no longer holds is told (`lost`) before what follows. A
 * periodic position check finds a lost tail: a stream whose last offset stays
 * ahead of what this node delivered for two checks is healed the same way.
 */
import type { BroadcastMessage } from '../cluster/adapter.js';
import type { DurableStreams, StreamRange } from '../cluster/durable.js';
import type { StreamPosition } from '../history/store.js';

/** A message of a durable stream, as the engine published it. */
export type NumberedMessage = BroadcastMessage & { readonly position: StreamPosition };

/** What the feeds need of their runtime. */
export interface FeedsHost {
  readonly durable: DurableStreams;
  /** How often the streams hosted here are checked. */
  readonly checkMs: number;
  /** Delivers a message to this node's recipients of `stream`, in its turn. */
  deliver(stream: string, message: NumberedMessage): void;
  /** Messages of `stream` are gone (`count` of them, when known): its members here are told it stands at `position` now. */
  lost(stream: string, position: StreamPosition, reason: 'trimmed' | 'epoch-changed', count: number | undefined): void;
  /** Whether a member of `stream` is here (a stream nobody here takes is let go). */
  hosts(stream: string): boolean;
  failed(error: unknown, what: string): void;
}

class Feed {
  /** Where delivery stands: the last offset delivered here, in `epoch`; undefined until the first position is read. */
  position: StreamPosition | undefined;
  /** Messages ahead of their turn (and, before the first position, all of them). */
  readonly pending: NumberedMessage[] = [];
  /** Set while the engine's history is read: nothing is delivered meanwhile. */
  busy = false;
  /** Told the position once it is known. */
  readonly waiting: Array<(position: StreamPosition) => void> = [];
  /** The stream's last offset at the previous check, if it was ahead of delivery then. */
  aheadAt: number | undefined;

  constructor(readonly stream: string) {}
}

export class Feeds {
  readonly #host: FeedsHost;
  readonly #feeds = new Map<string, Feed>();
  readonly #check: NodeJS.Timeout;

  constructor(host: FeedsHost) {
    this.#host = host;
    this.#check = setInterval(() => this.#checkAll(), host.checkMs).unref();
  }

  /** A message from the engine. */
  received(stream: string, message: NumberedMessage): void {
    const feed = this.#feed(stream);
    if (feed.position === undefined || feed.busy) return void feed.pending.push(message);
    this.#accept(feed, message);
  }

  /** Where `stream` stands here, once known: at once if it is, else when it is (a `joined` is told from here). */
  whenKnown(stream: string, then: (position: StreamPosition) => void): void {
    const feed = this.#feed(stream);
    if (feed.position !== undefined && !feed.busy) then(feed.position);
    else feed.waiting.push(then);
  }

  /** Where `stream` stands here, if known. */
  position(stream: string): StreamPosition | undefined {
    const feed = this.#feeds.get(stream);
    return feed?.busy === false ? feed.position : undefined;
  }

  close(): void {
    clearInterval(this.#check);
    this.#feeds.clear();
  }

  #feed(stream: string): Feed {
    let feed = this.#feeds.get(stream);
    if (feed === undefined) {
      this.#feeds.set(stream, (feed = new Feed(stream)));
      this.#start(feed);
    }
    return feed;
  }

  /** Reads where the stream stands: delivery starts after it (what came before was not this node's to deliver). */
  #start(feed: Feed): void {
    feed.busy = true;
    this.#host.durable.position(feed.stream).then(
      (position) => {
        if (this.#feeds.get(feed.stream) !== feed) return;
        feed.position = position;
        this.#settle(feed);
      },
      (error: unknown) => {
        feed.busy = false;
        this.#host.failed(error, `reading where ${feed.stream} stands`);
        // Tried again at the next check.
      },
    );
  }

  #accept(feed: Feed, message: NumberedMessage): void {
    const at = feed.position!;
    const { offset, epoch } = message.position;
    if (epoch === at.epoch && offset <= at.offset) return; // delivered already
    if (epoch === at.epoch && offset === at.offset + 1) {
      feed.position = message.position;
      this.#host.deliver(feed.stream, message);
      return;
    }
    feed.pending.push(message);
    this.#heal(feed);
  }

  /** Reads what this node missed of the stream from the engine's history, then delivers what waited. */
  #heal(feed: Feed): void {
    feed.busy = true;
    const since = feed.position!;
    this.#host.durable.range(feed.stream, since).then(
      (range) => {
        if (this.#feeds.get(feed.stream) !== feed) return;
        this.#healed(feed, since, range);
        this.#settle(feed);
      },
      (error: unknown) => {
        feed.busy = false;
        this.#host.failed(error, `reading the history of ${feed.stream}`);
      },
    );
  }

  #healed(feed: Feed, since: StreamPosition, range: StreamRange): void {
    const { stream } = feed;
    if (range.status === 'epoch-changed' || range.status === 'unknown' || range.status === 'ahead') {
      // The stream's history was lost (Redis restarted, failed over, or the stream expired): it goes on in a new epoch.
      const position = { offset: 0, epoch: range.epoch };
      feed.position = position;
      this.#host.lost(stream, position, 'epoch-changed', undefined);
      return;
    }
    const first = range.messages[0]?.offset ?? range.top + 1;
    if (first > since.offset + 1) {
      const position = { offset: first - 1, epoch: since.epoch };
      feed.position = position;
      this.#host.lost(stream, position, 'trimmed', first - 1 - since.offset);
    }
    for (const message of range.messages) {
      if (message.offset !== feed.position!.offset + 1) continue;
      feed.position = { offset: message.offset, epoch: since.epoch };
      const { data, binary, except } = message;
      this.#host.deliver(stream, { target: targetOf(stream), except, data, binary, position: feed.position });
    }
  }

  /** After a read: what waited is delivered in its turn; a gap still open is healed again. */
  #settle(feed: Feed): void {
    feed.busy = false;
    const position = feed.position!;
    for (const then of feed.waiting.splice(0)) then(position);
    if (feed.pending.length === 0) return;
    // Read just now, the position is the engine's: a message of another epoch is of one already gone.
    const pending = feed.pending
      .splice(0)
      .filter((message) => message.position.epoch === position.epoch)
      .sort((a, b) => a.position.offset - b.position.offset);
    for (let i = 0; i < pending.length; i++) {
      if (feed.busy) {
        feed.pending.push(...pending.slice(i));
        return;
      }
      this.#accept(feed, pending[i]!);
    }
  }

  #checkAll(): void {
    for (const feed of this.#feeds.values()) {
      if (feed.busy) continue;
      if (!this.#host.hosts(feed.stream) && feed.waiting.length === 0 && feed.pending.length === 0) {
        this.#feeds.delete(feed.stream);
        continue;
      }
      if (feed.position === undefined) {
        this.#start(feed);
        continue;
      }
      if (feed.pending.length > 0) {
        this.#heal(feed);
        continue;
      }
      this.#host.durable.position(feed.stream).then(
        ({ offset, epoch }) => {
          if (this.#feeds.get(feed.stream) !== feed || feed.busy) return;
          const at = feed.position!;
          if (epoch !== at.epoch) return this.#heal(feed);
          // Ahead for two checks running: the tail was lost on its way here (a message in flight is not).
          const lostTail = offset > at.offset && feed.aheadAt !== undefined && feed.aheadAt > at.offset;
          feed.aheadAt = offset > at.offset ? offset : undefined;
          if (lostTail) this.#heal(feed);
        },
        (error: unknown) => this.#host.failed(error, `checking where ${feed.stream} stands`),
      );
    }
  }
}

/** The target of a stream's messages. */
export function targetOf(stream: string): BroadcastMessage['target'] {
  if (stream.startsWith('room:')) return { kind: 'room', room: stream.slice('room:'.length) };
  if (stream.startsWith('user:')) return { kind: 'user', user: stream.slice('user:'.length) };
  return { kind: 'all' };
}
