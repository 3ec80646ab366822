import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { Connection, Runtime } from '../../src/index.js';
import { decodeClientFrame, InvalidMessage } from '../../src/protocol/v1.js';
import { connect, eventually } from '../helpers/client.js';
import { nextConnection, startRuntime } from '../helpers/runtime.js';
import { v1 } from '../helpers/v1.js';

/** Two `berth.v1` clients of the runtime, both in the lobby: the sender (first) and the other. */
async function lobbyOfTwo({ runtime, url }: { runtime: Runtime; url: string }) {
  const connections: Connection[] = [];
  runtime.on('connection', (connection) => {
    connections.push(connection);
    void connection.join('lobby');
  });
  const sender = await v1(url);
  const other = await v1(url);
  await eventually(() => runtime.snapshot().rooms.lobby?.length === 2, 'both in the lobby');
  return { runtime, connections, sender, other };
}

/** The offset the client's `joined` of the lobby gave. */
function lobby0(client: { received: ReadonlyArray<Record<string, unknown>> }): number {
  return client.received.find((m) => m.t === 'joined' && m.s === 'room:lobby')!.o as number;
}

describe('berth.v1: negotiated with Sec-WebSocket-Protocol', () => {
  it('a client that asks for it gets it, and a welcome naming its connection', async () => {
    const { runtime, url } = await startRuntime();
    const opened = nextConnection(runtime);
    const client = await v1(url);
    const connection = await opened;
    expect(client.ws.protocol).toBe('berth.v1');
    expect(connection.protocol).toBe('berth.v1');
    const welcome = await client.next();
    expect(welcome).toEqual({ t: 'welcome', v: 1, id: connection.id, session: welcome.session });
    // A session token: 144 random bits, base64url.
    expect(welcome.session).toMatch(/^[A-Za-z0-9_-]{24}$/);
  });

  it('a raw client is unchanged: no envelope, no welcome', async () => {
    const { runtime, url } = await startRuntime();
    const opened = nextConnection(runtime);
    const raw = await connect(url);
    expect((await opened).protocol).toBe('');
    runtime.sendToAll('plain');
    expect(await raw.next()).toBe('plain');
    expect(raw.messages).toEqual(['plain']);
  });

  it('a client that offers other subprotocols gets the first echoed, as ws does, and is a raw client: its protocol is ""', async () => {
    const { runtime, url } = await startRuntime();
    const opened = nextConnection(runtime);
    const chat = new WebSocket(url, ['chat', 'other']);
    const received: string[] = [];
    chat.on('message', (data) => void received.push(String(data)));
    await new Promise((resolve, reject) => chat.once('open', resolve).once('error', reject));
    expect(chat.protocol).toBe('chat');
    const connection = await opened;
    expect(connection.protocol).toBe('');
    connection.send('plain');
    await eventually(() => received.length === 1, 'the message');
    expect(received).toEqual(['plain']);
    chat.close();
  });
});

describe('berth.v1: the server never chooses a berth subprotocol it does not speak', () => {
  /** How a ws client that offers `protocols` fares: the subprotocol it got, or the error its handshake failed with. */
  function offering(url: string, protocols: string[]): Promise<{ protocol: string } | { error: string }> {
    const ws = new WebSocket(url, protocols);
    return new Promise((resolve) => {
      ws.once('open', () => {
        resolve({ protocol: ws.protocol });
        ws.close();
      });
      ws.once('error', (error) => resolve({ error: error.message }));
    });
  }

  it.each([[['berth.v2']], [['berth.resume']], [['berth.v2', 'berth.resume']]])(
    'a client offering only %j gets no subprotocol: its handshake fails, and the server saw a raw client',
    async (protocols) => {
      const { runtime, url } = await startRuntime();
      const opened = nextConnection(runtime);
      expect(await offering(url, protocols)).toEqual({ error: 'Server sent no subprotocol' });
      expect((await opened).protocol).toBe('');
    },
  );

  it('beside a name of its own, that name is chosen; beside berth.v1, berth.v1', async () => {
    const { runtime, url } = await startRuntime();
    const protocols: string[] = [];
    runtime.on('connection', (connection) => void protocols.push(connection.protocol));
    expect(await offering(url, ['berth.v2', 'chat'])).toEqual({ protocol: 'chat' });
    expect(await offering(url, ['berth.resume', 'berth.v2', 'berth.v1'])).toEqual({ protocol: 'berth.v1' });
    await eventually(() => protocols.length === 2, 'both connections');
    expect(protocols).toEqual(['', 'berth.v1']);
  });
});

