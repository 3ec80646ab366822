import { execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll } from 'vitest';
import { launchRedisServer } from '../../bench/redis-process.js';
import { settles } from '../../src/testing/wait.js';

const run = promisify(execFile);

/** A Redis Cluster of the test's own: three masters (each with `replicas` replicas), on free loopback ports, no persistence. */
export interface TestRedisCluster {
  /** Every server's port; the first three are the masters as created. */
  readonly ports: readonly number[];
  /** One `{ url }` per master, as `createCluster({ rootNodes })` takes them. */
  readonly rootNodes: ReadonlyArray<{ url: string }>;
  /** Runs `redis-cli` against one master (`-c`, so a key's command follows its slot), and returns its output. */
  cli(port: number, ...args: string[]): Promise<string>;
  /** The master that holds `key`'s slot. */
  portOf(key: string): Promise<number>;
  /** SIGKILLs the server on `port`, as a crash would; its replica takes over after the node timeout. */
  kill(port: number): Promise<void>;
}

/** How `startRedisCluster` builds the cluster. */
export interface RedisClusterOptions {
  /** Replicas per master. [default 0] */
  readonly replicas?: number;
  /** `cluster-node-timeout`: how long a master is unreachable before its replica is promoted. [default 5000] */
  readonly nodeTimeoutMs?: number;
}

/**
 * A port for a cluster node, below the kernel's ephemeral range (32768 on): a port another test's server had
 * a moment ago is one its clients still dial, and a fresh node they reach is not empty when the cluster is created.
 * Its bus port (+10000) stays below the range too.
 */
function lowPort(): number {
  return 20_000 + Math.floor(Math.random() * 2700);
}

const started = new Set<ChildProcess>();
const directories: string[] = [];

afterAll(() => {
  for (const child of started) child.kill('SIGKILL');
  started.clear();
  for (const directory of directories.splice(0)) rmSync(directory, { recursive: true, force: true });
});

/**
 * Starts three cluster-enabled `redis-server`s (and their replicas), joins them with `redis-cli --cluster create`,
 * and waits for `cluster_state:ok` on all and every replica in sync; they are killed after the test file.
 */
export async function startRedisCluster(options: RedisClusterOptions = {}): Promise<TestRedisCluster> {
  const replicas = options.replicas ?? 0;
  const directory = mkdtempSync(join(tmpdir(), 'berth-cluster-'));
  directories.push(directory);
  const ports: number[] = [];
  const servers = new Map<number, ChildProcess>();
  for (let i = 0; i < 3 * (1 + replicas); i++) {
    for (let attempt = 0; ; attempt++) {
      const port = lowPort();
      // The cluster bus listens on port + 10000: both must be free (a taken one makes the launch fail, and another is tried).
      if (ports.includes(port)) continue;
      try {
        await launchRedisServer(
          port,
          '127.0.0.1',
          (child) => {
            servers.set(port, child);
            started.add(child);
            child.once('exit', () => started.delete(child));
          },
          [
            '--cluster-enabled',
            'yes',
            // A master writes its RDB here for a replica's full sync, not in the working directory.
            '--dir',
            directory,
            '--cluster-config-file',
            join(directory, `nodes-${port}.conf`),
            '--cluster-node-timeout',
            String(options.nodeTimeoutMs ?? 5000),
          ],
        );
        ports.push(port);
        break;
      } catch (error) {
        if (attempt === 4) throw error;
      }
    }
  }
  const cli = async (port: number, ...args: string[]) => (await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args])).stdout;
  await cli(
    ports[0]!,
    '--cluster',
    'create',
    ...ports.map((port) => `127.0.0.1:${port}`),
    '--cluster-replicas',
    String(replicas),
    '--cluster-yes',
  );
  for (const port of ports) {
    await settles(async () => {
      if (!(await cli(port, 'cluster', 'info')).includes('cluster_state:ok'))
        throw new Error(`the Redis Cluster on ${ports.join(', ')} did not reach cluster_state:ok`);
      // A replica that never synced with its master cannot take over from it.
      const replication = await cli(port, 'info', 'replication');
      if (replication.includes('role:slave') && !replication.includes('master_link_status:up'))
        throw new Error(`the replica on ${port} has not synced with its master`);
    }, 20_000);
  }
  return {
    ports,
    rootNodes: ports.map((port) => ({ url: `redis://127.0.0.1:${port}` })),
    cli: (port, ...args) => cli(port, '-c', ...args),
    kill: async (port) => {
      const child = servers.get(port)!;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    },
    portOf: async (key) => {
      const slot = Number((await cli(ports[0]!, 'cluster', 'keyslot', key)).trim());
      return (await clusterSlots(cli, ports[0]!)).find(([from, to]) => slot >= from && slot <= to)![2];
    },
  };
}

/** Each master's slot ranges, `[from, to, port]`, read from `CLUSTER NODES`. */
async function clusterSlots(
  cli: (port: number, ...args: string[]) => Promise<string>,
  port: number,
): Promise<Array<[number, number, number]>> {
  const ranges: Array<[number, number, number]> = [];
  for (const line of (await cli(port, 'cluster', 'nodes')).trim().split('\n')) {
    const fields = line.split(' ');
    if (!fields[2]!.includes('master')) continue;
    const masterPort = Number(fields[1]!.split('@')[0]!.split(':')[1]);
    for (const range of fields.slice(8)) {
      const [from, to] = range.split('-').map(Number) as [number, number | undefined];
      ranges.push([from, to ?? from, masterPort]);
    }
  }
  return ranges;
}
