/**
 * WebSocket clients in a child process, driven by the load tests over IPC
 * (`protocol.ts`): a process may hold 20 000 file descriptors, so 10 000
 * clients cannot live in the process of the server they talk to. Started by
 * `harness.ts`; never imported.
 */
import { crc32 } from 'node:zlib';
import WebSocket from 'ws';
import { CHILD_FLAG, END, sourceAddress, type ClientReport, type Command, type Reply, type Request, type Response } from './protocol.js';

interface Client extends Mutable<ClientReport> {
  ws: WebSocket;
  last: number;
  paused: boolean;
  onDone: (() => void) | undefined;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

const clients: Client[] = [];
let keepText = false;
let checksum = false;
let onProgress: (() => void) | undefined;

function rawSocket(ws: WebSocket): { pause(): void; resume(): void } {
  return (ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
}

function done(client: Client): boolean {
  return client.ended || client.closeCode !== null;
}

function progressed(client: Client): void {
  if (!done(client)) return;
  const onDone = client.onDone;
  client.onDone = undefined;
  onDone?.();
  onProgress?.();
}

function track(ws: WebSocket, index: number, slow: boolean): Client {
  const client: Client = {
    index,
    slow,
    ws,
    seqs: [],
    violations: 0,
    lengths: [],
    checksums: [],
    texts: [],
    ended: false,
    closeCode: null,
    closeReason: '',
    last: -1,
    paused: false,
    onDone: undefined,
  };
  const record = (seq: number) => {
    // Out of order, a duplicate, not a number, or anything after END.
    if (!(seq > client.last) || client.ended) client.violations++;
    client.last = seq;
    client.seqs.push(seq);
  };
  ws.on('message', (data: Buffer, binary: boolean) => {
    if (binary) {
      record(data.length >= 4 ? data.readUInt32BE(0) : -1);
      client.lengths.push(data.length);
      if (checksum) client.checksums.push(crc32(data));
      return;
    }
    const text = data.toString('utf8');
    if (text === END) {
      client.ended = true;
      progressed(client);
      return;
    }
    const bar = text.indexOf('|');
    record(Number(bar === -1 ? text : text.slice(0, bar)));
    if (keepText) client.texts.push(text);
  });
  ws.on('close', (code: number, reason: Buffer) => {
    client.closeCode = code;
    client.closeReason = reason.toString('utf8');
    progressed(client);
  });
  return client;
}

function report({ ws: _ws, last: _last, paused: _paused, onDone: _onDone, ...rest }: Client): ClientReport {
  return rest;
}

/** Runs `work(i)` for i in [0, count), `concurrency` at a time. */
async function pool(count: number, concurrency: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) await work(next++);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, count)) }, worker));
}

function opened(ws: WebSocket): Promise<void> {
  return new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
    ws.once('unexpected-response', (_request, response) => reject(new Error(`upgrade refused with ${response.statusCode}`)));
  });
}

async function open(command: Extract<Command, { type: 'open' }>): Promise<Reply> {
  keepText = command.keepText ?? false;
  checksum = command.checksum ?? false;
  const failures: string[] = [];
  const slowFrom = command.count - (command.slow ?? 0);
  await pool(command.count, command.concurrency, async (index) => {
    const slow = index >= slowFrom;
    const ws = new WebSocket(`${command.url}?i=${index}${slow ? '&slow=1' : ''}`, {
      perMessageDeflate: false,
      localAddress: sourceAddress(index),
    });
    const client = track(ws, index, slow);
    try {
      await opened(ws);
    } catch (error) {
      failures.push(`${index}: ${(error as Error).message}`);
      return;
    }
    ws.on('error', () => {}); // the close event reports it
    if (slow || command.paused) {
      rawSocket(ws).pause();
      client.paused = true;
    }
    clients[index] = client;
  });
  return { type: 'opened', opened: clients.filter(Boolean).length, failures };
}

async function resume(concurrency = Infinity): Promise<Reply> {
  const paused = clients.filter((client) => client?.paused);
  await pool(paused.length, concurrency, async (i) => {
    const client = paused[i]!;
    const finished = new Promise<void>((resolve) => (client.onDone = resolve));
    client.paused = false;
    rawSocket(client.ws).resume();
    // With unbounded concurrency everybody reads at once; otherwise a slot frees when its connection is done.
    if (concurrency !== Infinity && !done(client)) await finished;
  });
  return { type: 'resumed', resumed: paused.length };
}

function reportAll(waitMs: number): Promise<Reply> {
  const live = () => clients.filter(Boolean);
  const complete = () => live().every((client) => client.paused || done(client));
  return new Promise((resolve) => {
    const finish = () => {
      clearTimeout(timer);
      onProgress = undefined;
      resolve({ type: 'report', complete: complete(), clients: live().map(report) });
    };
    const timer = setTimeout(finish, waitMs);
    onProgress = () => {
      if (complete()) finish();
    };
    onProgress();
  });
}

async function closeAll(): Promise<Reply> {
  await Promise.all(
    clients.filter(Boolean).map((client) => {
      if (client.closeCode !== null) return undefined;
      rawSocket(client.ws).resume();
      const closed = new Promise((resolve) => client.ws.once('close', resolve));
      client.ws.close(1000);
      return closed;
    }),
  );
  return { type: 'closed' };
}

async function churn(command: Extract<Command, { type: 'churn' }>): Promise<Reply> {
  const failures: string[] = [];
  let failureCount = 0;
  let completed = 0;
  await pool(command.cycles, command.concurrency, async (index) => {
    const ws = new WebSocket(`${command.url}?i=${index}`, { perMessageDeflate: false, localAddress: sourceAddress(index) });
    const hello = `hello:${index}`;
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('cycle timed out')), command.cycleTimeoutMs);
        let greeted = false;
        ws.on('message', (data: Buffer) => {
          if (!greeted) {
            greeted = true;
            ws.send(hello);
          } else if (data.toString('utf8') === hello) {
            ws.close(1000);
          }
        });
        ws.once('close', (code) => {
          clearTimeout(timer);
          if (code === 1000) resolve();
          else reject(new Error(`closed with ${code}`));
        });
        ws.once('error', reject);
        ws.once('unexpected-response', (_request, response) => reject(new Error(`upgrade refused with ${response.statusCode}`)));
      });
      completed++;
    } catch (error) {
      ws.terminate();
      if (failureCount++ < 10) failures.push(`${index}: ${(error as Error).message}`);
    }
  });
  return { type: 'churned', completed, failureCount, failures };
}

function handle(command: Command): Promise<Reply> {
  switch (command.type) {
    case 'open':
      return open(command);
    case 'resume':
      return resume(command.concurrency);
    case 'report':
      return reportAll(command.waitMs);
    case 'close':
      return closeAll();
    case 'churn':
      return churn(command);
  }
}

if (process.send === undefined || !process.argv.includes(CHILD_FLAG)) {
  throw new Error('test/load/clients.ts runs only as the child process harness.ts forks');
}
process.on('message', (request: Request) => {
  handle(request).then(
    (reply) => process.send!({ ...reply, id: request.id } satisfies Response),
    (error: unknown) => process.send!({ type: 'failed', message: String(error), id: request.id } satisfies Response),
  );
});
// The test process is gone (or killed us): nothing left to do.
process.on('disconnect', () => process.exit(0));
