import { StorageType, type JetStreamManager, type KV, type KvEntry, type NatsConnection, type QueuedIterator } from 'nats';
import { PresenceLimitError } from '../core/engine.js';
import type { Names } from './names.js';

/** The four buckets presence lives in, open on one connection. */
export interface Buckets {
  /** `<owner>` → node id; a key lives `nodeTimeoutMs` after its last write. */
  readonly nodes: KV;
  /** `<room token>` → the room's index: which owners host members of it, and how many. */
  readonly rooms: KV;
  /** `<user token>` → the user's index: which owners host connections of it, and their ids. */
  readonly users: KV;
  /** `<room token>.<owner>` → that owner's members of the room, with their users. */
  readonly members: KV;
  /** Removes a key and every revision of it, leaving no delete marker behind. */
  purge(bucket: KV, key: string): Promise<void>;
}

export interface BucketOptions {
  readonly nodeTimeoutMs: number;
  readonly entryTtlMs: number;
  readonly replicas: number;
  readonly timeoutMs: number;
}

/**
 * Opens the buckets, creating those that do not exist (in memory: presence is rebuilt by every node
 * whenever its link comes back, so nothing of it needs to survive a server restart). A bucket that
 * exists is used as it is: the first node of a prefix decides its limits.
 */
export async function openBuckets(nc: NatsConnection, names: Names, options: BucketOptions): Promise<Buckets> {
  const js = nc.jetstream({ timeout: options.timeoutMs });
  const jsm: JetStreamManager = await nc.jetstreamManager({ timeout: options.timeoutMs });
  const open = (bucket: string, ttl: number) =>
    js.views.kv(bucket, { history: 1, ttl, storage: StorageType.Memory, replicas: options.replicas, timeout: options.timeoutMs });
  const { nodes, rooms, users, members } = names.buckets;
  const [nodesKv, roomsKv, usersKv, membersKv] = await Promise.all([
    open(nodes, options.nodeTimeoutMs),
    open(rooms, options.entryTtlMs),
    open(users, options.entryTtlMs),
    open(members, options.entryTtlMs),
  ]);
  const ttl = (await nodesKv.status()).ttl;
  if (ttl !== options.nodeTimeoutMs) {
    throw new RangeError(
      `bucket ${nodes} expires heartbeats after ${ttl} ms, not nodeTimeoutMs ${options.nodeTimeoutMs}: nodes of one prefix must agree on nodeTimeoutMs`,
    );
  }
  const streams = new Map<KV, string>([
    [nodesKv, nodes],
    [roomsKv, rooms],
    [usersKv, users],
    [membersKv, members],
  ]);
  return {
    nodes: nodesKv,
    rooms: roomsKv,
    users: usersKv,
    members: membersKv,
    async purge(bucket, key) {
      const name = streams.get(bucket)!;
      await jsm.streams.purge(`KV_${name}`, { filter: `$KV.${name}.${key}` });
    },
  };
}

/** A whole read of a bucket: for `what` read of presence, at most `limit` keys, within `timeoutMs`. */
export interface ReadAllOptions {
  readonly what: string;
  readonly limit: number;
  readonly timeoutMs: number;
}

/** The last value of every key of a bucket, or rejects once there are more than `limit` of them (or after `timeoutMs`). */
export async function readAll(bucket: KV, { what, limit, timeoutMs }: ReadAllOptions): Promise<KvEntry[]> {
  const entries = new Map<string, KvEntry>();
  let initialized = false;
  let failure: Error | undefined;
  let iterator: QueuedIterator<KvEntry> | undefined = undefined;
  // Called before `watch` returns when the bucket is empty, from the iterator otherwise. (Not with
  // `ignoreDeletes`: nats.js then never calls it when the last key read holds a delete marker.)
  iterator = await bucket.watch({
    initializedFn: () => {
      initialized = true;
      iterator?.stop();
    },
  });
  if (initialized) iterator.stop();
  const timer = setTimeout(() => {
    failure = new Error(`reading the bucket took longer than ${timeoutMs} ms`);
    iterator!.stop();
  }, timeoutMs);
  try {
    for await (const entry of iterator) {
      // A key seen again changed while it was read: its last value stands.
      if (entry.operation === 'PUT') entries.set(entry.key, entry);
      else entries.delete(entry.key);
      if (entries.size > limit) {
        failure = new PresenceLimitError(`presence ${what} would read more entries than maxPresenceEntries (${limit}): not read`);
        iterator!.stop();
      }
    }
  } finally {
    clearTimeout(timer);
  }
  if (failure !== undefined) throw failure;
  return [...entries.values()];
}

/** The value of `key`, if it holds one. */
export async function valueOf(bucket: KV, key: string): Promise<KvEntry | undefined> {
  const entry = await bucket.get(key);
  return entry?.operation === 'PUT' ? entry : undefined;
}

/** Whether a write with an expected revision failed because the key had changed (or expired) meanwhile. */
export function isStale(error: unknown): boolean {
  return (error as { api_error?: { err_code?: number } } | undefined)?.api_error?.err_code === 10071;
}
