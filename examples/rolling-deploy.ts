/**
 * A rolling deploy of three berth nodes behind a load balancer, with durable
 * streams on Redis: every node is closed (`runtime.close()`) and started
 * again in turn while each node publishes to a room and `berth/client`
 * clients receive, and what every client got is checked: every message of
 * every publisher, from its join on, once and in order.
 *
 *   REDIS_URL=redis://127.0.0.1:6379 npx tsx examples/rolling-deploy.ts
 *
 * The load balancer is a TCP proxy in this process that sends each new
 * connection to the next node in service; a node is taken out of service
 * before it is closed, as a balancer's health check would.
 */
import { fork, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { createClient } from '../src/client.js';
import { createRuntime } from '../src/index.js';
import { createRedisAdapter } from '../src/redis.js';

const SELF = fileURLToPath(import.meta.url);
const PUBLISH_EVERY_MS = 20;

export interface DeployReport {
  readonly clients: number;
  /** Messages every client should have had (from its join on), summed over clients. */
  readonly expected: number;
  readonly received: number;
  readonly lost: number;
  readonly duplicated: number;
  readonly outOfOrder: number;
  /** How each client's resumes went. */
  readonly resumes: { readonly recovered: number; readonly notRecovered: number };
}

interface NodeProcess {
  readonly name: string;
  readonly port: number;
  readonly child: ChildProcess;
  /** Stops its publisher and closes its runtime; resolves with the last number it published. */
  close(): Promise<number>;
  /** Stops its publisher; resolves with the last number it published. */
  stop(): Promise<number>;
}

/** Runs the deploy: `nodes` nodes, `clients` clients, every node restarted in turn, `settleMs` between restarts. */
export async function rollingDeploy(options: {
  redisUrl: string;
  nodes?: number;
  clients?: number;
  settleMs?: number;
}): Promise<DeployReport> {
  const { redisUrl, nodes: count = 3, clients: clientCount = 12, settleMs = 1500 } = options;
  const prefix = `deploy${process.pid}${Date.now().toString(36)}`;
  let generation = 0;
  const start = (slot: number) => startNode(`n${slot}g${++generation}`, redisUrl, prefix);
  const inService: NodeProcess[] = [];
  for (let slot = 0; slot < count; slot++) inService.push(await start(slot));
  const balancer = await startBalancer(() => inService);
  const lastSent = new Map<string, number>();
  const clients = await Promise.all(Array.from({ length: clientCount }, () => receiver(balancer.url)));
  await pause(settleMs);
  for (let slot = 0; slot < count; slot++) {
    const [old] = inService.splice(slot, 1);
    lastSent.set(old!.name, await old!.close());
    inService.splice(slot, 0, await start(slot));
    await pause(settleMs);
  }
  // The last nodes stop publishing, and what they sent has time to arrive, before anything is counted.
  for (const node of inService) lastSent.set(node.name, await node.stop());
  await pause(1000);
  // The nodes started after every client had joined: each client owes all of their messages, from the first.
  const late = new Set([...lastSent.keys()].filter((name) => Number(name.slice(name.indexOf('g') + 1)) > count));
  const result = report(clients, lastSent, late);
  for (const client of clients) client.close();
  await Promise.all(inService.map((node) => node.close()));
  balancer.close();
  return result;
}

interface Receiver {
  /** By publisher: the numbers received, in order. */
  readonly got: Map<string, number[]>;
  readonly resumes: boolean[];
  close(): void;
}

/** A client that joins the room once and trusts resume for the rest. */
async function receiver(url: string): Promise<Receiver> {
  const client = createClient(url, { WebSocket: WebSocket as never });
  const got = new Map<string, number[]>();
  const resumes: boolean[] = [];
  client.on('message', ({ stream, data }) => {
    if (stream !== 'room:deploy') return;
    const [publisher, n] = String(data).split(':') as [string, string];
    const numbers = got.get(publisher) ?? [];
    numbers.push(Number(n));
    got.set(publisher, numbers);
  });
  client.on('resumed', ({ recovered }) => void resumes.push(recovered));
  await new Promise<void>((resolve) => client.on('welcome', () => resolve()));
  await client.request('join');
  return { got, resumes, close: () => client.close() };
}

function report(clients: readonly Receiver[], lastSent: ReadonlyMap<string, number>, late: ReadonlySet<string>): DeployReport {
  let expected = 0;
  let received = 0;
  let lost = 0;
  let duplicated = 0;
  let outOfOrder = 0;
  for (const { got } of clients) {
    for (const [publisher, last] of lastSent) {
      const numbers = got.get(publisher) ?? [];
      // From the first it got (it joined after the publisher began) to the last sent; all of a late publisher's.
      const first = late.has(publisher) ? 1 : (numbers[0] ?? last + 1);
      expected += last - first + 1;
      received += numbers.length;
      duplicated += numbers.length - new Set(numbers).size;
      outOfOrder += numbers.filter((n, i) => i > 0 && n <= numbers[i - 1]!).length;
      lost += last - first + 1 - new Set(numbers).size;
    }
  }
  const all = clients.flatMap((client) => client.resumes);
  return {
    clients: clients.length,
    expected,
    received,
    lost,
    duplicated,
    outOfOrder,
    resumes: { recovered: all.filter(Boolean).length, notRecovered: all.filter((r) => !r).length },
  };
}

/** A node in its own process. */
async function startNode(name: string, redisUrl: string, prefix: string): Promise<NodeProcess> {
  const child = fork(SELF, [], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, DEPLOY_NODE: name, REDIS_URL: redisUrl, DEPLOY_PREFIX: prefix },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (message: { port: number }) => resolve(message.port));
    child.once('exit', (code) => reject(new Error(`node ${name} exited with ${code}`)));
  });
  return {
    name,
    port,
    child,
    close: () => ask(child, 'close'),
    stop: () => ask(child, 'stop'),
  };
}

