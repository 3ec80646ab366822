import type { Target } from '../../machines/types.js';

/** Something flushed by the scheduler. */
export interface Flushable {
  flush(): void;
}

/**
 * Flushes every outbox that has frames. A broadcast to a different target
 * than the previous broadcast's is written at once, like a plain socket
 * write; consecutive broadcasts to one target coalesce: whatever they queued
 * for a connection leaves in one write, at the turn's end (`setImmediate`),
 * or as soon as a broadcast to another target begins. So ten messages a turn
 * to one room leave in one write per socket, while eight rooms sent to in
 * one turn wait neither for each other's sockets nor for the turn's end, and
 * no room's message waits for a message the application built after it. The
 * previous target is remembered across turns: a room broadcast to once a
 * turn coalesces with nothing and is written at the turn's end. A
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

  constructor(options: { afterFlush?: (flushed: number) => void; onError: (error: unknown) => void }) {
    this.#afterFlush = options.afterFlush;
    this.#onError = options.onError;
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
   * broadcast: what that one queued is written now, and the caller calls `broadcasted()` once it has
   * queued this one's, to write them at once too.
   */
  broadcasting(target: Target): boolean {
    const previous = this.#target;
    this.#target = target;
    if (previous !== undefined && sameTarget(previous, target)) return false;
    this.#flush();
    return true;
  }

  /** A broadcast that `broadcasting` said goes at once has queued its frames: writes them. */
  broadcasted(): void {
    this.#flush();
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