describe('berth.v1: every message belongs to a stream, with an offset and an epoch', () => {
  it('a room is a stream: joined says where it stands, each message takes the next offset in one epoch', async () => {
    const { runtime, url } = await startRuntime();
    const opened = nextConnection(runtime);
    const client = await v1(url);
    const connection = await opened;
    await client.next(); // welcome
    runtime.sendToRoom('lobby', 'before the join');
    await connection.join('lobby');
    const joined = await client.next();
    expect(joined).toMatchObject({ t: 'joined', s: 'room:lobby', o: 0 });
    const epoch = joined.e as string;
    expect(typeof epoch).toBe('string');
    runtime.sendToRoom('lobby', 'one');
    runtime.sendToRoom('lobby', 'two');
    runtime.sendToRoom('lobby', Buffer.from([0, 255]));
    expect(await client.next()).toEqual({ t: 'msg', s: 'room:lobby', o: 1, e: epoch, d: 'one' });
    expect(await client.next()).toEqual({ t: 'msg', s: 'room:lobby', o: 2, e: epoch, d: 'two' });
    expect(await client.next()).toEqual({ t: 'msg', s: 'room:lobby', o: 3, e: epoch, payload: '00ff' });
    await connection.leave('lobby');
    expect(await client.next()).toEqual({ t: 'left', s: 'room:lobby' });
  });

  it('a user, a single connection and everyone are streams of their own', async () => {
    const { runtime, url } = await startRuntime();
    const opened = nextConnection(runtime);
    const client = await v1(url);
    const connection = await opened;
    await client.next();
    await connection.setUser('ada');
    runtime.sendToUser('ada', 'to ada');
    connection.send('to you');
    connection.send(Buffer.from('bytes'), { binary: false });
    runtime.sendToAll('to all');
    expect(await client.next()).toMatchObject({ t: 'msg', s: 'user:ada', o: 1, d: 'to ada' });
    expect(await client.next()).toMatchObject({ t: 'msg', s: `conn:${connection.id}`, o: 1, d: 'to you' });
    expect(await client.next()).toMatchObject({ t: 'msg', s: `conn:${connection.id}`, o: 2, d: 'bytes' });
    expect(await client.next()).toMatchObject({ t: 'msg', s: 'all', o: 1, d: 'to all' });
  });

  it('raw and berth.v1 members of one room get the same messages, each in its own form', async () => {
    const { runtime, url } = await startRuntime();
    runtime.on('connection', (connection) => void connection.join('lobby'));
    const raw = await connect(url);
    const enveloped = await v1(url);
    await eventually(() => runtime.snapshot().rooms.lobby?.length === 2, 'both in the lobby');
    for (let i = 0; i < 20; i++) runtime.sendToRoom('lobby', `m${i}`);
    expect(await raw.received(20)).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`));
    await eventually(() => enveloped.received.filter((m) => m.t === 'msg').length === 20, '20 enveloped messages');
    const messages = enveloped.received.filter((m) => m.t === 'msg');
    expect(messages.map((m) => m.d)).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`));
    expect(messages.map((m) => m.o)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });

  it('encode once: a room broadcast is one enveloped frame for every berth.v1 recipient, and one raw frame for the rest', async () => {
    const { runtime, url } = await startRuntime();
    runtime.on('connection', (connection) => void connection.join('room'));
    const clients = await Promise.all(Array.from({ length: 40 }, () => v1(url)));
    const raws = await Promise.all(Array.from({ length: 10 }, () => connect(url)));
    await eventually(() => runtime.snapshot().rooms.room?.length === 50, 'all in the room');
    await eventually(() => clients.every((client) => client.received.some((m) => m.t === 'joined')), 'every joined');
    // A broadcast to a new target is written at once; the ones after it to the same room coalesce.
    runtime.sendToRoom('room', 'first');
    await Promise.all(raws.map((client) => client.received(1)));
    await eventually(() => clients.every((client) => client.received.some((m) => m.d === 'first')), 'every berth.v1 client got the first');
    expect(runtime.health().outbox.bytesQueued).toBe(0);
    const payload = 'x'.repeat(100_000);
    // In one turn: the frames wait in the outboxes until the turn's flush.
    for (let i = 0; i < 3; i++) runtime.sendToRoom('room', payload);
    const { bytesQueued, bytesReferenced } = runtime.health().outbox;
    const raw = 100_000 + 10;
    // Three enveloped frames and three raw ones are held, whatever the number of recipients.
    expect(bytesQueued).toBeGreaterThan(3 * raw + 3 * 100_000);
    expect(bytesQueued).toBeLessThan(3 * raw + 3 * (100_000 + 200));
    expect(bytesReferenced).toBe(10 * 3 * raw + 40 * ((bytesQueued - 3 * raw) / 3) * 3);
    await Promise.all(raws.map((client) => client.received(4)));
  });
});

