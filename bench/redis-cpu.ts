/**
 * Redis's own CPU, read from `INFO cpu` (`used_cpu_user` + `used_cpu_sys`,
 * the whole redis-server process) over a client of the orchestrator's, so a
 * run can say what its messages cost the engine (cluster-fanout-durable's
 * `redis_cpu_us_per_message`, cluster-resume's notes).
 */
import { createClient } from 'redis';

export interface RedisCpu {
  /** The redis-server process's user + system CPU since it started, µs. */
  read(): Promise<number>;
  /** Time Redis spent executing commands since it started, µs (`INFO commandstats`, every command's `usec` summed): no idle time, no socket I/O. */
  commands(): Promise<number>;
  /** Connections Redis has accepted since it started (`INFO stats`): a node's link that reconnects adds one. */
  connections(): Promise<number>;
  close(): Promise<void>;
}

export async function redisCpu(url: string): Promise<RedisCpu> {
  const client = createClient({ url });
  client.on('error', () => {});
  await client.connect();
  return {
    read: async () => {
      const info = await client.info('cpu');
      const field = (name: string) => Number(new RegExp(`^${name}:([0-9.]+)`, 'm').exec(info)?.[1] ?? NaN);
      return Math.round((field('used_cpu_user') + field('used_cpu_sys')) * 1e6);
    },
    commands: async () => {
      let usec = 0;
      for (const match of (await client.info('commandstats')).matchAll(/,usec=(\d+),/g)) usec += Number(match[1]);
      return usec;
    },
    connections: async () => Number(/^total_connections_received:(\d+)/m.exec(await client.info('stats'))?.[1] ?? NaN),
    close: async () => {
      await client.close().catch(() => {});
    },
  };
}
