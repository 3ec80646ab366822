import type { RedisClusterOptions } from 'redis';
import { object, text } from '../../util/validate.js';
import { clusterSettingsOf, exactlyOne, type ClusterAdapterOptions, type ClusterSettings } from '../core/options.js';
import type { DurableOptions } from '../durable.js';
import { durableSettingsOf, type DurableSettings } from './durable.js';
import type { RedisClient, RedisClusterClient } from './client.js';

/** Options of `createRedisAdapter`: a `url`, a `cluster`, or a `client` you own; the rest as every engine takes them. */
export interface RedisAdapterOptions extends ClusterAdapterOptions {
  /** One Redis server to connect to; the adapter creates, owns and closes its two connections. */
  readonly url?: string;
  /**
   * A Redis Cluster to connect to, as node-redis `createCluster()` takes it
   * (`{ rootNodes: [{ url: 'redis://10.0.0.1:7000' }, …] }`); the adapter creates, owns and closes
   * its clients. Room and user channels are then sharded (`SSUBSCRIBE`, `SPUBLISH`).
   */
  readonly cluster?: RedisClusterOptions;
  /**
   * A node-redis client to use instead of a URL, from `createClient()` or `createCluster()`: the
   * adapter connects it if it is not open, never closes it, and subscribes on `subscriber` (default
   * `client.duplicate()`, which the adapter owns).
   */
  readonly client?: RedisClient | RedisClusterClient;
  readonly subscriber?: RedisClient | RedisClusterClient;
  /** Namespace of keys and channels, so several applications can share one Redis: no spaces or braces. [default 'berth'] */
  readonly prefix?: string;
  /**
   * Durable streams: every room, user and `all` stream numbered once for the whole cluster by Redis, its
   * history kept there, and sessions kept there, so that a `berth.v1` client resumes on any node after a
   * move, a deploy or a node's death (docs/cluster.md). `true` for the defaults. [default off]
   */
  readonly durable?: boolean | DurableOptions;
}

/** The options as the Redis adapter runs with them: checked, defaults filled in. */
export interface RedisSettings extends ClusterSettings {
  readonly prefix: string;
  readonly url: string | undefined;
  readonly cluster: RedisClusterOptions | undefined;
  readonly client: RedisClient | RedisClusterClient | undefined;
  readonly subscriber: RedisClient | RedisClusterClient | undefined;
  readonly durable: DurableSettings | undefined;
}

/** Checks the options (misuse throws `TypeError` or `RangeError` naming the option) and fills in the defaults. */
export function redisSettingsOf(options: RedisAdapterOptions): RedisSettings {
  const settings = clusterSettingsOf(options);
  exactlyOne(options, ['url', 'cluster', 'client']);
  if (options.cluster !== undefined) {
    object('options.cluster', options.cluster);
    if (!Array.isArray(options.cluster.rootNodes) || options.cluster.rootNodes.length === 0) {
      throw new TypeError('options.cluster.rootNodes must be a non-empty array of { url }');
    }
  }
  if (options.url !== undefined) text('options.url', options.url, 'a redis:// or rediss:// URL', (url) => /^rediss?:\/\//.test(url));
  return {
    ...settings,
    // Braces would be a Redis Cluster hash tag; spaces would split the channel name.
    prefix: text('options.prefix', options.prefix ?? 'berth', 'non-empty, without spaces or braces', (prefix) => /^[^\s{}]+$/.test(prefix)),
    url: options.url,
    cluster: options.cluster,
    client: options.client,
    subscriber: options.subscriber,
    durable: options.durable === undefined || options.durable === false ? undefined : durableSettingsOf(options.durable),
  };
}
