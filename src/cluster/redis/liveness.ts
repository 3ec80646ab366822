import type { InterestKey } from '../interest.js';
import type { Keys } from './keys.js';
import type { RedisLink } from './link.js';
import { pairs, scanHash } from './scan.js';
import { claim, forget, heartbeat, register, states } from './scripts.js';

/** How long a reaper holds a dead instance before another may take over (it died meanwhile, say). */
const CLAIM_MS = 30_000;

/** What Redis says of an instance: 1 live, 0 dead (its entries wait for a reaper), -1 gone. */
export type InstanceState = 1 | 0 | -1;

export interface LivenessOptions {
  readonly nodeId: string;
  readonly nodeTimeoutMs: number;
  /** Removing a dead instance's entries failed (another reaper takes over once the claim lapses). */
  readonly failed: (error: unknown, what: string) => void;
}

/**
 * Which instances are alive, from one hash of deadlines (`<p>:{nodes}`):
 * a heartbeat reads and writes this node's field and looks at one other
 * picked at random, so it costs the same however many nodes there are.
 * An instance whose deadline passed is dead for good. Its entries are left
 * where they are, ignored by every read, and removed by whoever comes
 * across it first: a heartbeat that picked it, a read that found it among a
 * room's hosts. The remover claims it, then walks its index in chunks.
 */
export class Liveness {
  readonly #link: RedisLink;
  readonly #keys: Keys;
  readonly #options: LivenessOptions;
  #generation = 0;
  #instance: string | undefined;
  /** Instances this process is removing now. */
  readonly #reaping = new Set<string>();

  constructor(link: RedisLink, keys: Keys, options: LivenessOptions) {
    this.#link = link;
    this.#keys = keys;
    this.#options = options;
  }

  /** This node's current instance; undefined until it first registered. */
  get instance(): string | undefined {
    return this.#instance;
  }

  /** Registers a new instance of this node; the previous one is dead from now on, and removed. */
  async register(): Promise<string> {
    const previous = this.#instance;
    const instance = `${this.#options.nodeId}.${++this.#generation}`;
    await register.run(this.#link, [this.#keys.live], [instance, String(this.#options.nodeTimeoutMs), previous ?? '']);
    this.#instance = instance;
    if (previous !== undefined) this.reap(previous);
    return instance;
  }

  /** Renews this instance's deadline: false if it had lapsed (the node must register anew). */
  async beat(): Promise<boolean> {
    const instance = this.#instance;
    if (instance === undefined) return false;
    const [renewed, dead] = (await heartbeat.run(this.#link, [this.#keys.live], [instance, String(this.#options.nodeTimeoutMs)])) as [
      number,
      string,
    ];
    if (dead !== '') this.reap(String(dead));
    return renewed === 1;
  }

  /** The states of these instances, in order. */
  async states(instances: readonly string[]): Promise<InstanceState[]> {
    if (instances.length === 0) return [];
    return ((await states.run(this.#link, [this.#keys.live], instances)) as number[]).map((state) => Number(state) as InstanceState);
  }

  /** Every registered instance and its state (one field per node of the cluster). */
  async all(): Promise<Array<[string, InstanceState]>> {
    const flat = ((await states.run(this.#link, [this.#keys.live])) as unknown[]).map(String);
    return [...pairs(flat)].map(([instance, state]) => [instance, Number(state) as InstanceState]);
  }

  /** A read found `instance` among `key`'s hosts in `state`: its entry there goes, or the whole instance does. */
  found(key: InterestKey, instance: string, state: InstanceState): void {
    if (state === 0) this.reap(instance);
    // Gone from the liveness table, yet still listed here (written while it was being removed): only this entry is left.
    // Should removing it fail, every read ignores it all the same, and the next that finds it tries again.
    else if (state === -1) this.#forget(key, instance).catch(() => {});
  }

  /**
   * Removes a dead instance's entries in the background, if no one else is: one call per room and user
   * it was in, found by walking its index in chunks, then its index and its field. A failure is reported.
   */
  reap(instance: string): void {
    if (this.#reaping.has(instance) || instance === this.#instance) return;
    this.#reaping.add(instance);
    this.#reap(instance)
      .finally(() => this.#reaping.delete(instance))
      .catch((error: unknown) => {
        if (this.#link.isReady) this.#options.failed(error, 'removing a dead node from presence');
      });
  }

  async #reap(instance: string): Promise<void> {
    if ((await claim.run(this.#link, [this.#keys.live], [instance, String(CLAIM_MS)])) !== 1) return;
    for (const [kind, prefix] of [
      ['rooms', 'room'],
      ['users', 'user'],
    ] as const) {
      await scanHash(this.#link, this.#keys.index(instance, kind), async (flat) => {
        await Promise.all([...pairs(flat)].map(([name]) => this.#forget(`${prefix}:${name}`, instance)));
      });
    }
    await this.#link.send(this.#keys.index(instance, 'rooms'), [
      'UNLINK',
      this.#keys.index(instance, 'rooms'),
      this.#keys.index(instance, 'users'),
    ]);
    await this.#link.send(this.#keys.live, ['HDEL', this.#keys.live, instance]);
  }

  /**
   * This node leaves (graceful shutdown): its instance is dead at once for every read, then its
   * entries (`hosted`, the rooms and users it hosts), its index and its field are removed.
   */
  async leave(hosted: Iterable<InterestKey>): Promise<void> {
    const instance = this.#instance;
    if (instance === undefined) return;
    this.#instance = undefined;
    const live = this.#keys.live;
    const marked = this.#link.send(live, ['HSET', live, instance, '0']);
    const removed = [...hosted].map((key) => this.#forget(key, instance));
    const index = this.#link.send(this.#keys.index(instance, 'rooms'), [
      'UNLINK',
      this.#keys.index(instance, 'rooms'),
      this.#keys.index(instance, 'users'),
    ]);
    // Settled from the start: if the link is destroyed while `marked` waits, their failures are not left unhandled.
    // An entry that could not be removed belongs to an instance gone from the table: every read ignores it, and drops it.
    const rest = Promise.allSettled([...removed, index]);
    await marked;
    await rest;
    await this.#link.send(live, ['HDEL', live, instance]);
  }

  #forget(key: InterestKey, instance: string): Promise<unknown> {
    return forget.run(this.#link, [this.#keys.hosts(key), this.#keys.members(key, instance)], [instance]);
  }
}
