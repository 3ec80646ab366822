/**
 * What a client written from docs/protocol.md alone relies on when it resumes: a replay of any size
 * recovers, paced by the outbox; `skip` where live delivery gave one; exactly the replay between
 * `welcome` and `resumed`; a half-open old socket taken over at once.
 */
import { describe, expect, it } from 'vitest';
import { createMemoryHistory, type Connection, type Runtime, type RuntimeOptions } from '../../src/index.js';
import { eventually } from '../helpers/client.js';
import { startRuntime, terminate, track } from '../helpers/runtime.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';
import { v1, type V1Client } from '../helpers/v1.js';

type Message = Record<string, unknown>;
type V1 = V1Client;

/** Sends `resume`, as a client's first message after its `welcome`. */
function resume(client: V1, token: unknown, positions?: Record<string, { o: number; e: string }>): void {
  client.ws.send(JSON.stringify({ t: 'resume', token, ...(positions && { positions }) }));
}

/** A client that comes back: it offers `berth.resume` beside `berth.v1`. */
const returning = (url: string) => v1(url, ['berth.v1', 'berth.resume']);

/** The client's last position of each stream it got a message of. */
function positions(client: V1): Record<string, { o: number; e: string }> {
  const out: Record<string, { o: number; e: string }> = {};
  for (const m of client.received) if (m.t === 'msg' || m.t === 'skip') out[m.s as string] = { o: m.o as number, e: m.e as string };
  return out;
}

/** What came between `welcome` and `resumed`, and after `resumed`. */
function phases(client: V1): { replay: Message[]; live: Message[] } {
  const start = client.received.findIndex((m) => m.t === 'welcome');
  const end = client.received.findIndex((m) => m.t === 'resumed');
  return { replay: client.received.slice(start + 1, end), live: client.received.slice(end + 1) };
}

/** A runtime whose first berth.v1 client joined `rooms` and dropped, leaving its session kept. */
async function dropped(rooms: string[], options: RuntimeOptions = {}) {
  const { runtime, url, port } = await startRuntime(options);
  const connections = track(runtime);
  // The first connection is a fresh one: it resumes nothing, so nothing of it waits for a resume.
  const first = await v1(url);
  const welcome = await first.until((m) => m.t === 'welcome', 'welcome');
  for (const room of rooms) await connections[0]!.join(room);
  await first.until((m) => m.t === 'joined' && m.s === `room:${rooms.at(-1)}`, 'joined');
  return { runtime, url, port, connections, first, session: welcome.session as string };
}

async function drop(runtime: Runtime, connection: Connection): Promise<void> {
  const before = runtime.metrics.snapshot().sessions.detached ?? 0;
  terminate(connection);
  await eventually(() => (runtime.metrics.snapshot().sessions.detached ?? 0) === before + 1, 'the session kept');
}

