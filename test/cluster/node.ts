/**
 * One berth node of a cluster test, run in its own process: a standalone
 * runtime on the Redis adapter (or the NATS adapter, given NATS_URL). Clients
 * speak a small JSON protocol to it (`{"join":room}`, `{"leave":room}`,
 * `{"user":name}`, each answered `ok <request>`); the test process drives
 * broadcasts and reads presence over IPC. Configured by environment:
 * REDIS_URL (one server), REDIS_CLUSTER (a Redis Cluster's root node URLs,
 * comma-separated) or NATS_URL; BERTH_PREFIX, NODE_TIMEOUT_MS, UNSUBSCRIBE_LINGER_MS.
 */
import { createRuntime, type Presence } from '../../src/index.js';
import { createNatsAdapter } from '../../src/nats.js';
import { createRedisAdapter } from '../../src/redis.js';

export type NodeRequest =
  | { id: number; op: 'sendToRoom'; name: string; data: string }
  | { id: number; op: 'burst'; name: string; data: string; count: number }
  | { id: number; op: 'sendToUser'; name: string; data: string }
  | { id: number; op: 'sendToAll'; data: string }
  | { id: number; op: 'presence'; method: keyof Presence; name?: string }
  | { id: number; op: 'health' }
  | { id: number; op: 'crossNode' }
  | { id: number; op: 'lost' }
  | { id: number; op: 'close' };

export type NodeReply = { id: number; result?: unknown; error?: string };
export type NodeHello = { ready: { port: number; nodeId: string } };

const timeout = process.env.NODE_TIMEOUT_MS;
const linger = process.env.UNSUBSCRIBE_LINGER_MS;
const options = {
  prefix: process.env.BERTH_PREFIX ?? 'berth',
  ...(timeout !== undefined && { nodeTimeoutMs: Number(timeout), heartbeatIntervalMs: Math.round(Number(timeout) / 5) }),
  ...(linger !== undefined && { unsubscribeLingerMs: Number(linger) }),
};
const nats = process.env.NATS_URL;
const cluster = process.env.REDIS_CLUSTER;
const runtime = createRuntime({
  port: 0,
  host: '127.0.0.1',
  adapter:
    nats !== undefined
      ? createNatsAdapter({ servers: nats, ...options })
      : createRedisAdapter({
          ...(cluster === undefined
            ? { url: process.env.REDIS_URL! }
            : { cluster: { rootNodes: cluster.split(',').map((url) => ({ url })) } }),
          ...options,
        }),
});
runtime.on('error', () => {}); // counted in metrics; the tests read health
const lost: Array<{ target: unknown; count: number | undefined; origin: string }> = [];
runtime.on('lost', (event) => void lost.push(event));
runtime.on('connection', (connection) => connection.send(`id ${connection.id}`));
runtime.on('message', async ({ connection, data }) => {
  const request = JSON.parse(String(data)) as { join?: string; leave?: string; user?: string };
  if (request.join !== undefined) await connection.join(request.join);
  if (request.leave !== undefined) await connection.leave(request.leave);
  if (request.user !== undefined) await connection.setUser(request.user);
  connection.send(`ok ${String(data)}`);
});

async function answer(request: NodeRequest): Promise<unknown> {
  switch (request.op) {
    case 'sendToRoom':
      return runtime.sendToRoom(request.name, request.data);
    case 'burst':
      // In one turn: `<data> 0` … `<data> <count - 1>`.
      for (let i = 0; i < request.count; i++) runtime.sendToRoom(request.name, `${request.data} ${i}`);
      return null;
    case 'sendToUser':
      return runtime.sendToUser(request.name, request.data);
    case 'sendToAll':
      return runtime.sendToAll(request.data);
    case 'presence': {
      const method = runtime.presence[request.method] as (name?: string) => Promise<unknown>;
      return method(request.name);
    }
    case 'health':
      return runtime.health();
    case 'crossNode':
      return runtime.metrics.snapshot().crossNode;
    case 'lost':
      return lost;
    case 'close':
      await runtime.close({ timeoutMs: 1000 });
      setImmediate(() => process.exit(0));
      return null;
  }
}

process.on('message', (request: NodeRequest) => {
  answer(request).then(
    (result) => process.send!({ id: request.id, result: result ?? null } satisfies NodeReply),
    (error: unknown) => process.send!({ id: request.id, error: String(error) } satisfies NodeReply),
  );
});
process.on('disconnect', () => process.exit(0));

await runtime.ready;
process.send!({ ready: { port: runtime.address()!.port, nodeId: runtime.nodeId } } satisfies NodeHello);
