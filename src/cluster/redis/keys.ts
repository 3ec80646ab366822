import type { InterestKey } from '../interest.js';

/**
 * Where presence lives in Redis. Every key's hash tag (the part in braces,
 * which alone decides a Redis Cluster slot) names one room, one user, one
 * node instance, or the liveness table, so every script touches the keys of
 * one tag, on one shard:
 *
 * - `<p>:{nodes}`                   hash: instance → heartbeat deadline (ms, Redis's clock); below 0 while a reaper removes it
 * - `<p>:{room:<room>}:nodes`       hash: instance → members of the room on it
 * - `<p>:{room:<room>}:node:<i>`    hash: connection id → its user ('' for none), the room's members on instance `i`
 * - `<p>:{user:<user>}:nodes`       hash: instance → connections of the user on it
 * - `<p>:{user:<user>}:node:<i>`    hash: connection id → '', the user's connections on instance `i`
 * - `<p>:{node:<i>}:rooms`          hash: room → members on instance `i` (what to remove when it dies; `rooms()`)
 * - `<p>:{node:<i>}:users`          hash: user → connections on instance `i` (the same; `onlineUsers()`)
 *
 * An instance is a node's id and a generation, `<nodeId>.<n>`: a node that
 * must write its entries whole again (Redis restarted, its heartbeat lapsed)
 * registers as a new instance, and the old one is dead for good, so removing
 * its entries can never race with the node writing them again.
 *
 * The channels of rooms and users carry the same tags, so a room's keys and
 * its sharded channel live on one shard: `<p>:{room:<room>}`,
 * `<p>:{user:<user>}`; and `<p>:broadcast` is the channel for everyone.
 */
export class Keys {
  readonly #prefix: string;
  readonly live: string;
  readonly broadcast: string;

  constructor(prefix: string) {
    this.#prefix = prefix;
    this.live = `${prefix}:{nodes}`;
    this.broadcast = `${prefix}:broadcast`;
  }

  /** The channel of a room or user. */
  channel(key: InterestKey): string {
    return `${this.#prefix}:{${key}}`;
  }

  /** A room's or user's index of the instances hosting it. */
  hosts(key: InterestKey): string {
    return `${this.#prefix}:{${key}}:nodes`;
  }

  /** A room's members, or a user's connections, on one instance. */
  members(key: InterestKey, instance: string): string {
    return `${this.#prefix}:{${key}}:node:${instance}`;
  }

  /** One instance's rooms or users, with their sizes there. */
  index(instance: string, kind: 'rooms' | 'users'): string {
    return `${this.#prefix}:{node:${instance}}:${kind}`;
  }
}

/** The node id of an instance id (`<nodeId>.<generation>`). */
export function nodeOf(instance: string): string {
  const dot = instance.lastIndexOf('.');
  return dot === -1 ? instance : instance.slice(0, dot);
}
