import type { Target } from '../../machines/types.js';
import type { NodePresence } from './node-presence.js';
import type { PresenceChange } from './presence.js';

/** A room's or a user's key: `room:<name>` or `user:<name>`. */
export type InterestKey = `room:${string}` | `user:${string}`;

/** The key of a room or user target; undefined for `all`, which every node always wants. */
export function interestKeyOf(target: Target): InterestKey | undefined {
  return target.kind === 'room' ? `room:${target.room}` : target.kind === 'user' ? `user:${target.user}` : undefined;
}

export interface InterestHooks {
  /** This node now has a member of the room (or a connection of the user): its broadcasts are wanted. Settles once they reach it. */
  want(key: InterestKey): Promise<void> | undefined;
  /** Its last one left `lingerMs` ago and none came back: they are no longer wanted. */
  drop(key: InterestKey): void;
}

/**
 * Which rooms and users have someone on this node, read from the node's own
 * presence as each change is applied: a room (or user) becomes wanted when
 * its first local member arrives, and stops being wanted `lingerMs` after
 * its last one left, unless another arrived meanwhile, so a member that
 * leaves and rejoins does not make a subscription flap. Changes arrive one
 * at a time, in the order the supervisor accepted them, and each `want` or
 * `drop` is issued in that order: the last one issued for a key is always
 * what the node's presence says now (or a drop still lingering).
 */
export class Interest {
  readonly #presence: NodePresence;
  readonly #hooks: InterestHooks;
  readonly #lingerMs: number;
  readonly #wanted = new Set<InterestKey>();
  readonly #lingering = new Map<InterestKey, ReturnType<typeof setTimeout>>();

  constructor(presence: NodePresence, hooks: InterestHooks, lingerMs: number) {
    this.#presence = presence;
    this.#hooks = hooks;
    this.#lingerMs = lingerMs;
  }

  /** What is wanted now (lingering keys included). */
  get wanted(): ReadonlySet<InterestKey> {
    return this.#wanted;
  }

  /**
   * `change` was applied to the presence; `before` is what `NodePresence.apply` returned for it. If it
   * made a room or user wanted, the returned promise settles once its broadcasts reach this node.
   */
  changed(change: PresenceChange, before: { user: string | undefined; rooms: string[] } | undefined): Promise<void> | undefined {
    switch (change.kind) {
      case 'connect':
        return change.user === undefined ? undefined : this.#check(`user:${change.user}`, this.#presence.users.has(change.user));
      case 'join':
      case 'leave':
        return this.#check(`room:${change.room}`, this.#presence.rooms.has(change.room));
      case 'bind':
        // A binding moves a connection from one user to another: the old one can only be left, the new one only become wanted.
        if (before?.user !== undefined) this.#left(`user:${before.user}`, this.#presence.users.has(before.user));
        return change.user === undefined ? undefined : this.#check(`user:${change.user}`, this.#presence.users.has(change.user));
      case 'disconnect':
        if (before === undefined) return undefined;
        for (const room of before.rooms) this.#left(`room:${room}`, this.#presence.rooms.has(room));
        if (before.user !== undefined) this.#left(`user:${before.user}`, this.#presence.users.has(before.user));
        return undefined;
    }
  }

  /** Forgets every lingering drop (the adapter is closing). */
  close(): void {
    for (const timer of this.#lingering.values()) clearTimeout(timer);
    this.#lingering.clear();
  }

  /** Wants `key` or lets it linger, as its presence says; the promise of a `want` it issued. */
  #check(key: InterestKey, present: boolean): Promise<void> | undefined {
    if (!present) return this.#left(key, false);
    const timer = this.#lingering.get(key);
    if (timer !== undefined) {
      clearTimeout(timer);
      this.#lingering.delete(key);
    }
    if (this.#wanted.has(key)) return undefined;
    this.#wanted.add(key);
    return this.#hooks.want(key);
  }

  /**
   * A member of `key` left this node (`present`: others are still here). Its last one gone, `key` lingers;
   * while others are here it was wanted and stays so, not lingering, as they were here before the change too.
   */
  #left(key: InterestKey, present: boolean): undefined {
    if (present || !this.#wanted.has(key) || this.#lingering.has(key)) return undefined;
    const timer = setTimeout(() => {
      this.#lingering.delete(key);
      this.#wanted.delete(key);
      this.#hooks.drop(key);
    }, this.#lingerMs);
    timer.unref?.();
    this.#lingering.set(key, timer);
    return undefined;
  }
}
