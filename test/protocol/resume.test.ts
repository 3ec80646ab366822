import { describe, expect, it } from 'vitest';
import { SimulatedClock } from 'xstate';
import type { RuntimeOptions } from '../../src/index.js';
import { eventually } from '../helpers/client.js';
import { startRuntime, terminate, track } from '../helpers/runtime.js';
import { v1, type V1Client } from '../helpers/v1.js';

type V1 = V1Client;

/** The client's last position of each stream, as it would send them in `resume`. */
function positions(client: V1): Record<string, { o: number; e: string }> {
  const out: Record<string, { o: number; e: string }> = {};
  for (const m of client.received)
    if (m.t === 'msg' || m.t === 'joined' || m.t === 'skip') out[m.s as string] = { o: m.o as number, e: m.e as string };
  return out;
}

describe('berth.v1 sessions: resume after a drop', () => {
  it('replays what was missed, exactly once and in order, before anything new, with the rooms back', async () => {
    const { runtime, url } = await startRuntime();
    const connections = track(runtime);
    runtime.on('connection', (connection) => void connection.join('lobby'));
    const resumes: Array<{ recovered: boolean; previous?: string }> = [];
    runtime.on('resumed', ({ recovered, previous }) => void resumes.push({ recovered, previous }));
    const first = await v1(url);
    const welcome = await first.until((m) => m.t === 'welcome', 'welcome');
    expect(typeof welcome.session).toBe('string');
    await first.until((m) => m.t === 'joined', 'joined');
    runtime.sendToRoom('lobby', 'm1');
    await first.until((m) => m.d === 'm1', 'm1');
    const seen = positions(first);
    terminate(connections[0]!);
    await eventually(() => connections[0]!.state === 'closed', 'the drop');
    for (const text of ['m2', 'm3', 'm4']) runtime.sendToRoom('lobby', text);

    const second = await v1(url);
    await second.until((m) => m.t === 'welcome', 'the second welcome');
    // The application's own join of the new connection is part of the race too.
    second.ws.send(JSON.stringify({ t: 'resume', token: welcome.session, positions: seen }));
    await second.until((m) => m.t === 'resumed', 'resumed');
    runtime.sendToRoom('lobby', 'm5');
    await second.until((m) => m.d === 'm5', 'm5');
    const lobby = second.received.filter((m) => m.t === 'msg' && m.s === 'room:lobby').map((m) => m.d);
    expect(lobby).toEqual(['m2', 'm3', 'm4', 'm5']);
    const order = second.received.map((m) => (m.t === 'msg' ? m.d : m.t));
    expect(order.indexOf('resumed')).toBeLessThan(order.indexOf('m5'));
    expect(order.indexOf('m4')).toBeLessThan(order.indexOf('resumed'));
    expect(second.received.find((m) => m.t === 'resumed')).toMatchObject({ recovered: true, previous: connections[0]!.id, replayed: 3 });
    expect(resumes).toEqual([{ recovered: true, previous: connections[0]!.id }]);
    expect(runtime.snapshot().rooms.lobby).toEqual([connections[1]!.id]);
  });

  it('a token used once, forged, or of another user recovers nothing, and says so', async () => {
    const { runtime, url } = await startRuntime({
      authenticate: (request) => ({ user: new URL(request.url ?? '/', 'http://x').searchParams.get('user') ?? 'ada' }),
    });
    const connections = track(runtime);
    const first = await v1(`${url}?user=ada`);
    const { session } = await first.until((m) => m.t === 'welcome', 'welcome');
    terminate(connections[0]!);
    await eventually(() => connections[0]!.state === 'closed', 'the drop');

    const stranger = await v1(`${url}?user=eve`);
    stranger.ws.send(JSON.stringify({ t: 'resume', token: session }));
    expect(await stranger.until((m) => m.t === 'resumed', 'an answer')).toMatchObject({ recovered: false, reason: 'unknown-session' });
    const forger = await v1(`${url}?user=ada`);
    forger.ws.send(JSON.stringify({ t: 'resume', token: 'x'.repeat(24) }));
    expect(await forger.until((m) => m.t === 'resumed', 'an answer')).toMatchObject({ recovered: false, reason: 'unknown-session' });
    // The real owner still gets it (the stranger's try did not use it up), once.
    const owner = await v1(`${url}?user=ada`);
    owner.ws.send(JSON.stringify({ t: 'resume', token: session }));
    expect(await owner.until((m) => m.t === 'resumed', 'an answer')).toMatchObject({ recovered: true });
    const again = await v1(`${url}?user=ada`);
    again.ws.send(JSON.stringify({ t: 'resume', token: session }));
    expect(await again.until((m) => m.t === 'resumed', 'an answer')).toMatchObject({ recovered: false, reason: 'unknown-session' });
    expect(runtime.metrics.snapshot().sessions).toMatchObject({ detached: 1, resumed: 1, 'unknown-session': 3 });
  });

  it('after the window the session is gone: not recovered', async () => {
    const clock = new SimulatedClock();
    const { runtime, url } = await startRuntime({ clock, recovery: { windowMs: 1000 }, heartbeat: false });
    const connections = track(runtime);
    const first = await v1(url);
    const { session } = await first.until((m) => m.t === 'welcome', 'welcome');
    terminate(connections[0]!);
    await eventually(() => connections[0]!.state === 'closed', 'the drop');
    await eventually(() => runtime.metrics.snapshot().sessions.detached === 1, 'the session kept');
    clock.increment(1000);
    expect(runtime.metrics.snapshot().sessions).toMatchObject({ expired: 1 });
    const late = await v1(url);
    late.ws.send(JSON.stringify({ t: 'resume', token: session }));
    expect(await late.until((m) => m.t === 'resumed', 'an answer')).toMatchObject({ recovered: false, reason: 'unknown-session' });
  });

  it('history trimmed: not recovered, the lost streams named, and the connection starts fresh', async () => {
    const { createMemoryHistory } = await import('../../src/index.js');
    const { runtime, url } = await startRuntime({ history: createMemoryHistory({ maxMessages: 2 }) });
    const connections = track(runtime);
    runtime.on('connection', (connection) => void connection.join('lobby'));
    const first = await v1(url);
    const { session } = await first.until((m) => m.t === 'welcome', 'welcome');
    await first.until((m) => m.t === 'joined', 'joined');
    const seen = positions(first);
    terminate(connections[0]!);
    await eventually(() => connections[0]!.state === 'closed', 'the drop');
    for (const text of ['m1', 'm2', 'm3', 'm4']) runtime.sendToRoom('lobby', text);
    const second = await v1(url);
    second.ws.send(JSON.stringify({ t: 'resume', token: session, positions: seen }));
    const answer = await second.until((m) => m.t === 'resumed', 'an answer');
    expect(answer).toMatchObject({ recovered: false, reason: 'lost', lost: [{ s: 'room:lobby', reason: 'trimmed' }] });
    expect(second.received.filter((m) => m.t === 'msg' && m.s === 'room:lobby')).toEqual([]);
  });

  it('a deliberate close keeps no session', async () => {
    const { runtime, url } = await startRuntime();
    const first = await v1(url);
    await first.until((m) => m.t === 'welcome', 'welcome');
    first.ws.close(1000);
    await eventually(() => runtime.health().connections.current === 0, 'the close');
    expect(runtime.metrics.snapshot().sessions.detached).toBeUndefined();
  });
});