describe('berth.v1: what a client sends', () => {
  it('a msg reaches the message event as text or bytes, as from a raw client', async () => {
    const { runtime, url } = await startRuntime();
    const seen: Array<{ data: string | Buffer; binary: boolean }> = [];
    runtime.on('message', ({ data, binary }) => void seen.push({ data, binary }));
    const client = await v1(url);
    client.ws.send(JSON.stringify({ t: 'msg', d: 'hello' }));
    const head = Buffer.from(JSON.stringify({ t: 'msg' }));
    const frame = Buffer.concat([Buffer.from([0, head.length]), head, Buffer.from([1, 2, 3])]);
    client.ws.send(frame);
    await eventually(() => seen.length === 2, 'both messages');
    expect(seen[0]).toEqual({ data: 'hello', binary: false });
    expect(seen[1]!.binary).toBe(true);
    expect([...(seen[1]!.data as Buffer)]).toEqual([1, 2, 3]);
  });

  it('a frame that is no berth.v1 message gets an error message, is counted, and the connection carries on', async () => {
    const { runtime, url } = await startRuntime();
    const errors: string[] = [];
    runtime.on('error', ({ error }) => void errors.push(error.code));
    const seen: string[] = [];
    runtime.on('message', ({ data }) => void seen.push(String(data)));
    const client = await v1(url);
    await client.next();
    for (const bad of ['not json', '[1]', JSON.stringify({ t: 'nope' }), JSON.stringify({ t: 'msg', d: 5 })]) client.ws.send(bad);
    client.ws.send(Buffer.from([0xff, 0xff, 1]));
    client.ws.send(JSON.stringify({ t: 'msg', d: 'still here' }));
    await eventually(() => seen.length === 1, 'the good message');
    expect(seen).toEqual(['still here']);
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push(await client.next());
    expect(answers.map((answer) => [answer.t, answer.code])).toEqual(Array.from({ length: 5 }, () => ['error', 'invalid-message']));
    // Every one counted and answered, reported once: a client looping on a bad frame must not flood the log.
    expect(errors).toEqual(['ERR_PROTOCOL']);
    expect(runtime.metrics.snapshot().dropped).toMatchObject({ 'invalid-message': 5 });
    expect(client.ws.readyState).toBe(WebSocket.OPEN);
  });
});

