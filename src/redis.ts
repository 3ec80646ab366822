/** `berth/redis`: the Redis adapter, apart so that `redis` is only loaded by those who use it. */
export { createRedisAdapter } from './redis-adapter.js';
export type { RedisAdapterOptions } from './redis-adapter.js';
export type { RedisClient } from './redis-client.js';
