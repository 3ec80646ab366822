/** `berth/redis`: the Redis adapter, apart so that `redis` is only loaded by those who use it. */
export { createRedisAdapter } from './cluster/redis/adapter.js';
export type { RedisAdapterOptions } from './cluster/redis/options.js';
export type { DurableOptions } from './cluster/durable.js';
export type { ClusterAdapterOptions } from './cluster/core/options.js';
export type { RedisClient, RedisClusterClient } from './cluster/redis/client.js';