describe('berth.v1: request and reply', () => {
  async function requester(url: string) {
    const client = await v1(url);
    await client.next(); // welcome
    return client;
  }

  it('a request gets its handler’s reply, by its id, text or bytes, at once or later', async () => {
    const { runtime, url } = await startRuntime();
    runtime.onRequest(async ({ connection, data, binary }) => {
      if (binary) return Buffer.concat([Buffer.from('got '), data as Buffer]);
      await new Promise((resolve) => setTimeout(resolve, data === 'slow' ? 50 : 0));
      return `${connection.protocol}: ${String(data).toUpperCase()}`;
    });
    const client = await requester(url);
    client.ws.send(JSON.stringify({ t: 'req', id: 1, d: 'slow' }));
    client.ws.send(JSON.stringify({ t: 'req', id: 'two', d: 'fast' }));
    const head = Buffer.from(JSON.stringify({ t: 'req', id: 3 }));
    client.ws.send(Buffer.concat([Buffer.from([0, head.length]), head, Buffer.from([7])]));
    const answers = [await client.next(), await client.next(), await client.next()];
    expect(answers).toContainEqual({ t: 'reply', id: 'two', d: 'berth.v1: FAST' });
    expect(answers).toContainEqual({ t: 'reply', id: 1, d: 'berth.v1: SLOW' });
    expect(answers).toContainEqual({ t: 'reply', id: 3, payload: Buffer.from('got \u0007').toString('hex') });
  });

  it('a RequestError answers with its code; any other failure answers handler-failed, is reported, and the connection carries on', async () => {
    const { runtime, url } = await startRuntime();
    const { RequestError } = await import('../../src/index.js');
    const errors: string[] = [];
    runtime.on('error', ({ error }) => void errors.push(error.code));
    runtime.onRequest(({ data }) => {
      if (data === 'missing') throw new RequestError('not-found', 'no such thing');
      if (data === 'async') return Promise.reject(new Error('database down'));
      if (data === 'object') return { not: 'data' } as never;
      throw new Error('bug');
    });
    const client = await requester(url);
    for (const [id, d] of [
      [1, 'missing'],
      [2, 'async'],
      [3, 'object'],
      [4, 'bug'],
    ] as const)
      client.ws.send(JSON.stringify({ t: 'req', id, d }));
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await client.next());
    expect(answers.find((a) => a.id === 1)).toEqual({ t: 'error', id: 1, code: 'not-found', message: 'no such thing' });
    for (const id of [2, 3, 4])
      expect(answers.find((a) => a.id === id)).toEqual({ t: 'error', id, code: 'handler-failed', message: 'the request handler failed' });
    expect(errors).toEqual(['ERR_HANDLER_FAILED', 'ERR_HANDLER_FAILED', 'ERR_HANDLER_FAILED']);
    client.ws.send(JSON.stringify({ t: 'req', id: 5, d: 'missing' }));
    expect(await client.next()).toMatchObject({ t: 'error', id: 5, code: 'not-found' });
    expect(client.ws.readyState).toBe(WebSocket.OPEN);
  });

  it('without a handler a request is answered no-handler; a bad id is no message', async () => {
    const { url } = await startRuntime();
    const client = await requester(url);
    client.ws.send(JSON.stringify({ t: 'req', id: 9, d: 'anyone?' }));
    expect(await client.next()).toEqual({ t: 'error', id: 9, code: 'no-handler', message: 'this server answers no requests' });
    for (const id of [-1, 1.5, '', 'x'.repeat(65), null]) client.ws.send(JSON.stringify({ t: 'req', id, d: 'x' }));
    for (let i = 0; i < 5; i++) expect(await client.next()).toMatchObject({ t: 'error', code: 'invalid-message' });
  });

  it('a request whose id is valid but whose d is not is refused with its id, so that the error can answer it', () => {
    const refusal = (frame: object) => {
      try {
        decodeClientFrame(JSON.stringify(frame), false);
      } catch (error) {
        if (error instanceof InvalidMessage) return { id: error.id, why: error.message };
      }
      throw new Error(`${JSON.stringify(frame)} was decoded`);
    };
    const badData = '"req" needs "d", a string (send bytes as a binary message)';
    expect(refusal({ t: 'req', id: 7, d: 5 })).toEqual({ id: 7, why: badData });
    expect(refusal({ t: 'req', id: 'seven' })).toEqual({ id: 'seven', why: badData });
    // No id to answer: an invalid one, or none.
    expect(refusal({ t: 'req', id: -1, d: 5 }).id).toBeUndefined();
    expect(refusal({ t: 'req', d: 5 }).id).toBeUndefined();
    expect(refusal({ t: 'msg', id: 7, d: 5 }).id).toBeUndefined();
  });

  it('a request with a valid id but a bad d is answered invalid-message with its id; without a valid id, with none', async () => {
    const { url } = await startRuntime();
    const client = await requester(url);
    client.ws.send(JSON.stringify({ t: 'req', id: 7, d: 5 }));
    expect(await client.next()).toEqual({
      t: 'error',
      id: 7,
      code: 'invalid-message',
      message: '"req" needs "d", a string (send bytes as a binary message)',
    });
    client.ws.send(JSON.stringify({ t: 'req', id: -1, d: 5 }));
    expect(await client.next()).not.toHaveProperty('id');
  });

  it('a raw client’s frames are never requests', async () => {
    const { runtime, url } = await startRuntime();
    const seen: string[] = [];
    runtime.on('message', ({ data }) => void seen.push(String(data)));
    runtime.onRequest(() => 'reply');
    const raw = await connect(url);
    raw.ws.send(JSON.stringify({ t: 'req', id: 1, d: 'x' }));
    await eventually(() => seen.length === 1, 'the message');
    expect(seen).toEqual([JSON.stringify({ t: 'req', id: 1, d: 'x' })]);
    expect(raw.messages).toEqual([]);
  });
});

