/** Waiting in tests for what happens on its own time: a condition to hold, an assertion to pass. */

/** Polls `condition` every few milliseconds until it holds; fails after `timeoutMs`, naming `what`. [timeoutMs=5000] */
export async function eventually(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Retries an async assertion every few milliseconds until it passes; rethrows its last failure after `timeoutMs`. [timeoutMs=5000] */
export async function settles<T>(assertion: () => Promise<T>, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await assertion();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}

/** How often `Signal.until` looks again when nothing woke it: for state that changes without an event. */
const POLL_MS = 5;

/**
 * What a scenario run waits on: every event it records wakes whoever waits,
 * who then checks again whether what they wait for holds.
 */
export class Signal {
  readonly #waiting = new Set<() => void>();

  /** Something happened: every waiter checks again. */
  notify(): void {
    for (const wake of [...this.#waiting]) wake();
  }

  /** Resolves true once `done()` holds, false if it still does not after `timeoutMs`. */
  async until(done: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    while (!done()) {
      const left = deadline - performance.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.#waiting.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, Math.min(left, POLL_MS));
        this.#waiting.add(wake);
      });
    }
    return true;
  }
}
