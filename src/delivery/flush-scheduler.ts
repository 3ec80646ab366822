import type { Target } from '../../machines/types.js';

/** Something flushed by the scheduler. */
export interface Flushable {
  flush(): void;
}

/**
 * How many outboxes a broadcast must reach to be written at once, and how
 * many may wait for the turn's end: about a millisecond of socket writes.
 */
export const LARGE_FANOUT = 1024;

/**
 * Flushes every outbox that has frames. A large broadcast (`largeFanout`
 * recipients or more) to a different target than the previous broadcast's
 * is written at once, like a plain socket write; consecutive broadcasts to
 * one target coalesce: whatever they queued for a connection leaves in one
 * write, at the turn's end (`setImmediate`), or as soon as a large broadcast
 * to another target is written. Small broadcasts to different targets
 * coalesce until the turn's end too, as long as fewer than `largeFanout`
 * outboxes wait: a connection of a small room sent to ten times in a turn,
 * between other rooms' messages, gets one write, not ten, and no message
 * waits behind more than about `largeFanout` socket writes. So ten messages
 * a turn to one room leave in one write per socket, eight large rooms sent
 * to in one turn wait neither for each other's sockets nor for the turn's
 * end, and no large room's message waits for a message the application
 * built after it. The previous target is remembered across turns. A
 * connection's frames keep their order either way. One timer serves all
 * connections.
 */
export class FlushScheduler {
  #pending: Flushable[] = [];
  #spare: Flushable[] = [];
  #armed = false;
  #running = false;
  /** The previous broadcast's target. */
  #target: Target | undefined;
  readonly #afterFlush: ((flushed: number) => void) | undefined;
  readonly #onError: (error: unknown) => void;
  readonly #largeFanout: number;

  constructor(options: { afterFlush?: (flushed: number) => void; onError: (error: unknown) => void; largeFanout?: number }) {
    this.#afterFlush = options.afterFlush;
    this.#onError = options.onError;
    this.#largeFanout = options.largeFanout ?? LARGE_FANOUT;
  }

  schedule(item: Flushable): void {
    this.#pending.push(item);
    if (!this.#armed) {
      this.#armed = true;
      setImmediate(this.#turnEnded);
    }
  }

  /**
   * Called before a broadcast's frames are queued. True if it goes to another target than the previous
   * broadcast: if `largeFanout` outboxes or more wait, they are written now, and the caller calls
   * `broadcasted(recipients)` once it has queued this one's, to write them at once if they are many.
   */
  broadcasting(target: Target): boolean {
    const previous = this.#target;
    this.#target = target;
    if (previous !== undefined && sameTarget(previous, target)) return false;
    if (this.#pending.length >= this.#largeFanout) this.#flush();
    return true;
  }

  /** A broadcast that `broadcasting` said may go at once has queued its frames for `recipients`: written now if they are many. */
  broadcasted(recipients: number): void {
    if (recipients >= this.#largeFanout) this.#flush();
  }

  readonly #turnEnded = (): void => {
    this.#armed = false;
    this.#flush();
  };

  #flush(): void {
    // A flush that leads to a broadcast (a close handler sending to a room) leaves it to this one's end or the turn's.
    if (this.#running) return;
    this.#running = true;
    const batch = this.#pending;
    this.#pending = this.#spare;
    for (const item of batch) {
      try {
        item.flush();
      } catch (error) {
        // One connection's failure must not keep the others' frames back.
        this.#onError(error);
      }
    }
    const flushed = batch.length;
    batch.length = 0;
    this.#spare = batch;
    this.#running = false;
    this.#afterFlush?.(flushed);
  }
}

function sameTarget(a: Target, b: Target): boolean {
  switch (a.kind) {
    case 'room':
      return b.kind === 'room' && a.room === b.room;
    case 'user':
      return b.kind === 'user' && a.user === b.user;
    case 'all':
      return b.kind === 'all';
  }
}