describe('berth.v1: pacing a browser can see', () => {
  /** Resolves with the close a berth.v1 client saw (code, reason), or the HTTP status of a refused upgrade. */
  function attempt(url: string, protocols: string[]): Promise<{ code?: number; reason?: string; status?: number }> {
    return new Promise((resolve) => {
      const ws = new WebSocket(url, protocols);
      ws.on('unexpected-response', (_request, response) => {
        resolve({ status: response.statusCode });
        ws.terminate();
      });
      ws.on('error', () => {});
      ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    });
  }

  it('over maxConnections, a berth.v1 client is closed with 1013 and when to come back; a raw one still gets 503', async () => {
    const { runtime, url } = await startRuntime({ maxConnections: 1, retryAfterSeconds: 7 });
    const refused: number[] = [];
    runtime.on('refused', ({ status }) => void refused.push(status));
    const first = await v1(url);
    await first.next();
    expect(await attempt(url, ['berth.v1'])).toEqual({ code: 1013, reason: 'retry-after=7' });
    expect(await attempt(url, [])).toEqual({ status: 503 });
    expect(refused).toEqual([503, 503]);
    // Nothing of the paced attempt reached the application.
    expect(runtime.health().connections.current).toBe(1);
  });

  it('while the server shuts down, a berth.v1 client is closed with 1012 and when to come back', async () => {
    const { runtime, url } = await startRuntime({ retryAfterSeconds: 3 });
    const opened = nextConnection(runtime);
    const client = await v1(url);
    await opened;
    // The open connection keeps the shutdown waiting (it never answers the close) while a new client knocks.
    client.ws.pause();
    const closing = runtime.close({ timeoutMs: 2000 });
    expect(await attempt(url, ['berth.v1'])).toEqual({ code: 1012, reason: 'retry-after=3' });
    client.ws.resume();
    await closing;
  });
});

