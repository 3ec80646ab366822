/**
 * Server CPU per accepted connection, over real sockets, when 100 and when
 * 10 000 connections are already open: berth against a plain `ws` server.
 * The server runs in a child process (it reports its own CPU time); this
 * process holds the clients.
 *
 *   npx tsc -p tsconfig.bench.json && node dist-bench/bench/connect-cost.js [--sizes 100,10000] [--batch 200] [--batches 5]
 *
 * Prints the median server CPU microseconds per connect and per close.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { WebSocket, WebSocketServer } from 'ws';
import { createRuntime } from '../src/index.js';

type System = 'berth' | 'ws';
type Reply = { port: number } | { cpu: number; connections: number };

const args = process.argv.slice(2);
const option = (name: string, fallback: string) => {
  const index = args.indexOf(`--${name}`);
  return index === -1 ? fallback : args[index + 1]!;
};

if (args[0] === '--server') await serve(args[1] as System);
else await main();

/** The server side: listen, then answer CPU queries over IPC. */
async function serve(system: System): Promise<void> {
  let count: () => number;
  let port: number;
  if (system === 'berth') {
    const runtime = createRuntime({ port: 0, host: '127.0.0.1' });
    runtime.on('connection', (connection) => void connection.join('lobby'));
    await runtime.ready;
    port = runtime.address()!.port;
    count = () => runtime.health().connections.current;
  } else {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false });
    await new Promise((resolve) => wss.once('listening', resolve));
    port = (wss.address() as { port: number }).port;
    count = () => wss.clients.size;
  }
  process.on('message', () => {
    const { user, system: sys } = process.cpuUsage();
    process.send!({ cpu: user + sys, connections: count() } satisfies Reply);
  });
  process.send!({ port } satisfies Reply);
}

function ask(child: ChildProcess): Promise<Reply> {
  return new Promise((resolve) => {
    child.once('message', (reply) => resolve(reply as Reply));
    child.send('cpu');
  });
}

async function open(url: string, count: number, concurrency = 100): Promise<WebSocket[]> {
  const sockets: WebSocket[] = [];
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next++;
      const ws = new WebSocket(url, { perMessageDeflate: false });
      await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
      sockets.push(ws);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return sockets;
}

async function closeAll(sockets: WebSocket[]): Promise<void> {
  await Promise.all(sockets.map((ws) => new Promise((resolve) => ws.once('close', resolve).close())));
}

/** Waits until the server counts `expected` connections, so its CPU for them is spent. */
async function settle(child: ChildProcess, expected: number): Promise<number> {
  for (;;) {
    const reply = (await ask(child)) as { cpu: number; connections: number };
    if (reply.connections === expected) return reply.cpu;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function measure(system: System, sizes: number[], batch: number, batches: number): Promise<string> {
  const self = fileURLToPath(import.meta.url);
  // Compiled (dist-bench) the server runs as plain JavaScript, as an application would; tsx would add a `name` to every closure.
  const execArgv = self.endsWith('.js') ? [] : ['--import', 'tsx'];
  const child = fork(self, ['--server', system], { execArgv, stdio: 'inherit' });
  const { port } = (await new Promise((resolve) => child.once('message', resolve))) as { port: number };
  const url = `ws://127.0.0.1:${port}/`;
  // Warm the server's JIT, so the first size is not charged for compiling.
  for (let round = 0; round < 10; round++) await closeAll(await open(url, 200));
  const held: WebSocket[] = [];
  const cells: string[] = [];
  for (const size of sizes) {
    held.push(...(await open(url, size - held.length)));
    await settle(child, held.length);
    const connects: number[] = [];
    const closes: number[] = [];
    for (let b = 0; b < batches; b++) {
      const before = await settle(child, held.length);
      const extra = await open(url, batch);
      const opened = await settle(child, held.length + batch);
      await closeAll(extra);
      const closed = await settle(child, held.length);
      connects.push((opened - before) / batch);
      closes.push((closed - opened) / batch);
    }
    cells.push(`at ${size}: connect ${median(connects).toFixed(0)} µs, close ${median(closes).toFixed(0)} µs`);
  }
  await closeAll(held);
  child.kill();
  return `${system.padEnd(5)} | ${cells.join(' | ')}`;
}

async function main(): Promise<void> {
  const sizes = option('sizes', '100,10000').split(',').map(Number);
  const batch = Number(option('batch', '200'));
  const batches = Number(option('batches', '5'));
  console.log(`server CPU per connection (median of ${batches} batches of ${batch}), real sockets on loopback`);
  // Alternate the systems so machine noise hits both alike.
  for (const system of ['berth', 'ws', 'berth', 'ws'] as System[]) console.log(await measure(system, sizes, batch, batches));
}
