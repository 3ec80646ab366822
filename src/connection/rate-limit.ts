import { oneOf, positive } from '../util/validate.js';

/** Per-connection limit on incoming messages (a token bucket). */
export interface RateLimitOptions {
  /** Sustained messages per second. */
  readonly messagesPerSecond: number;
  /** Messages allowed in a burst. [default messagesPerSecond] */
  readonly burst?: number;
  /** `drop` discards messages over the limit (emitting `dropped`); `close` closes with 1008. [default 'close'] */
  readonly policy?: 'drop' | 'close';
}

export type RateLimit = Required<RateLimitOptions>;

/** Checks and fills in a rate limit; `false` or nothing is no limit. */
export function resolveRateLimit(options: RateLimitOptions | false | undefined, name = 'options.rateLimit'): RateLimit | null {
  if (!options) return null;
  const messagesPerSecond = positive(`${name}.messagesPerSecond`, options.messagesPerSecond);
  const burst = positive(`${name}.burst`, options.burst ?? messagesPerSecond, 1);
  const policy = oneOf(`${name}.policy`, options.policy ?? 'close', ['drop', 'close']);
  return { messagesPerSecond, burst, policy };
}

/**
 * A token bucket: holds up to `burst` tokens, refills `perSecond` tokens a
 * second, and each message takes one. Time comes from `now` (milliseconds):
 * the runtime passes its clock's, so simulated time refills it too.
 */
export class TokenBucket {
  readonly #perMs: number;
  readonly #burst: number;
  readonly #now: () => number;
  #tokens: number;
  #last: number;

  constructor(perSecond: number, burst: number, now: () => number = performance.now.bind(performance)) {
    this.#perMs = perSecond / 1000;
    this.#burst = burst;
    this.#now = now;
    this.#tokens = burst;
    this.#last = now();
  }

  /** Takes a token if one is there. */
  take(): boolean {
    const now = this.#now();
    // A clock that steps back (a test's, or an adjusted one) refills nothing rather than taking tokens.
    this.#tokens = Math.min(this.#burst, this.#tokens + Math.max(0, now - this.#last) * this.#perMs);
    this.#last = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}