/**
 * A runtime whose first berth.v1 client is welcomed and in the lobby (the application joins it; later
 * connections too with `lobbyFor: 'every'`). With `m1`, the lobby's first message has reached it.
 */
async function firstInLobby(options: Partial<RuntimeOptions> = {}, { lobbyFor = 'first', m1 = false } = {}) {
  const { runtime, url } = await startRuntime(options);
  const connections = track(runtime);
  runtime.on('connection', (connection) => {
    if (lobbyFor === 'every' || connections.length === 1) void connection.join('lobby');
  });
  const first = await v1(url);
  const { session } = await first.until((m) => m.t === 'welcome', 'welcome');
  await first.until((m) => m.t === 'joined', 'joined');
  if (m1) {
    runtime.sendToRoom('lobby', 'm1');
    await first.until((m) => m.d === 'm1', 'm1');
  }
  return { runtime, url, connections, first, session: session as string, seen: positions(first) };
}

/**
 * A runtime whose first berth.v1 connection joined the lobby and then dropped,
 * leaving its session kept; later connections join nothing by themselves.
 */
async function droppedInLobby(options: RuntimeOptions = {}) {
  const { runtime, url, connections, session } = await firstInLobby(options);
  terminate(connections[0]!);
  await eventually(() => runtime.metrics.snapshot().sessions.detached === 1, 'the session kept');
  return { runtime, url, connections, session };
}

