/**
 * Durable streams on a real Redis of the test's own, with runtimes in this
 * process (the multi-process tests are in test/cluster/durable/): one
 * numbering per stream for the whole cluster, sessions that resume on another
 * node, gaps healed from the history or told, and tokens kept secret.
 */
import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { createRuntime, type Connection, type Runtime } from '../../src/index.js';
import { createClient, type BerthClient } from '../../src/client.js';
import { createNatsAdapter } from '../../src/nats.js';
import { createRedisAdapter } from '../../src/redis.js';
import { eventually } from '../../src/testing/wait.js';
import { redisWithAdmin } from '../helpers/redis.js';
import { terminate } from '../helpers/runtime.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';
import { v1 } from '../helpers/v1.js';

const own = redisWithAdmin();
const runtimes = new Set<Runtime>();
const clients = new Set<BerthClient>();
let prefixes = 0;

afterEach(async () => {
  for (const client of clients) client.close();
  clients.clear();
  await Promise.all([...runtimes].map((runtime) => runtime.close({ timeoutMs: 1000 })));
  runtimes.clear();
});

interface Node {
  readonly runtime: Runtime;
  readonly url: string;
  readonly connections: Connection[];
  readonly lost: unknown[];
}

/** A node on the test's Redis with durable streams; a client's `{"join":room}` joins it. */
async function node(prefix: string, durable: object = { positionCheckMs: 100 }, inspected?: unknown[], maxSessions = 100): Promise<Node> {
  const runtime = createRuntime({
    port: 0,
    host: '127.0.0.1',
    recovery: { windowMs: 30_000, maxSessions },
    // `?user=<name>` binds the connection to that user; without it, none.
    authenticate: (request) => ({ user: new URL(request.url ?? '/', 'http://x').searchParams.get('user') ?? undefined }),
    adapter: createRedisAdapter({ url: own.redis.url, prefix, durable }),
    ...(inspected && { inspect: (event: unknown) => void inspected.push(event) }),
  });
  runtimes.add(runtime);
  const connections: Connection[] = [];
  const lost: unknown[] = [];
  runtime.on('error', () => {});
  runtime.on('lost', (event) => void lost.push(event));
  runtime.on('connection', (connection) => void connections.push(connection));
  runtime.on('message', ({ connection, data }) => {
    const request = JSON.parse(String(data)) as { join?: string };
    if (request.join !== undefined) void connection.join(request.join);
  });
  await runtime.ready;
  return { runtime, url: `ws://127.0.0.1:${runtime.address()!.port}`, connections, lost };
}

/** A berth/client client whose every (re)connection goes to `at.url`. */
function client(at: { url: string }) {
  const Socket = class extends WebSocket {
    constructor(_url: string, protocols: string[]) {
      super(at.url, protocols);
    }
  };
  const berth = createClient('ws://unused', { WebSocket: Socket as never, backoff: { initialMs: 20, maxMs: 100 } });
  clients.add(berth);
  const messages: Array<{ stream: string; offset: number; data: string }> = [];
  const events: Array<{ type: string; event: unknown }> = [];
  berth.on('message', ({ stream, offset, data }) => void messages.push({ stream, offset, data: String(data) }));
  for (const type of ['resumed', 'lost', 'welcome'] as const) berth.on(type, (event) => void events.push({ type, event }));
  const welcomed = new Promise<void>((resolve) => berth.on('welcome', () => resolve()));
  return { berth, messages, events, welcomed };
}

/** The data of `stream`'s messages, with a check that their offsets follow one another. */
function contiguous(messages: ReadonlyArray<{ stream: string; offset: number; data: string }>, stream: string): string[] {
  const of = messages.filter((message) => message.stream === stream);
  of.forEach((message, i) => {
    if (i > 0) expect(message.offset, `offset after ${of[i - 1]!.offset}`).toBe(of[i - 1]!.offset + 1);
  });
  return of.map((message) => message.data);
}

const prefix = () => `durable${process.pid}n${++prefixes}`;

