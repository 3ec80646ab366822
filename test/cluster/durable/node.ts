/**
 * One berth node of the durable cluster tests, in its own process: a standalone
 * runtime on the Redis adapter with durable streams (BERTH_DURABLE=1), whose
 * `berth.v1` clients join rooms by request (`{"join":room}`, answered `ok`),
 * and a publisher the test starts over IPC: `rate` messages a second spread
 * over `rooms`, each `{"p":<node name>,"q":<seq of this room>}`.
 * Configured by environment: REDIS_URL or REDIS_CLUSTER (root node URLs,
 * comma-separated), BERTH_PREFIX, NODE_NAME, BERTH_DURABLE, RECOVERY_WINDOW_MS.
 */
import { createRuntime } from '../../../src/index.js';
import { createRedisAdapter } from '../../../src/redis.js';

export type DurableRequest =
  | { id: number; op: 'publish'; rooms: string[]; rate: number }
  /** Stops the publisher; answers how many messages it sent to each room. */
  | { id: number; op: 'stop' }
  /** Stops the publisher, then `runtime.close()`; answers what the publisher sent, then exits. */
  | { id: number; op: 'close'; timeoutMs: number }
  | { id: number; op: 'lost' };

export type DurableReply = { id: number; result?: unknown; error?: string };
export type DurableHello = { ready: { port: number; nodeId: string } };
/** Messages sent by a publisher, per room: seqs 0 … n-1. */
export type Sent = Record<string, number>;

const name = process.env.NODE_NAME ?? 'node';
const cluster = process.env.REDIS_CLUSTER;
const windowMs = process.env.RECOVERY_WINDOW_MS;
const adapterOptions = {
  ...(cluster === undefined ? { url: process.env.REDIS_URL! } : { cluster: { rootNodes: cluster.split(',').map((url) => ({ url })) } }),
  prefix: process.env.BERTH_PREFIX ?? 'berth',
  ...(process.env.BERTH_DURABLE === '1' && { durable: true }),
};

const runtime = createRuntime({
  port: 0,
  host: '127.0.0.1',
  adapter: createRedisAdapter(adapterOptions),
  ...(windowMs !== undefined && { recovery: { windowMs: Number(windowMs) } }),
});
runtime.on('error', () => {}); // counted in metrics
const lost: unknown[] = [];
runtime.on('lost', (event) => void lost.push(event));
runtime.onRequest(async ({ connection, data }) => {
  const request = JSON.parse(String(data)) as { join?: string };
  if (request.join !== undefined) await connection.join(request.join);
  return 'ok';
});

/** The publisher: a steady `rate` per second, caught up on every tick of a 10 ms timer. */
class Publisher {
  readonly sent: Sent = {};
  #timer: ReturnType<typeof setInterval> | undefined;
  #total = 0;
  #failure: string | undefined;

  start(rooms: string[], rate: number): void {
    for (const room of rooms) this.sent[room] = 0;
    const started = performance.now();
    this.#timer = setInterval(() => {
      const due = Math.floor(((performance.now() - started) * rate) / 1000);
      while (this.#total < due && this.#timer !== undefined) {
        const room = rooms[this.#total % rooms.length]!;
        const seq = this.sent[room]!;
        try {
          runtime.sendToRoom(room, JSON.stringify({ p: name, q: seq }));
        } catch (error) {
          this.#failure = String(error);
          this.stop();
          return;
        }
        this.sent[room] = seq + 1;
        this.#total++;
      }
    }, 10);
  }

  stop(): { sent: Sent; failure?: string } {
    clearInterval(this.#timer);
    this.#timer = undefined;
    return { sent: this.sent, ...(this.#failure !== undefined && { failure: this.#failure }) };
  }
}

const publisher = new Publisher();

async function answer(request: DurableRequest): Promise<unknown> {
  switch (request.op) {
    case 'publish':
      publisher.start(request.rooms, request.rate);
      return null;
    case 'stop':
      return publisher.stop();
    case 'close': {
      const sent = publisher.stop();
      await runtime.close({ timeoutMs: request.timeoutMs });
      setTimeout(() => process.exit(0), 50);
      return sent;
    }
    case 'lost':
      return lost;
  }
}

process.on('message', (request: DurableRequest) => {
  answer(request).then(
    (result) => process.send!({ id: request.id, result: result ?? null } satisfies DurableReply),
    (error: unknown) => process.send!({ id: request.id, error: String(error) } satisfies DurableReply),
  );
});
process.on('disconnect', () => process.exit(0));

await runtime.ready;
process.send!({ ready: { port: runtime.address()!.port, nodeId: runtime.nodeId } } satisfies DurableHello);