function ask(child: ChildProcess, what: 'stop' | 'close'): Promise<number> {
  return new Promise<number>((resolve) => {
    child.once('message', (message: { last: number }) => resolve(message.last));
    child.send(what);
  });
}

/** Round robin over the nodes in service; a connection to a node taken out of service ends with it. */
async function startBalancer(nodes: () => readonly NodeProcess[]): Promise<{ url: string; close(): void }> {
  let next = 0;
  const server = net.createServer((socket) => {
    const list = nodes();
    const target = list[next++ % list.length]!;
    const upstream = net.connect(target.port, '127.0.0.1');
    socket.pipe(upstream).pipe(socket);
    const end = () => {
      socket.destroy();
      upstream.destroy();
    };
    socket.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `ws://127.0.0.1:${(server.address() as net.AddressInfo).port}`, close: () => server.close() };
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The node process: a runtime on durable streams that publishes `<name>:<n>` to the room every 20 ms. */
async function runNode(name: string): Promise<void> {
  const runtime = createRuntime({
    port: 0,
    host: '127.0.0.1',
    recovery: { windowMs: 60_000 },
    adapter: createRedisAdapter({ url: process.env.REDIS_URL!, prefix: process.env.DEPLOY_PREFIX!, durable: true }),
  });
  runtime.on('error', ({ error }) => console.error(`${name}: ${error.code}: ${error.message}`));
  runtime.onRequest(async ({ connection }) => {
    await connection.join('deploy');
    return 'joined';
  });
  await runtime.ready;
  let n = 0;
  const publisher = setInterval(() => runtime.sendToRoom('deploy', `${name}:${++n}`), PUBLISH_EVERY_MS);
  process.on('message', async (what: 'stop' | 'close') => {
    clearInterval(publisher);
    if (what === 'stop') return void process.send!({ last: n });
    await runtime.close();
    process.send!({ last: n }, () => process.exit(0));
  });
  process.send!({ port: runtime.address()!.port });
}

if (process.env.DEPLOY_NODE !== undefined) await runNode(process.env.DEPLOY_NODE);
else if (process.argv[1] === SELF) {
  const result = await rollingDeploy({ redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' });
  console.log(JSON.stringify(result, null, 2));
  process.exit(result.lost === 0 && result.duplicated === 0 ? 0 : 1);
}
