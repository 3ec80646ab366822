import type { KV, KvEntry } from 'nats';
import { isStale } from './buckets.js';
import { tokenOf } from './names.js';

/**
 * Presence in JetStream key-value, every read a lookup of literal keys (which the server answers
 * from its per-subject index) or a whole read of a bucket whose keys are the answer:
 *
 * - `nodes`   `<owner>` → node id. An owner is one registration of a node (a new one after every
 *             reconnect); its key is renewed each heartbeat and expires `nodeTimeoutMs` after the last.
 * - `rooms`   `<room token>` → `{ name, owners: { <owner>: { n, at } } }`: who hosts the room, how many each.
 * - `users`   `<user token>` → `{ name, owners: { <owner>: { n, at, ids } } }`: the user's connections.
 * - `members` `<room token>.<owner>` → `{ name, n, members: [[id, user | null]…] }`: one owner's members of the room.
 *
 * Index values are shared by the owners that host the room (or user), so each writes its own part
 * with compare-and-set on the key's revision. Entries of owners whose heartbeat lapsed are left out of
 * every answer at once; nobody sweeps them: every bucket but `nodes` expires a key `entryTtlMs` after
 * its last write, each node rewrites its own entries every `entryTtlMs / 2`, and a writer drops from an
 * index the parts of owners that have not renewed them for `entryTtlMs`. This file holds the values'
 * shapes, and how an index is written.
 */

/** One owner's part of a room's or user's index. */
export interface IndexPart {
  /** Members of the room, or connections of the user, on that owner. */
  readonly n: number;
  /** When that owner last wrote its part (its clock). */
  readonly at: number;
  /** A user's connection ids; left out when they would pass `MAX_IDS_BYTES`. */
  readonly ids?: readonly string[];
}

/** A room's or user's index: its name (a token may be a digest), and the part of each owner hosting it. */
export interface Index {
  readonly name: string;
  readonly owners: Readonly<Record<string, IndexPart>>;
}

/** One owner's members of one room. */
export interface MemberList {
  readonly name: string;
  readonly n: number;
  /** Left out when the list would pass `MAX_LIST_BYTES`. */
  readonly members?: ReadonlyArray<readonly [string, string | null]>;
}

/** Longest member list one node writes for one room; past it the node writes the count alone. */
export const MAX_LIST_BYTES = 256 * 1024;
/** Longest list of one user's connection ids on one node; past it the count alone. */
export const MAX_IDS_BYTES = 16 * 1024;
/** Compare-and-set attempts on one index key before the write is reported failed. */
const MAX_ATTEMPTS = 20;

/** One owner's part of an index: how many, when, and (for a user) the connection ids if they fit. */
export function indexPart(ids: ReadonlySet<string>, at: number, listed: boolean): IndexPart {
  const part = { n: ids.size, at };
  if (!listed) return part;
  const list = [...ids];
  return Buffer.byteLength(JSON.stringify(list)) <= MAX_IDS_BYTES ? { ...part, ids: list } : part;
}

/** One owner's members of a room as a value: the list, or the count alone past `MAX_LIST_BYTES`. */
export function memberListValue(name: string, members: ReadonlyArray<readonly [string, string | null]>): string {
  const value = JSON.stringify({ name, n: members.length, members } satisfies MemberList);
  return Buffer.byteLength(value) <= MAX_LIST_BYTES ? value : JSON.stringify({ name, n: members.length } satisfies MemberList);
}

/**
 * Sets (or removes) `owner`'s part of the index of `name` with compare-and-set on the key's revision,
 * retrying while other owners write it too; the other parts stay if `keep` says so. The key goes
 * (a delete marker, which expires with the bucket's keys) once no part is left.
 */
export async function writeIndex(
  bucket: KV,
  name: string,
  owner: string,
  part: IndexPart | undefined,
  keep: (other: string, part: IndexPart) => boolean,
): Promise<void> {
  const key = tokenOf(name);
  for (let attempt = 1; ; attempt++) {
    const entry: KvEntry | null = await bucket.get(key);
    const current = entry?.operation === 'PUT' ? entry.json<Index>() : undefined;
    const owners: Record<string, IndexPart> = {};
    for (const [other, otherPart] of Object.entries(current?.owners ?? {})) {
      if (other !== owner && keep(other, otherPart)) owners[other] = otherPart;
    }
    if (part !== undefined) owners[owner] = part;
    const revision = entry?.revision ?? 0;
    try {
      if (Object.keys(owners).length > 0)
        await bucket.put(key, JSON.stringify({ name, owners } satisfies Index), { previousSeq: revision });
      else if (current !== undefined) await bucket.delete(key, { previousSeq: revision });
      return;
    } catch (error) {
      if (!isStale(error) || attempt === MAX_ATTEMPTS) throw error;
    }
  }
}