describe('berth.v1 sessions: what is sent while a connection is on its way out', () => {
  it('a message sent after a missed pong took the connection out of its rooms, before its socket closed, is replayed', async () => {
    const clock = new SimulatedClock();
    const { runtime, url, connections, first, session, seen } = await firstInLobby(
      { clock, heartbeat: { intervalMs: 1000, timeoutMs: 1000 } },
      { m1: true },
    );
    // The client stops reading, so it answers no ping: the sweep's round finds the pong missing.
    (first.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    clock.increment(1000);
    clock.increment(1000);
    clock.increment(1000);
    expect(connections[0]!.state).toBe('disconnecting');
    // Out of the room, its socket terminated but not yet closed, its session not yet kept: sent now, it reaches nobody live.
    runtime.sendToRoom('lobby', 'm2');
    await eventually(() => runtime.metrics.snapshot().sessions.detached === 1, 'the session kept');
    runtime.sendToRoom('lobby', 'm3');

    const second = await v1(url);
    await second.until((m) => m.t === 'welcome', 'the second welcome');
    second.ws.send(JSON.stringify({ t: 'resume', token: session, positions: seen }));
    expect(await second.until((m) => m.t === 'resumed', 'resumed')).toMatchObject({ recovered: true, replayed: 2 });
    expect(second.received.filter((m) => m.t === 'msg' && m.s === 'room:lobby').map((m) => m.d)).toEqual(['m2', 'm3']);
  });
});

describe('berth.v1 sessions: resume races', () => {
  it('two connections resuming one token at once: exactly one gets the session, the other nothing, no ghost', async () => {
    const { runtime, url, connections, session } = await droppedInLobby();
    const a = await v1(url);
    const b = await v1(url);
    await a.until((m) => m.t === 'welcome', 'a welcome');
    await b.until((m) => m.t === 'welcome', 'b welcome');
    a.ws.send(JSON.stringify({ t: 'resume', token: session }));
    b.ws.send(JSON.stringify({ t: 'resume', token: session }));
    const answers = [await a.until((m) => m.t === 'resumed', 'a answer'), await b.until((m) => m.t === 'resumed', 'b answer')];
    expect(answers.map((answer) => answer.recovered).sort()).toEqual([false, true]);
    const winner = answers[0]!.recovered ? connections[1]! : connections[2]!;
    expect(runtime.snapshot().rooms).toEqual({ lobby: [winner.id] });
  });

  it('a resume racing the expiry gets the session or nothing, never both', async () => {
    for (const resumeFirst of [true, false]) {
      const clock = new SimulatedClock();
      const { runtime, url, connections, session } = await droppedInLobby({ clock, recovery: { windowMs: 1000 }, heartbeat: false });
      const second = await v1(url);
      await second.until((m) => m.t === 'welcome', 'welcome');
      if (!resumeFirst) clock.increment(1000);
      second.ws.send(JSON.stringify({ t: 'resume', token: session }));
      // The resume is taken (or refused) as its frame is read: give the server a moment to read it.
      await eventually(() => {
        const { sessions } = runtime.metrics.snapshot();
        return sessions.resumed === 1 || sessions['unknown-session'] === 1;
      }, 'the resume read');
      if (resumeFirst) clock.increment(1000);
      const answer = await second.until((m) => m.t === 'resumed', 'an answer');
      expect(answer.recovered).toBe(resumeFirst);
      const { sessions } = runtime.metrics.snapshot();
      expect((sessions.resumed ?? 0) + (sessions.expired ?? 0)).toBe(1);
      expect(runtime.snapshot().rooms).toEqual(resumeFirst ? { lobby: [connections[1]!.id] } : {});
      await runtime.close({ timeoutMs: 1000 });
    }
  });

  it('a resume racing a leave of the same room leaves no ghost', async () => {
    const { runtime, url, session } = await droppedInLobby();
    runtime.on('resumed', ({ connection }) => void connection.leave('lobby'));
    const second = await v1(url);
    await second.until((m) => m.t === 'welcome', 'welcome');
    second.ws.send(JSON.stringify({ t: 'resume', token: session }));
    await second.until((m) => m.t === 'resumed', 'resumed');
    await second.until((m) => m.t === 'left', 'left');
    runtime.sendToRoom('lobby', 'nobody hears this');
    // Broadcasts reach a connection in the order they were sent: once the marker is in, the lobby's would be too.
    runtime.sendToAll('marker');
    await second.until((m) => m.d === 'marker', 'the marker');
    expect(runtime.snapshot().rooms).toEqual({});
    expect(second.received.filter((m) => m.t === 'msg' && m.s === 'room:lobby')).toEqual([]);
  });
});

/**
 * A session in the lobby at m1, dropped; then `away` sent to the lobby. The lobby is joined by the
 * application as every connection arrives, or (`lobbyFor: 'first'`) only the first's: then it is the
 * session's alone, and a resume restores it.
 */
async function droppedAtM1(
  options: Partial<RuntimeOptions> = {},
  { lobbyFor = 'every', away = ['m2', 'm3'] }: { lobbyFor?: 'every' | 'first'; away?: string[] } = {},
) {
  const { runtime, url, connections, session, seen } = await firstInLobby(options, { lobbyFor, m1: true });
  terminate(connections[0]!);
  await eventually(() => connections[0]!.state === 'closed', 'the drop');
  for (const text of away) runtime.sendToRoom('lobby', text);
  return { runtime, url, connections, token: session, seen };
}

describe('berth.v1 sessions: a client that says it will resume (berth.resume offered)', () => {
  it('holds what is live from the welcome on: a message racing the resume comes once, after the replay', async () => {
    const { runtime, url, connections, token, seen } = await droppedAtM1();
    const second = await v1(url, ['berth.v1', 'berth.resume']);
    expect(second.ws.protocol).toBe('berth.v1');
    await second.until((m) => m.t === 'welcome', 'the second welcome');
    await eventually(() => connections.length === 2 && connections[1]!.rooms.has('lobby'), 'the application’s join');
    // Sent after the welcome, before the resume is read: without the intent it would arrive live, then again in the replay.
    runtime.sendToRoom('lobby', 'racing');
    runtime.sendToAll('to all');
    second.ws.send(JSON.stringify({ t: 'resume', token, positions: seen }));
    await second.until((m) => m.t === 'resumed', 'resumed');
    // Each stream once and in order (streams are not ordered among themselves), all before `resumed`.
    const before = second.received.slice(
      0,
      second.received.findIndex((m) => m.t === 'resumed'),
    );
    const of = (stream: string) => before.filter((m) => m.t === 'msg' && m.s === stream).map((m) => `#${String(m.o)} ${String(m.d)}`);
    expect(of('room:lobby')).toEqual(['#2 m2', '#3 m3', '#4 racing']);
    expect(of('all')).toEqual(['#1 to all']);
    // Only the replay comes before `resumed`. The application's join comes after it, and says where
    // the room stands once the replay is in: past it, not before it.
    expect(before.filter((m) => m.t !== 'welcome' && m.t !== 'msg')).toEqual([]);
    const after = second.received.slice(second.received.findIndex((m) => m.t === 'resumed') + 1);
    expect(after.filter((m) => m.t === 'joined')).toMatchObject([{ s: 'room:lobby', o: 4 }]);
    expect(second.received.find((m) => m.t === 'resumed')).toMatchObject({ recovered: true, replayed: 4 });
  });

  it('a client that offered berth.resume but sends something else first gets what was held, in order', async () => {
    const { runtime, url } = await droppedAtM1();
    const texts: string[] = [];
    runtime.on('message', ({ data }) => void texts.push(String(data)));
    const second = await v1(url, ['berth.v1', 'berth.resume']);
    await second.until((m) => m.t === 'welcome', 'the welcome');
    runtime.sendToAll('held');
    second.ws.send(JSON.stringify({ t: 'msg', d: 'hello' }));
    await second.until((m) => m.d === 'held', 'the held message');
    runtime.sendToAll('live');
    await second.until((m) => m.d === 'live', 'the live one');
    expect(texts).toEqual(['hello']);
    expect(second.received.filter((m) => m.t === 'msg').map((m) => m.d)).toEqual(['held', 'live']);
  });

  it('one that offered it and sends nothing gets what was held after recovery.resumeTimeoutMs', async () => {
    const clock = new SimulatedClock();
    const { runtime, url } = await droppedAtM1({ clock, recovery: { resumeTimeoutMs: 5000 }, heartbeat: false });
    const second = await v1(url, ['berth.v1', 'berth.resume']);
    await second.until((m) => m.t === 'welcome', 'the welcome');
    runtime.sendToAll('held');
    clock.increment(4999);
    runtime.sendToAll('marker');
    // A ping's pong is written after anything the server had released by the time it read the ping.
    await new Promise((resolve) => second.ws.once('pong', resolve).ping());
    expect(second.received.filter((m) => m.t === 'msg')).toEqual([]);
    clock.increment(1);
    await second.until((m) => m.d === 'marker', 'what was held');
    expect(second.received.filter((m) => m.t === 'msg').map((m) => m.d)).toEqual(['held', 'marker']);
  });
});

/**
 * The first connection dropped after m1 (m2, m3 sent while away); the second said it would resume
 * and dropped before its `resume` reached the server; then m4.
 */
async function resumeCutShort(lobbyFor: 'first' | 'every') {
  const dropped = await droppedAtM1({}, { lobbyFor });
  const second = await v1(dropped.url, ['berth.v1', 'berth.resume']);
  const welcome2 = await second.until((m) => m.t === 'welcome', 'the second welcome');
  terminate(dropped.connections[1]!);
  await eventually(() => dropped.connections[1]!.state === 'closed', 'the second drop');
  dropped.runtime.sendToRoom('lobby', 'm4');
  return { ...dropped, secondToken: welcome2.session as string };
}

/** A new connection that says it will resume, and sends `resume` with `fields` once welcomed. */
async function resumingWith(url: string, fields: Record<string, unknown>): Promise<V1> {
  const client = await v1(url, ['berth.v1', 'berth.resume']);
  await client.until((m) => m.t === 'welcome', 'the welcome');
  client.ws.send(JSON.stringify({ t: 'resume', ...fields }));
  return client;
}

describe('berth.v1 sessions: a resume cut short', () => {
  it('a connection that drops while its replay is on the way leaves a session that replays from where that replay began', async () => {
    // The lobby is the session's alone, so the resume restores it (and the second connection rejoins it).
    const { runtime, url, connections, token, seen } = await droppedAtM1({}, { lobbyFor: 'first', away: ['m2', 'm3', 'm4'] });

    // The second connection resumes, and drops before its client has read any of the replay.
    const second = await v1(url, ['berth.v1', 'berth.resume']);
    const welcome2 = await second.until((m) => m.t === 'welcome', 'the second welcome');
    second.ws.send(JSON.stringify({ t: 'resume', token, positions: seen }));
    await eventually(() => connections.length === 2 && connections[1]!.rooms.has('lobby'), 'the lobby restored');
    terminate(connections[1]!);
    await eventually(() => connections[1]!.state === 'closed', 'the second drop');
    runtime.sendToRoom('lobby', 'm5');

    // The third resumes the second's session, still knowing only m1: it gets everything after it.
    const third = await v1(url, ['berth.v1', 'berth.resume']);
    await third.until((m) => m.t === 'welcome', 'the third welcome');
    third.ws.send(JSON.stringify({ t: 'resume', token: welcome2.session, positions: seen }));
    const resumed = await third.until((m) => m.t === 'resumed', 'resumed');
    expect(resumed).toMatchObject({ recovered: true });
    const lobby = third.received.filter((m) => m.t === 'msg' && m.s === 'room:lobby').map((m) => m.d);
    expect(lobby).toEqual(['m2', 'm3', 'm4', 'm5']);
  });

  it('a connection that drops before its resume was read leaves no session: resuming its token is not recovered, the first session still is', async () => {
    // `every`: the application joins each connection to the lobby, so the second one's session has the
    // lobby, from where it joined (after m2 and m3); `first`: the lobby was the first session's alone.
    for (const lobbyFor of ['first', 'every'] as const) {
      const { runtime, url, connections, token, seen, secondToken } = await resumeCutShort(lobbyFor);

      // The client resumes the token of its last welcome alone, with what it knew: it must get m2, m3
      // and m4, or be told it does not.
      const third = await resumingWith(url, { token: secondToken, positions: seen });
      expect(await third.until((m) => m.t === 'resumed', 'resumed')).toMatchObject({ recovered: false, reason: 'unknown-session' });

      // Nothing took the first session: resumed with its own token, it replays everything.
      const fourth = await resumingWith(url, { token, positions: seen });
      expect(await fourth.until((m) => m.t === 'resumed', 'resumed')).toMatchObject({ recovered: true, previous: connections[0]!.id });
      expect(fourth.received.filter((m) => m.t === 'msg' && m.s === 'room:lobby').map((m) => m.d)).toEqual(['m2', 'm3', 'm4']);
      await runtime.close({ timeoutMs: 1000 });
    }
  });

  it('a resume that names the earlier token its unanswered one used gets the session still under it', async () => {
    for (const lobbyFor of ['first', 'every'] as const) {
      const { runtime, url, connections, token, seen, secondToken } = await resumeCutShort(lobbyFor);
      // As berth/client does: the last welcome's token, then the one its resume that got no answer named.
      const third = await resumingWith(url, { token: secondToken, earlier: [token], positions: seen });
      expect(await third.until((m) => m.t === 'resumed', 'resumed')).toMatchObject({ recovered: true, previous: connections[0]!.id });
      expect(third.received.filter((m) => m.t === 'msg' && m.s === 'room:lobby').map((m) => m.d)).toEqual(['m2', 'm3', 'm4']);
      await runtime.close({ timeoutMs: 1000 });
    }
  });

  it('`earlier` must be a short list of tokens', async () => {
    const { url } = await startRuntime({ recovery: { windowMs: 60_000 } });
    for (const earlier of ['one', [1], ['a', 'b', 'c', 'd', 'e'], ['']]) {
      const client = await v1(url);
      await client.until((m) => m.t === 'welcome', 'welcome');
      client.ws.send(JSON.stringify({ t: 'resume', token: 'some-token', earlier }));
      expect(await client.until((m) => m.t === 'error', 'the error')).toMatchObject({ code: 'invalid-message' });
      client.ws.close();
    }
  });

  it('a direct message to the first connection, not yet read, survives two drops: the second resume replays it too', async () => {
    const { runtime, url } = await startRuntime({ recovery: { windowMs: 60_000 } });
    const connections = track(runtime);
    const first = await v1(url);
    const welcome1 = await first.until((m) => m.t === 'welcome', 'the first welcome');
    connections[0]!.send('direct-1');
    // Dropped before its client read direct-1: nothing of it is known to the client.
    terminate(connections[0]!);
    await eventually(() => connections[0]!.state === 'closed', 'the first drop');

    const second = await v1(url, ['berth.v1', 'berth.resume']);
    const welcome2 = await second.until((m) => m.t === 'welcome', 'the second welcome');
    second.ws.send(JSON.stringify({ t: 'resume', token: welcome1.session, positions: {} }));
    // The replay reached the socket; dropped again before its client read it (it tells the next resume nothing of it).
    await second.until((m) => m.t === 'resumed', 'the second resumed');
    terminate(connections[1]!);
    await eventually(() => connections[1]!.state === 'closed', 'the second drop');

    const third = await v1(url, ['berth.v1', 'berth.resume']);
    await third.until((m) => m.t === 'welcome', 'the third welcome');
    third.ws.send(JSON.stringify({ t: 'resume', token: welcome2.session, positions: {} }));
    expect(await third.until((m) => m.t === 'resumed', 'resumed')).toMatchObject({ recovered: true });
    const direct = third.received.filter((m) => m.t === 'msg' && m.s === `conn:${connections[0]!.id}`).map((m) => m.d);
    expect(direct).toEqual(['direct-1']);
  });
});
