import type { Emitter, Handler } from 'mitt';
import { mitt } from './mitt.js';
import { isThenable } from './thenable.js';

/**
 * Typed events on mitt, with one difference from `mitt.emit`: every handler
 * runs even if an earlier one throws, and a handler's failure (a throw or a
 * rejected promise) goes to `onFailure` instead of up the caller's stack.
 */
export class EventHub<Events extends Record<string, unknown>> {
  readonly #emitter: Emitter<Events> = mitt<Events>();

  on<K extends keyof Events>(type: K, handler: Handler<Events[K]>): void {
    this.#emitter.on(type, handler);
  }

  off<K extends keyof Events>(type: K, handler?: Handler<Events[K]>): void {
    this.#emitter.off(type, handler);
  }

  has(type: keyof Events): boolean {
    return (this.#emitter.all.get(type)?.length ?? 0) > 0;
  }

  emit<K extends keyof Events>(type: K, payload: Events[K], onFailure: (error: unknown) => void): void {
    const handlers = this.#emitter.all.get(type);
    if (handlers === undefined || handlers.length === 0) return;
    // A copy, as mitt does: a handler may remove itself.
    for (const handler of [...handlers] as Handler<Events[K]>[]) {
      let result: unknown;
      try {
        result = handler(payload);
      } catch (error) {
        onFailure(error);
        continue;
      }
      if (isThenable(result)) Promise.resolve(result).catch(onFailure);
    }
  }
}
