import { refuseOverLimit } from '../core/engine.js';
import type { InterestKey } from '../interest.js';
import { sortedRecord } from '../presence.js';
import { nodeOf, type Keys } from './keys.js';
import type { RedisLink } from './link.js';
import type { Liveness } from './liveness.js';
import { pairs, scanHash } from './scan.js';

/**
 * Cluster-wide presence reads, each bounded in what it costs Redis:
 *
 * - a room's (or user's) size reads the room's hosts (one field per node
 *   hosting it) and those nodes' liveness: O(nodes hosting it), whatever the
 *   size of the cluster;
 * - its members add the members themselves, read in chunks (`scanHash`),
 *   once the hosts' counts said they are at most `limit`;
 * - `rooms()` and `onlineUsers()` read every live node's index (O(nodes)
 *   calls) once their sizes said they hold at most `limit` entries between
 *   them;
 * - `nodes()` reads the liveness table, one field per node.
 *
 * A read that would collect more than `limit` entries (`maxPresenceEntries`) rejects with a
 * `PresenceLimitError` (a `RangeError`) before reading them: an answer is complete or refused, never
 * silently cut short.
 */
export class PresenceReads {
  readonly #link: RedisLink;
  readonly #keys: Keys;
  readonly #liveness: Liveness;
  readonly #limit: number;

  constructor(link: RedisLink, keys: Keys, liveness: Liveness, limit: number) {
    this.#link = link;
    this.#keys = keys;
    this.#liveness = liveness;
    this.#limit = limit;
  }

  async nodes(): Promise<string[]> {
    const live: string[] = [];
    for (const [instance, state] of await this.#liveness.all()) {
      if (state === 1) live.push(nodeOf(instance));
      else if (state === 0) this.#liveness.reap(instance);
    }
    return live.sort();
  }

  async roomSize(room: string): Promise<number> {
    let size = 0;
    for (const [, count] of await this.#hosts(`room:${room}`)) size += count;
    return size;
  }

  async roomMembers(room: string): Promise<string[]> {
    return [...(await this.#members(`room:${room}`, 'roomMembers')).keys()].sort();
  }

  async roomUsers(room: string): Promise<string[]> {
    return [...(await this.#members(`room:${room}`, 'roomUsers')).values()].filter((user) => user !== '').sort();
  }

  async userConnections(user: string): Promise<string[]> {
    return [...(await this.#members(`user:${user}`, 'userConnections')).keys()].sort();
  }

  async rooms(): Promise<Record<string, number>> {
    const sizes: Record<string, number> = {};
    for (const entries of await this.#indexes('rooms')) {
      for (const [room, count] of entries) sizes[room] = (sizes[room] ?? 0) + count;
    }
    return sortedRecord(sizes);
  }

  async onlineUsers(): Promise<string[]> {
    const users = new Set<string>();
    for (const entries of await this.#indexes('users')) for (const user of entries.keys()) users.add(user);
    return [...users].sort();
  }

  /** The live instances hosting `key`, with its size on each; dead ones found on the way are handed to the reaper. */
  async #hosts(key: InterestKey): Promise<Array<[string, number]>> {
    const hosts = new Map<string, number>();
    await scanHash(this.#link, this.#keys.hosts(key), (flat) => {
      for (const [instance, count] of pairs(flat)) hosts.set(instance, Number(count));
    });
    const listed = [...hosts];
    const found = await this.#liveness.states(listed.map(([instance]) => instance));
    return listed.filter(([instance], i) => {
      if (found[i] !== 1) this.#liveness.found(key, instance, found[i]!);
      return found[i] === 1;
    });
  }

  /** Connection id → value of every live member of `key`, refused past the limit before it is read. */
  async #members(key: InterestKey, what: string): Promise<Map<string, string>> {
    const hosts = await this.#hosts(key);
    refuseOverLimit(
      what,
      hosts.reduce((sum, [, count]) => sum + count, 0),
      this.#limit,
    );
    const members = new Map<string, string>();
    await Promise.all(
      hosts.map(([instance]) =>
        scanHash(this.#link, this.#keys.members(key, instance), (flat) => {
          for (const [id, value] of pairs(flat)) members.set(id, value);
        }),
      ),
    );
    return members;
  }

  /** Every live instance's index of `kind`, refused past the limit (counted over all of them) before it is read. */
  async #indexes(kind: 'rooms' | 'users'): Promise<Array<Map<string, number>>> {
    const live: string[] = [];
    for (const [instance, state] of await this.#liveness.all()) if (state === 1) live.push(instance);
    const sizes = await Promise.all(
      live.map((instance) => this.#link.send(this.#keys.index(instance, kind), ['HLEN', this.#keys.index(instance, kind)])),
    );
    refuseOverLimit(
      kind === 'rooms' ? 'rooms' : 'onlineUsers',
      sizes.reduce((sum: number, size) => sum + Number(size), 0),
      this.#limit,
    );
    return Promise.all(
      live.map(async (instance) => {
        const entries = new Map<string, number>();
        await scanHash(this.#link, this.#keys.index(instance, kind), (flat) => {
          for (const [name, count] of pairs(flat)) entries.set(name, Number(count));
        });
        return entries;
      }),
    );
  }
}
