import type { Target } from '../../machines/types.js';

export interface ReceiptHooks {
  /** Whether a node other than this one hosts someone of `target` now, as cluster presence says. */
  othersHost(target: Target): Promise<boolean>;
  /** `count` broadcasts to `target` reached no other node although one hosts someone of it. */
  unreceived(target: Target, count: number): void;
}

/** How many targets are remembered as having had receivers elsewhere; the oldest is forgotten past it. */
const MAX_TARGETS = 10_000;

/**
 * Finds broadcasts that no other node received when one should have: the
 * engine says how many subscribers a publish reached (Redis's PUBLISH and
 * SPUBLISH answer it), and when a target that had receivers on other nodes
 * suddenly has none, cluster presence is asked whether another node still
 * hosts someone of it: if one does, its subscriber was gone (dropped by the
 * engine, reconnecting), and those publishes are counted.
 *
 * It costs nothing while receivers answer, and one presence read per target
 * when they stop; a target whose other nodes left for good is then
 * forgotten, so a room hosted here alone costs nothing either.
 */
export class Receipts {
  readonly #hooks: ReceiptHooks;
  /** Targets that reached another node the last time, by sequence key. */
  readonly #reached = new Set<string>();
  /** Targets being checked: publishes that reached nobody meanwhile. */
  readonly #checking = new Map<string, number>();

  constructor(hooks: ReceiptHooks) {
    this.#hooks = hooks;
  }

  /** A publish to `target` (its `sequenceKeyOf`: `key`) reached `others` subscribers on other nodes. */
  published(target: Target, key: string, others: number): void {
    if (others > 0) {
      if (!this.#reached.has(key)) {
        if (this.#reached.size >= MAX_TARGETS) this.#reached.delete(this.#reached.values().next().value!);
        this.#reached.add(key);
      }
      return;
    }
    if (!this.#reached.has(key)) return;
    const waiting = this.#checking.get(key);
    if (waiting !== undefined) {
      this.#checking.set(key, waiting + 1);
      return;
    }
    this.#checking.set(key, 1);
    this.#hooks.othersHost(target).then(
      (hosted) => this.#settle(key, target, hosted),
      // Presence cannot be read (its failure is reported as such): what it cannot tell is not counted.
      () => this.#settle(key, target, false),
    );
  }

  #settle(key: string, target: Target, hosted: boolean): void {
    const count = this.#checking.get(key) ?? 0;
    this.#checking.delete(key);
    if (hosted) this.#hooks.unreceived(target, count);
    // Nobody elsewhere: the target is forgotten until it reaches another node again.
    else this.#reached.delete(key);
  }
}
