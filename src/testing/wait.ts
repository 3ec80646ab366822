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