describe('durable streams across nodes (Redis)', () => {
  it('a client moved to another node resumes there: rooms back, every message of every node once, in order', async () => {
    const p = prefix();
    const [a, b] = [await node(p), await node(p)];
    const at = { url: a.url };
    const c = client(at);
    await c.welcomed;
    c.berth.send(JSON.stringify({ join: 'r' }));
    await eventually(() => a.runtime.snapshot().rooms.r?.length === 1, 'joined on A');
    const sent: string[] = [];
    for (let i = 1; i <= 30; i++) {
      a.runtime.sendToRoom('r', `a${i}`);
      b.runtime.sendToRoom('r', `b${i}`);
      sent.push(`a${i}`, `b${i}`);
      if (i === 10) {
        at.url = b.url;
        terminate(a.connections[0]!);
      }
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    a.connections[0]!.send('direct, before the move');
    await eventually(() => c.messages.filter((m) => m.stream === 'room:r').length >= 60, 'every message', 10_000);
    const resumed = c.events.filter((e) => e.type === 'resumed').map((e) => e.event);
    expect(resumed).toEqual([{ recovered: true, lost: [], reason: undefined }]);
    const got = contiguous(c.messages, 'room:r');
    expect([...got].sort()).toEqual([...sent].sort());
    expect(got.filter((data) => data.startsWith('a'))).toEqual(sent.filter((data) => data.startsWith('a')));
    expect(b.runtime.snapshot().rooms.r).toHaveLength(1);
  });

  it('a direct send to a connection survives its node: replayed from the engine on the next node', async () => {
    const p = prefix();
    const [a, b] = [await node(p), await node(p)];
    const at = { url: a.url };
    const c = client(at);
    await c.welcomed;
    await eventually(() => a.connections.length === 1, 'connected');
    for (let i = 1; i <= 5; i++) a.connections[0]!.send(`d${i}`);
    await eventually(() => c.messages.length === 5, 'five direct messages');
    // Sent as the socket is cut: in the engine, not on the wire.
    at.url = b.url;
    terminate(a.connections[0]!);
    for (let i = 6; i <= 8; i++) a.connections[0]!.send(`d${i}`);
    await eventually(() => c.events.some((e) => e.type === 'resumed'), 'resumed');
    await eventually(() => c.messages.length >= 8, 'eight direct messages');
    const stream = c.messages[0]!.stream;
    expect(contiguous(c.messages, stream)).toEqual(['d1', 'd2', 'd3', 'd4', 'd5', 'd6', 'd7', 'd8']);
  });

  it('a node whose subscriber was dropped heals the gap from the history: nothing lost, nothing twice', async () => {
    const p = prefix();
    const [a, b] = [await node(p), await node(p)];
    const c = client({ url: b.url });
    await c.welcomed;
    c.berth.send(JSON.stringify({ join: 'g' }));
    await eventually(() => b.runtime.snapshot().rooms.g?.length === 1, 'joined on B');
    for (let i = 1; i <= 40; i++) {
      a.runtime.sendToRoom('g', `m${i}`);
      if (i === 15) await own.admin.sendCommand(['CLIENT', 'KILL', 'TYPE', 'pubsub']);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    await eventually(() => c.messages.length >= 40, 'every message', 10_000);
    expect(contiguous(c.messages, 'room:g')).toEqual(Array.from({ length: 40 }, (_, i) => `m${i + 1}`));
    expect(c.events.filter((e) => e.type === 'lost')).toEqual([]);
    expect(b.lost).toEqual([]);
  });

  it('what the history no longer holds is told to the client and counted, never skipped silently', async () => {
    const p = prefix();
    // Each publisher trims the history as it appends: one message is kept.
    const a = await node(p, { positionCheckMs: 100, maxMessages: 1 });
    const b = await node(p, { positionCheckMs: 100, maxMessages: 1 });
    const c = client({ url: b.url });
    await c.welcomed;
    c.berth.send(JSON.stringify({ join: 't' }));
    await eventually(() => b.runtime.snapshot().rooms.t?.length === 1, 'joined on B');
    a.runtime.sendToRoom('t', 'before');
    await eventually(() => c.messages.length === 1, 'the first message');
    // B's subscriber is dropped as 300 messages pass; the history keeps the last one only. Whether B is
    // back before some of them is a race: bursts go on until one left B a gap (at most five).
    let sent = 1;
    for (let burst = 1; burst <= 5 && b.lost.length === 0; burst++) {
      await own.admin.sendCommand(['CLIENT', 'KILL', 'TYPE', 'pubsub']);
      for (let i = 1; i <= 300; i++) a.runtime.sendToRoom('t', `b${burst}m${i}`);
      sent += 300;
      await eventually(() => c.messages.at(-1)?.data === `b${burst}m300`, 'the burst’s last message', 10_000);
    }
    const lost = c.events.filter((e) => e.type === 'lost').map((e) => e.event);
    const received = c.messages.filter((m) => m.stream === 'room:t');
    expect(lost).toEqual([{ stream: 'room:t', reason: 'trimmed' }]);
    expect(b.lost).toEqual([expect.objectContaining({ target: { kind: 'room', room: 't' }, reason: 'trimmed' })]);
    const told = (b.lost[0] as { count: number }).count;
    expect(told).toBeGreaterThan(0);
    expect(received.length + told).toBe(sent);
    // Its offsets go on from where the `lost` said the stream stood: every gap is explained.
    const offsets = received.map((m) => m.offset);
    const jumps = offsets.slice(1).filter((offset, i) => offset !== offsets[i]! + 1);
    expect(jumps).toHaveLength(1);
  });

  it('a raw client on another node gets every message published after its join resolved, from a stream’s first', async () => {
    const p = prefix();
    const [a, b] = [await node(p), await node(p)];
    let joined = false;
    b.runtime.on('connection', (connection) => void connection.join('fresh').then(() => (joined = true)));
    const got: string[] = [];
    const raw = new WebSocket(b.url);
    raw.on('message', (data) => void got.push(String(data)));
    await eventually(() => joined, 'joined on B');
    for (let i = 0; i < 15; i++) a.runtime.sendToRoom('fresh', `m${i}`);
    await eventually(() => got.length >= 15, 'fifteen messages');
    expect(got).toEqual(Array.from({ length: 15 }, (_, i) => `m${i}`));
    raw.terminate();
  });

  it('a token is never in Redis, an actor context, a snapshot or an inspector event: only its hash is', async () => {
    const p = prefix();
    const inspected: unknown[] = [];
    const [a, b] = [await node(p, undefined, inspected), await node(p)];
    const at = { url: a.url };
    const c = client(at);
    const tokens: string[] = [];
    const raw = new WebSocket(a.url, ['berth.v1']);
    raw.on('message', (data) => {
      const message = JSON.parse(String(data)) as { t: string; session?: string };
      if (message.t === 'welcome' && message.session !== undefined) tokens.push(message.session);
    });
    await c.welcomed;
    await eventually(() => tokens.length === 1 && a.connections.length === 2, 'two connections');
    c.berth.send(JSON.stringify({ join: 'secret' }));
    await eventually(() => a.runtime.snapshot().rooms.secret?.length === 1, 'joined');
    at.url = b.url;
    terminate(a.connections[0]!);
    await eventually(() => c.events.some((e) => e.type === 'resumed'), 'resumed');
    raw.terminate();
    await eventually(() => a.connections.every((connection) => connection.state === 'closed'), 'both closed on A');
    const dump: string[] = [JSON.stringify(inspected), JSON.stringify(a.runtime.snapshot())];
    for (const key of (await own.admin.keys(`${p}:*`)) as string[]) {
      dump.push(key);
      if ((await own.admin.type(key)) === 'hash') dump.push(JSON.stringify(await own.admin.hGetAll(key)));
    }
    expect(dump.join('\n')).toContain(`{s:`);
    for (const token of tokens) expect(dump.join('\n')).not.toContain(token);
  });

  it('recovery.maxSessions bounds the sessions a node keeps in the engine: past it, a dropped connection’s is not kept', async () => {
    const p = prefix();
    const [a, b] = [await node(p, undefined, undefined, 1), await node(p)];
    const at = { url: a.url };
    const first = client(at);
    const second = client(at);
    await Promise.all([first.welcomed, second.welcomed]);
    await eventually(() => a.connections.length === 2, 'both connected');
    at.url = b.url;
    for (const connection of a.connections) terminate(connection);
    await eventually(() => [first, second].every((c) => c.events.some((e) => e.type === 'resumed')), 'both answered');
    const outcomes = [first, second].map((c) => (c.events.find((e) => e.type === 'resumed')!.event as { recovered: boolean }).recovered);
    expect(outcomes.sort()).toEqual([false, true]);
    expect(a.runtime.metrics.snapshot().sessions).toMatchObject({ overflow: 1 });
  });

  it('a token is claimed once, cluster-wide: another user’s try on another node does not burn it', async () => {
    const p = prefix();
    const [a, b] = [await node(p), await node(p)];
    const owner = await v1(`${a.url}/?user=ada`);
    const { session } = (await owner.until((m) => m.t === 'welcome', 'welcome')) as { session: string };
    await eventually(() => a.connections.length === 1, 'connected');
    terminate(a.connections[0]!);
    await eventually(() => a.connections[0]!.state === 'closed', 'closed on A');
    const stranger = await v1(`${b.url}/?user=eve`);
    await stranger.until((m) => m.t === 'welcome', 'welcome');
    stranger.ws.send(JSON.stringify({ t: 'resume', token: session, positions: {} }));
    expect(await stranger.until((m) => m.t === 'resumed', 'the stranger’s answer')).toMatchObject({
      recovered: false,
      reason: 'unknown-session',
    });
    const back = await v1(`${b.url}/?user=ada`);
    await back.until((m) => m.t === 'welcome', 'welcome');
    back.ws.send(JSON.stringify({ t: 'resume', token: session, positions: {} }));
    expect(await back.until((m) => m.t === 'resumed', 'the owner’s answer')).toMatchObject({ recovered: true });
    const again = await v1(`${b.url}/?user=ada`);
    await again.until((m) => m.t === 'welcome', 'welcome');
    again.ws.send(JSON.stringify({ t: 'resume', token: session, positions: {} }));
    expect(await again.until((m) => m.t === 'resumed', 'a second claim')).toMatchObject({ recovered: false, reason: 'unknown-session' });
  });

  it('a resume on another node takes over a connection still half-open on the first: closed there with 4002, recovered here', async () => {
    const p = prefix();
    const [a, b] = [await node(p), await node(p)];
    const proxy = await startTcpProxy(a.runtime.address()!.port);
    const c = client({ url: proxy.url() });
    await c.welcomed;
    c.berth.send(JSON.stringify({ join: 'h' }));
    await eventually(() => a.runtime.snapshot().rooms.h?.length === 1, 'joined on A');
    a.runtime.sendToRoom('h', 'one');
    await eventually(() => c.messages.length === 1, 'the first message');
    const closed = new Promise<number>((resolve) => a.runtime.on('close', ({ code }) => resolve(code)));
    proxy.retarget(b.runtime.address()!.port);
    // The client's side goes; A's socket stays open and silent.
    proxy.cut('half-open');
    a.runtime.sendToRoom('h', 'two');
    expect(await closed).toBe(4002);
    await eventually(() => c.events.some((e) => e.type === 'resumed'), 'resumed on B');
    expect(c.events.find((e) => e.type === 'resumed')!.event).toMatchObject({ recovered: true });
    await eventually(() => c.messages.length === 2, 'the second message');
    expect(contiguous(c.messages, 'room:h')).toEqual(['one', 'two']);
  });

  it('NATS refuses durable streams, saying which adapter keeps them', () => {
    expect(() => createNatsAdapter({ servers: 'nats://127.0.0.1:4222', durable: true } as never)).toThrow(
      /createRedisAdapter\(\{ durable: true \}\)/,
    );
  });
});
