import type { Emitter, Handler } from 'mitt';
import { mitt } from './mitt.js';
import { isThenable } from './thenable.js';

/**
 * Typed events on mitt, with two differences from mitt itself: every handler
 * runs even if an earlier one throws, and a handler's failure (a throw or a
 * rejected promise) goes to `onFailure` instead of up the caller's stack; and
 * a name that is no event throws, so that a misspelt or renamed one fails
 * where it is written instead of never firing.
 */
export class EventHub<Events extends object> {
  readonly #emitter: Emitter<Record<string, unknown>> = mitt<Record<string, unknown>>();
  readonly #names: ReadonlySet<string>;

  /** `names` holds every event, as a record so that the compiler says when one is missing. */
  constructor(names: { readonly [K in keyof Events]: true }) {
    this.#names = new Set(Object.keys(names));
  }

  /** Subscribes; returns the unsubscribe. */
  on<K extends keyof Events & string>(type: K, handler: Handler<Events[K]>): () => void {
    this.#emitter.on(this.#known(type), handler as Handler<unknown>);
    return () => this.#emitter.off(type, handler as Handler<unknown>);
  }

  off<K extends keyof Events & string>(type: K, handler?: Handler<Events[K]>): void {
    this.#emitter.off(this.#known(type), handler as Handler<unknown> | undefined);
  }

  has(type: keyof Events & string): boolean {
    return (this.#emitter.all.get(type)?.length ?? 0) > 0;
  }

  emit<K extends keyof Events & string>(type: K, payload: Events[K], onFailure: (error: unknown) => void): void {
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

  #known(type: string): string {
    if (!this.#names.has(type)) {
      throw new TypeError(`unknown event ${JSON.stringify(type)}: the events are ${[...this.#names].join(', ')}`);
    }
    return type;
  }
}
