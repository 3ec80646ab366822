import type { RedisClientType, RedisClusterType } from 'redis';

/** A node-redis (v5 or later) client, whatever modules, scripts or RESP version it was created with. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type RedisClient = RedisClientType<any, any, any, any, any>;

/** A node-redis (v5 or later) Redis Cluster client (`createCluster()`), whatever it was created with. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type RedisClusterClient = RedisClusterType<any, any, any, any, any>;