describe('resume: a replay larger than the outbox', () => {
  it('700 missed in each of two rooms, default outbox: everything replayed, then resumed', async () => {
    const { runtime, url, connections, first, session } = await dropped(['a', 'b']);
    const seen = positions(first);
    await drop(runtime, connections[0]!);
    for (let i = 1; i <= 700; i++) {
      runtime.sendToRoom('a', `a${i}`);
      runtime.sendToRoom('b', `b${i}`);
    }
    const second = await returning(url);
    resume(second, session, seen);
    const resumed = await second.until((m) => m.t === 'resumed', 'resumed', 10_000);
    expect(resumed).toMatchObject({ recovered: true, replayed: 1400 });
    const { replay } = phases(second);
    expect(replay.filter((m) => m.s === 'room:a').map((m) => m.d)).toEqual(Array.from({ length: 700 }, (_, i) => `a${i + 1}`));
    expect(replay.filter((m) => m.s === 'room:b').map((m) => m.d)).toEqual(Array.from({ length: 700 }, (_, i) => `b${i + 1}`));
    expect(connections[1]!.state).toBe('open');
  });

  for (const times of [1, 3, 10]) {
    it(`${times} × the outbox bound, with a reader that stops and starts: all of it, in order, once`, async () => {
      const bound = 50;
      const missed = bound * times;
      const { runtime, url, connections, first, session } = await dropped(['a'], {
        outbox: { maxMessages: bound },
        history: createMemoryHistory({ maxMessages: 1000 }),
      });
      const seen = positions(first);
      await drop(runtime, connections[0]!);
      for (let i = 1; i <= missed; i++) runtime.sendToRoom('a', `m${i}`);
      const second = await returning(url);
      // The reader stops reading at once, and starts again a little later: the replay waits for it.
      const socket = (second.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
      socket.pause();
      resume(second, session, seen);
      // The slow reader is the scenario: it reads nothing for a while, whatever the server does meanwhile.
      await new Promise((resolve) => setTimeout(resolve, 50));
      socket.resume();
      const resumed = await second.until((m) => m.t === 'resumed', 'resumed', 10_000);
      expect(resumed).toMatchObject({ recovered: true, replayed: missed });
      // Live messages after the replay follow it.
      runtime.sendToRoom('a', 'live');
      await second.until((m) => m.d === 'live', 'the live message');
      const room = second.received.filter((m) => m.t === 'msg').map((m) => m.d);
      expect(room).toEqual([...Array.from({ length: missed }, (_, i) => `m${i + 1}`), 'live']);
      expect(runtime.metrics.snapshot().closedByCause).not.toHaveProperty('slow-consumer');
    });
  }
});

describe('resume: skip where live delivery gave one', () => {
  it('except naming a connection whose session is kept: replayed as skip', async () => {
    const { runtime, url, connections, first, session } = await dropped(['a']);
    const seen = positions(first);
    const old = connections[0]!;
    await drop(runtime, old);
    runtime.sendToRoom('a', 'one');
    runtime.sendToRoom('a', 'relayed', { except: old.id });
    runtime.sendToRoom('a', 'three');
    const second = await returning(url);
    resume(second, session, seen);
    await second.until((m) => m.t === 'resumed', 'resumed');
    expect(phases(second).replay.map((m) => `${m.t as string}:${(m.d as string) ?? m.o}`)).toEqual(['msg:one', 'skip:2', 'msg:three']);
  });

  it('except naming the connection, which dropped before the skip was written: replayed as skip', async () => {
    const { runtime, url, connections, first, session } = await dropped(['a']);
    const seen = positions(first);
    const old = connections[0]!;
    // The socket goes; the server has not seen it yet when the message is sent.
    terminate(old);
    runtime.sendToRoom('a', 'relayed', { except: old.id });
    await eventually(() => runtime.metrics.snapshot().sessions.detached === 1, 'the session kept');
    const second = await returning(url);
    resume(second, session, seen);
    await second.until((m) => m.t === 'resumed', 'resumed');
    expect(phases(second).replay.map((m) => m.t)).toEqual(['skip']);
  });

  it('a resume with no positions gives the skip the client already had as a skip again', async () => {
    const { runtime, url, connections, first, session } = await dropped(['a']);
    runtime.sendToRoom('a', 'one');
    runtime.sendToRoom('a', 'relayed', { except: connections[0]!.id });
    await first.until((m) => m.t === 'skip', 'the live skip');
    await drop(runtime, connections[0]!);
    const second = await returning(url);
    resume(second, session);
    await second.until((m) => m.t === 'resumed', 'resumed');
    expect(phases(second).replay.map((m) => m.t)).toEqual(['msg', 'skip']);
  });
});

describe('resume: what comes between welcome and resumed', () => {
  it('only the replay: membership, the new connection’s own messages and live ones come after resumed', async () => {
    const { runtime, url, connections, first, session } = await dropped(['a', 'b']);
    const seen = positions(first);
    await drop(runtime, connections[0]!);
    runtime.sendToRoom('a', 'missed');
    // The application joins every new connection to a room of its own and greets it.
    runtime.on('connection', (connection) => {
      if (connection === connections[0]) return;
      void connection.join('lobby');
      connection.send('hello');
    });
    const second = await returning(url);
    resume(second, session, seen);
    await second.until((m) => m.t === 'resumed', 'resumed');
    runtime.sendToRoom('a', 'live');
    await second.until((m) => m.d === 'live', 'live');
    const { replay, live } = phases(second);
    expect(replay.map((m) => `${m.t as string} ${m.s as string}`)).toEqual(['msg room:a']);
    const kinds = live.map((m) => `${m.t as string} ${m.s as string}`);
    expect(kinds).toEqual(expect.arrayContaining(['joined room:a', 'joined room:b', 'joined room:lobby']));
    expect(kinds.find((k) => k.startsWith('msg conn:'))).toBeDefined();
    // A restored room's `joined` says where the replay ended: its next message follows it.
    const joinedA = live.find((m) => m.t === 'joined' && m.s === 'room:a')!;
    expect(live.find((m) => m.d === 'live')!.o).toBe((joinedA.o as number) + 1);
  });

  it('a forged token: nothing before resumed, and no left for rooms that were never restored', async () => {
    const { runtime, url } = await startRuntime();
    runtime.on('connection', (connection) => {
      void connection.join('lobby');
      connection.send('hello');
    });
    const client = await returning(url);
    await client.until((m) => m.t === 'welcome', 'welcome');
    resume(client, 'x'.repeat(24));
    await client.until((m) => m.t === 'resumed', 'resumed');
    runtime.sendToRoom('lobby', 'marker');
    await client.until((m) => m.d === 'marker', 'marker');
    const { replay, live } = phases(client);
    expect(replay).toEqual([]);
    expect(live.map((m) => m.t)).toEqual(['joined', 'msg', 'msg']);
  });

  it('a session not recovered (history trimmed): its rooms are neither joined nor left', async () => {
    const { runtime, url, connections, first, session } = await dropped(['a'], { history: createMemoryHistory({ maxMessages: 2 }) });
    const seen = positions(first);
    await drop(runtime, connections[0]!);
    for (const text of ['m1', 'm2', 'm3', 'm4']) runtime.sendToRoom('a', text);
    runtime.on('connection', (connection) => void connection.join('lobby'));
    const second = await returning(url);
    resume(second, session, { ...seen, 'room:a': { o: 0, e: first.received.find((m) => m.t === 'joined')!.e as string } });
    const answer = await second.until((m) => m.t === 'resumed', 'resumed');
    expect(answer).toMatchObject({ recovered: false, reason: 'lost', lost: [{ s: 'room:a', reason: 'trimmed' }] });
    runtime.sendToRoom('lobby', 'marker');
    await second.until((m) => m.d === 'marker', 'marker');
    const { replay, live } = phases(second);
    expect(replay).toEqual([]);
    expect(live.map((m) => `${m.t as string} ${m.s as string}`)).toEqual(['joined room:lobby', 'msg room:lobby']);
    expect([...connections[1]!.rooms]).toEqual(['lobby']);
  });
});

/** A runtime with a berth.v1 client through a proxy, welcomed; `closes` records every close. */
async function behindProxy() {
  const { runtime, port } = await startRuntime({ heartbeat: false });
  const connections = track(runtime);
  const closes: Array<{ code: number; cause: string }> = [];
  runtime.on('close', ({ code, cause }) => void closes.push({ code, cause }));
  const proxy = await startTcpProxy(port);
  const first = await v1(proxy.url());
  const welcome = await first.until((m) => m.t === 'welcome', 'welcome');
  return { runtime, connections, closes, proxy, first, session: welcome.session, direct: `ws://127.0.0.1:${port}/` };
}

describe('resume: the old socket is half-open', () => {
  it('the resume takes the session over at once; the old connection is closed as replaced', async () => {
    const { runtime, connections, closes, proxy, first, session, direct } = await behindProxy();
    await connections[0]!.join('a');
    await first.until((m) => m.t === 'joined', 'joined');
    runtime.sendToRoom('a', 'm1');
    await first.until((m) => m.d === 'm1', 'm1');
    const seen = positions(first);
    proxy.cut('half-open');
    runtime.sendToRoom('a', 'm2');
    expect(connections[0]!.state).toBe('open');

    const second = await returning(direct);
    resume(second, session, seen);
    const resumed = await second.until((m) => m.t === 'resumed', 'resumed');
    expect(resumed).toMatchObject({ recovered: true, previous: connections[0]!.id, replayed: 1 });
    expect(phases(second).replay.map((m) => m.d)).toEqual(['m2']);
    expect(closes).toEqual([{ code: 4002, cause: 'replaced' }]);
    expect(runtime.snapshot().rooms.a).toEqual([connections[1]!.id]);
  });

  it('two resumes racing to take one half-open connection over: one recovers, the other is told unknown-session', async () => {
    const { connections, closes, proxy, session, direct } = await behindProxy();
    proxy.cut('half-open');
    const racers = await Promise.all([returning(direct), returning(direct)]);
    for (const racer of racers) resume(racer, session);
    const answers = await Promise.all(racers.map((racer) => racer.until((m) => m.t === 'resumed', 'resumed')));
    expect(answers.map((answer) => answer.recovered).sort()).toEqual([false, true]);
    expect(answers.find((answer) => !answer.recovered)).toMatchObject({ reason: 'unknown-session' });
    expect(closes).toEqual([{ code: 4002, cause: 'replaced' }]);
    expect(connections[0]!.state).toBe('closed');
  });

  it('a live connection is taken over only by its own user', async () => {
    const { runtime, url } = await startRuntime({
      heartbeat: false,
      authenticate: (request) => ({ user: new URL(request.url ?? '/', 'http://x').searchParams.get('user') ?? 'ada' }),
    });
    const connections = track(runtime);
    const first = await v1(`${url}?user=ada`);
    const welcome = await first.until((m) => m.t === 'welcome', 'welcome');
    const stranger = await returning(`${url}?user=eve`);
    resume(stranger, welcome.session);
    expect(await stranger.until((m) => m.t === 'resumed', 'resumed')).toMatchObject({ recovered: false, reason: 'unknown-session' });
    expect(connections[0]!.state).toBe('open');
  });
});

describe('resume: positions', () => {
  it('a position in an epoch the stream never had is answered as epoch-changed', async () => {
    const { runtime, url, connections, first, session } = await dropped(['a']);
    const seen = positions(first);
    await drop(runtime, connections[0]!);
    runtime.sendToRoom('a', 'missed');
    const second = await returning(url);
    resume(second, session, { ...seen, 'room:a': { o: 0, e: 'never-was' } });
    expect(await second.until((m) => m.t === 'resumed', 'resumed')).toMatchObject({
      recovered: false,
      reason: 'lost',
      lost: [{ s: 'room:a', reason: 'epoch-changed' }],
    });
  });
});
