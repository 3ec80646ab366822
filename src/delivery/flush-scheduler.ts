/** Something flushed by the scheduler. */
export interface Flushable {
  flush(): void;
}

/**
 * Flushes every outbox that has frames, once per event-loop turn: whatever a
 * turn queued for a connection leaves in one write, at the turn's end
 * (`setImmediate`). One timer serves all connections.
 */
export class FlushScheduler {
  #pending: Flushable[] = [];
  #spare: Flushable[] = [];
  #armed = false;
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
      setImmediate(this.#run);
    }
  }

  readonly #run = (): void => {
    this.#armed = false;
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
    this.#afterFlush?.(flushed);
  };
}
