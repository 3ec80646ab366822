import type { NatsConnection } from 'nats';
import { duration, integer, object, text } from '../../util/validate.js';
import { clusterSettingsOf, exactlyOne, type ClusterAdapterOptions, type ClusterSettings } from '../core/options.js';

/** Options of `createNatsAdapter`: `servers`, or a `connection` you own; the rest as every engine takes them. */
export interface NatsAdapterOptions extends ClusterAdapterOptions {
  /** NATS to connect to (`nats://127.0.0.1:4222`, or several of one cluster); the adapter creates, owns and closes its connection. */
  readonly servers?: string | readonly string[];
  /** A nats.js connection to use instead of `servers`: the adapter never closes it, and its reconnect settings are yours. */
  readonly connection?: NatsConnection;
  /** Namespace of subjects and buckets, so several applications can share one NATS: letters, digits, `-` and `_`. [default 'berth'] */
  readonly prefix?: string;
  /**
   * Presence keys other than heartbeats expire this long after their last write; each node rewrites
   * its own every `entryTtlMs / 2`, so what a dead node left behind is gone after it. [default 300000]
   */
  readonly entryTtlMs?: number;
  /** Replicas of the presence buckets on a clustered JetStream. [default 1] */
  readonly replicas?: number;
}

/** The options as the NATS adapter runs with them: checked, defaults filled in. */
export interface NatsSettings extends ClusterSettings {
  readonly servers: string[] | undefined;
  readonly connection: NatsConnection | undefined;
  readonly prefix: string;
  readonly entryTtlMs: number;
  readonly replicas: number;
}

/** Checks the options (misuse throws `TypeError` or `RangeError` naming the option) and fills in the defaults. */
export function natsSettingsOf(options: NatsAdapterOptions): NatsSettings {
  const settings = clusterSettingsOf(options);
  if ((options as { durable?: unknown }).durable !== undefined && (options as { durable?: unknown }).durable !== false) {
    // JetStream numbers a stream's messages, not a subject's: contiguous offsets per room would take a
    // compare-and-set publish per message (docs/cluster.md, "Durable streams on NATS").
    throw new TypeError(
      'options.durable is not supported by the NATS adapter: its streams are at most once across nodes. ' +
        'Use createRedisAdapter({ durable: true }) for streams numbered cluster-wide and sessions that resume on any node (docs/cluster.md)',
    );
  }
  exactlyOne(options, ['servers', 'connection']);
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
  const entryTtlMs = duration('options.entryTtlMs', options.entryTtlMs ?? 300_000);
  if (entryTtlMs < 4 * settings.nodeTimeoutMs)
    throw new RangeError(`options.entryTtlMs must be at least 4 × options.nodeTimeoutMs, got ${entryTtlMs}`);
  return {
    ...settings,
    servers,
    connection: options.connection,
    // Bucket names allow letters, digits, '-' and '_' only; subjects take the same prefix.
    prefix: text('options.prefix', options.prefix ?? 'berth', 'at most 64 letters, digits, - or _', (value) =>
      /^[A-Za-z0-9_-]{1,64}$/.test(value),
    ),
    entryTtlMs,
    replicas: integer('options.replicas', options.replicas ?? 1, 1, 5),
  };
}
