/**
 * A failover never reuses an offset: on a real Redis Cluster (three masters,
 * a replica each), durable streams flow from two nodes while the master of
 * one room's slot is SIGKILLed and its replica promoted. Every delivery on
 * every client is collected: no `(stream, epoch, offset)` may come with two
 * different messages, and every gap a client sees is explained.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createRuntime, type Runtime } from '../../src/index.js';
import { createRedisAdapter } from '../../src/redis.js';
import { eventually, settles } from '../../src/testing/wait.js';
import { startRedisCluster } from '../helpers/redis-cluster.js';
import { v1, type V1Client } from '../helpers/v1.js';

const ROOMS = ['r0', 'r1', 'r2', 'r3', 'r4', 'r5'];
const runtimes: Runtime[] = [];

afterEach(async () => {
  await Promise.all(runtimes.splice(0).map((runtime) => runtime.close({ timeoutMs: 1000 })));
});

describe('durable streams through a Redis Cluster failover', () => {
  it('a master SIGKILLed while publishing: no offset of any stream is handed out twice, and every gap is told', async () => {
    const cluster = await startRedisCluster({ replicas: true, nodeTimeoutMs: 1000 });
    const nodes = [];
    for (let i = 0; i < 2; i++) {
      const runtime = createRuntime({
        port: 0,
        host: '127.0.0.1',
        adapter: createRedisAdapter({ cluster: { rootNodes: [...cluster.rootNodes] }, prefix: 'fo', durable: { positionCheckMs: 200 } }),
      });
      runtimes.push(runtime);
      runtime.on('error', () => {});
      runtime.on('connection', (connection) => {
        for (const room of ROOMS) void connection.join(room);
      });
      await runtime.ready;
      nodes.push({ runtime, client: await v1(`ws://127.0.0.1:${runtime.address()!.port}`) });
    }
    const joined = (client: V1Client) => client.received.filter((m) => m.t === 'joined').length === ROOMS.length;
    await eventually(() => nodes.every(({ client }) => joined(client)), 'every client in every room', 10_000);
    const victim = await cluster.portOf('{room:r0}');
    let n = 0;
    const publish = () => {
      for (const [i, { runtime }] of nodes.entries()) {
        try {
          runtime.sendToRoom(ROOMS[n % ROOMS.length]!, `n${i}:${n}`);
        } catch {
          // A send while the runtime is closing: not part of what is checked.
        }
      }
      n++;
    };
    const timer = setInterval(publish, 3);
    try {
      await new Promise((resolve) => setTimeout(resolve, 500));
      cluster.kill(victim);
      // The replica takes over once the cluster agrees the master is gone.
      const survivor = cluster.ports.find((port) => port !== victim)!;
      await settles(async () => {
        if (!(await cluster.cli(survivor, 'cluster', 'info')).includes('cluster_state:ok')) throw new Error('cluster not ok yet');
        if ((await cluster.portOf('{room:r0}')) === victim) throw new Error('not failed over yet');
      }, 20_000);
      const before = n;
      // Messages flow to the promoted replica's rooms again.
      await eventually(
        () => nodes.every(({ client }) => client.received.some((m) => m.s === 'room:r0' && Number(String(m.d).split(':')[1]) > before)),
        'r0 after the failover',
        20_000,
      );
    } finally {
      clearInterval(timer);
    }
    await new Promise((resolve) => setTimeout(resolve, 600));
    const seen = new Map<string, string>();
    let deliveries = 0;
    for (const { client } of nodes) {
      const last = new Map<string, { o: number; e: string }>();
      for (const m of client.received) {
        if (typeof m.s !== 'string' || !m.s.startsWith('room:')) continue;
        const at = { o: m.o as number, e: m.e as string };
        if (m.t === 'msg') {
          deliveries++;
          const key = `${m.s} ${at.e} ${at.o}`;
          expect(seen.get(key) ?? m.d, `${key} delivered with two messages`).toBe(m.d);
          seen.set(key, m.d as string);
          const previous = last.get(m.s);
          // Within an epoch offsets follow one another; a new epoch comes only after a `lost` said so.
          if (previous !== undefined) expect([m.s, at.e, at.o]).toEqual([m.s, previous.e, previous.o + 1]);
        }
        if (m.t === 'msg' || m.t === 'joined' || m.t === 'lost' || m.t === 'skip') last.set(m.s, at);
      }
    }
    expect(deliveries).toBeGreaterThan(200);
    // The failed shard's streams went on in a new epoch, told to every member.
    for (const { client } of nodes) {
      expect(client.received.filter((m) => m.t === 'lost' && m.s === 'room:r0').map((m) => m.reason)).toContain('epoch-changed');
    }
  }, 60_000);
});