describe('berth.v1: no silent gap, no lost message', () => {
  it('a broadcast sent from inside another (a drop handler) reaches berth.v1 members too', async () => {
    const { runtime, url } = await startRuntime();
    const opened: Connection[] = [];
    runtime.on('connection', (connection) => {
      opened.push(connection);
      void connection.join('lobby');
    });
    await connect(url);
    const client = await v1(url);
    await eventually(() => runtime.snapshot().rooms.lobby?.length === 2, 'both in the lobby');
    await eventually(() => client.received.some((m) => m.t === 'joined'), 'joined');
    // A broadcast to a new target is written at once; the ones after it to the same room coalesce in the outboxes.
    runtime.sendToRoom('lobby', 'warm');
    await eventually(() => client.received.some((m) => m.t === 'msg'), 'the first broadcast');
    // The raw client's outbox takes one frame a turn: the second broadcast overflows it, inside the supervisor.
    opened[0]!.setOutboxLimits({ maxMessages: 1, overflow: 'drop-newest' });
    let sent = false;
    runtime.on('dropped', () => {
      // Once: its own broadcast overflows the raw outbox again.
      if (sent) return;
      sent = true;
      runtime.sendToRoom('lobby', 'sent by the drop handler');
    });
    runtime.sendToRoom('lobby', 'first');
    runtime.sendToRoom('lobby', 'overflows');
    await eventually(() => client.received.filter((m) => m.t === 'msg').length === 4, 'four berth.v1 messages');
    expect(client.received.filter((m) => m.t === 'msg').map((m) => [m.o, m.d])).toEqual([
      [1, 'warm'],
      [2, 'first'],
      [3, 'overflows'],
      [4, 'sent by the drop handler'],
    ]);
  });

  it('a member left out by except gets a skip for the offset the others were given', async () => {
    const { runtime, connections, sender, other } = await lobbyOfTwo(await startRuntime());
    runtime.sendToRoom('lobby', 'one');
    runtime.sendToRoom('lobby', 'two', { except: connections[0] });
    runtime.sendToRoom('lobby', 'three');
    await eventually(() => other.received.filter((m) => m.t === 'msg').length === 3, 'three messages');
    await eventually(() => sender.received.filter((m) => m.t === 'msg' || m.t === 'skip').length === 3, 'two messages and a skip');
    const seen = sender.received.filter((m) => m.t === 'msg' || m.t === 'skip').map((m) => [m.t, m.o, m.d]);
    expect(seen).toEqual([
      ['msg', 1, 'one'],
      ['skip', 2, undefined],
      ['msg', 3, 'three'],
    ]);
  });

  it('a history store that answers later, and out of order, still delivers each stream in order, after its joined', async () => {
    const { createMemoryHistory } = await import('../../src/index.js');
    const inner = createMemoryHistory();
    // The memory store, answering append and position after 0–4 ms each: later calls often answer first.
    let calls = 0;
    const later = <T>(value: T | Promise<T>) => new Promise<T>((resolve) => setTimeout(() => resolve(value), calls++ % 5));
    const history = {
      append: (...args: Parameters<typeof inner.append>) => later(inner.append(...args)),
      read: (...args: Parameters<typeof inner.read>) => inner.read(...args),
      position: (stream: string) => later(inner.position(stream)),
      close: () => inner.close(),
    };
    const { runtime, connections, sender, other } = await lobbyOfTwo(await startRuntime({ history }));
    for (let i = 1; i <= 40; i++) runtime.sendToRoom('lobby', `m${i}`, i === 7 ? { except: connections[0] } : undefined);
    for (let i = 1; i <= 10; i++) connections[1]!.send(`d${i}`);
    await eventually(() => other.received.filter((m) => m.t === 'msg').length === 50, 'every message');
    await eventually(() => sender.received.filter((m) => m.t === 'msg' || m.t === 'skip').length === 40, 'every message and a skip');
    for (const client of [sender, other]) {
      const lobby = client.received.filter((m) => m.s === 'room:lobby');
      expect(lobby[0]?.t).toBe('joined');
      const offsets = lobby.slice(1).map((m) => m.o);
      expect(offsets).toEqual(Array.from({ length: 40 }, (_, i) => lobby0(client) + i + 1));
    }
    expect(other.received.filter((m) => m.t === 'msg' && m.s === 'room:lobby').map((m) => m.d)).toEqual(
      Array.from({ length: 40 }, (_, i) => `m${i + 1}`),
    );
    expect(other.received.filter((m) => m.t === 'msg' && String(m.s).startsWith('conn:')).map((m) => [m.o, m.d])).toEqual(
      Array.from({ length: 10 }, (_, i) => [i + 1, `d${i + 1}`]),
    );
    expect(sender.received.filter((m) => m.t === 'skip').map((m) => m.o)).toEqual([lobby0(sender) + 7]);
  });

  it('room and user names are bounded, and berth’s own error codes are not an application’s', async () => {
    const { runtime } = await startRuntime();
    const { RequestError } = await import('../../src/index.js');
    expect(() => runtime.sendToRoom('r'.repeat(1025), 'x')).toThrow(RangeError);
    expect(() => new RequestError('no-handler', 'mine')).toThrow(TypeError);
    expect(new RequestError('not-found', 'fine').code).toBe('not-found');
  });
});
