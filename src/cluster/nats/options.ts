import type { NatsConnection } from 'nats';
import { duration, integer, object, positive, text } from '../../util/validate.js';

/** Options of `createNatsAdapter`: `servers`, or a `connection` you own. */
export interface NatsAdapterOptions {
  /** NATS to connect to (`nats://127.0.0.1:4222`, or several of one cluster); the adapter creates, owns and closes its connection. */
  readonly servers?: string | readonly string[];
  /** A nats.js connection to use instead of `servers`: the adapter never closes it, and its reconnect settings are yours. */
  readonly connection?: NatsConnection;
  /** Namespace of subjects and buckets, so several applications can share one NATS: letters, digits, `-` and `_`. [default 'berth'] */
  readonly prefix?: string;
  /** A node whose heartbeat key is not renewed for this long is left out of presence (the key expires). [default 10000] */
  readonly nodeTimeoutMs?: number;
  /** How often the heartbeat key is renewed. [default nodeTimeoutMs / 4] */
  readonly heartbeatIntervalMs?: number;
  /** How long `runtime.ready` waits for a first connection before starting local-only (health `degraded`). [default 5000] */
  readonly connectTimeoutMs?: number;
  /** How long a presence read (or a subscription) waits for NATS before it rejects with `ERR_ADAPTER`. [default 2000] */
  readonly presenceTimeoutMs?: number;
  /**
   * Bytes of broadcasts handed to NATS and not yet confirmed by the server (a PING answered after
   * them). Past it (NATS slow or stalled) broadcasts are dropped and counted instead of queued in
   * memory. [default 16777216]
   */
  readonly maxPublishBacklogBytes?: number;
  /** How long a node stays subscribed to a room's (or user's) subject after its last local member left. [default 2000] */
  readonly unsubscribeLingerMs?: number;
  /** A presence read whose answer would hold more entries than this rejects instead of answering. [default 10000] */
  readonly maxPresenceEntries?: number;
  /**
   * Presence keys other than heartbeats expire this long after their last write; each node rewrites
   * its own every `entryTtlMs / 2`, so what a dead node left behind is gone after it. [default 300000]
   */
  readonly entryTtlMs?: number;
  /** Replicas of the presence buckets on a clustered JetStream. [default 1] */
  readonly replicas?: number;
}

/** The options as the adapter runs with them: checked, defaults filled in. */
export interface NatsSettings {
  readonly servers: string[] | undefined;
  readonly prefix: string;
  readonly nodeTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  readonly connectTimeoutMs: number;
  readonly presenceTimeoutMs: number;
  readonly maxPublishBacklogBytes: number;
  readonly unsubscribeLingerMs: number;
  readonly maxPresenceEntries: number;
  readonly entryTtlMs: number;
  readonly replicas: number;
}

/** Checks the options (misuse throws `TypeError` or `RangeError` naming the option) and fills in the defaults. */
export function settingsOf(options: NatsAdapterOptions): NatsSettings {
  object('options', options);
  if ((options.servers === undefined) === (options.connection === undefined)) {
    throw new TypeError('give exactly one of options.servers or options.connection');
  }
  let servers: string[] | undefined;
  if (options.servers !== undefined) {
    const list = typeof options.servers === 'string' ? [options.servers] : options.servers;
    if (!Array.isArray(list) || list.length === 0) throw new TypeError('options.servers must be a URL or a non-empty array of URLs');
    list.forEach((server: unknown, i) =>
      text(`options.servers[${i}]`, server, 'a nats:// (or tls://, host:port) URL', (url) => /^([a-z]+:\/\/)?[^\s/]+$/.test(url)),
    );
    servers = [...list];
  } else {
    object('options.connection', options.connection);
  }
  // Bucket names allow letters, digits, '-' and '_' only; subjects take the same prefix.
  const prefix = text('options.prefix', options.prefix ?? 'berth', 'at most 64 letters, digits, - or _', (value) =>
    /^[A-Za-z0-9_-]{1,64}$/.test(value),
  );
  const nodeTimeoutMs = positive('options.nodeTimeoutMs', options.nodeTimeoutMs ?? 10_000, 1000);
  const heartbeatIntervalMs = duration('options.heartbeatIntervalMs', options.heartbeatIntervalMs ?? Math.round(nodeTimeoutMs / 4));
  if (heartbeatIntervalMs > nodeTimeoutMs / 2) {
    throw new RangeError(`options.heartbeatIntervalMs must be at most half of options.nodeTimeoutMs, got ${heartbeatIntervalMs}`);
  }
  const entryTtlMs = duration('options.entryTtlMs', options.entryTtlMs ?? 300_000);
  if (entryTtlMs < 4 * nodeTimeoutMs)
    throw new RangeError(`options.entryTtlMs must be at least 4 × options.nodeTimeoutMs, got ${entryTtlMs}`);
  return {
    servers,
    prefix,
    nodeTimeoutMs,
    heartbeatIntervalMs,
    connectTimeoutMs: duration('options.connectTimeoutMs', options.connectTimeoutMs ?? 5000),
    presenceTimeoutMs: duration('options.presenceTimeoutMs', options.presenceTimeoutMs ?? 2000),
    maxPublishBacklogBytes: integer(
      'options.maxPublishBacklogBytes',
      options.maxPublishBacklogBytes ?? 16 * 1024 * 1024,
      1,
      Number.MAX_SAFE_INTEGER,
    ),
    unsubscribeLingerMs: duration('options.unsubscribeLingerMs', options.unsubscribeLingerMs ?? 2000),
    maxPresenceEntries: integer('options.maxPresenceEntries', options.maxPresenceEntries ?? 10_000, 1, Number.MAX_SAFE_INTEGER),
    entryTtlMs,
    replicas: integer('options.replicas', options.replicas ?? 1, 1, 5),
  };
}
