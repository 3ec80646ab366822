import type { Target } from '../../machines/types.js';

/** Something flushed by the scheduler. */
export interface Flushable {
  flush(): void;
}

/**
 * Flushes every outbox that has frames. Consecutive broadcasts to one target
 * coalesce: whatever they queued for a connection leaves in one write, at the
 * turn's end (`setImmediate`). A broadcast to a different target first writes
 * what the previous ones queued, so eight rooms sent to in one turn do not
 * wait for each other's sockets; a connection's frames keep their order
 * either way. One timer serves all connections.
 */
export class FlushScheduler {
  #pending: Flushable[] = [];
  #spare: Flushable[] = [];
  #armed = false;
  #running = false;
  /** The target of the broadcast whose frames are pending. */
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

  /** Called before a broadcast is written into its recipients' outboxes. */
  broadcasting(target: Target): void {
    const previous = this.#target;
    this.#target = target;
    if (previous !== undefined && !sameTarget(previous, target)) this.#flush();
  }

  readonly #turnEnded = (): void => {
    this.#armed = false;
    this.#target = undefined;
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
