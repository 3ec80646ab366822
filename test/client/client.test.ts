import { afterEach, describe, expect, it, vi } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { createClient, type BerthClient, type ClientOptions, type StreamMessage, type WebSocketClass } from '../../src/client.js';
import { createMemoryHistory, RequestError, type Connection, type Runtime } from '../../src/index.js';
import { eventually } from '../helpers/client.js';
import { startRuntime } from '../helpers/runtime.js';

const clients: BerthClient[] = [];
afterEach(() => {
  for (const client of clients.splice(0)) client.close();
});

function open(url: string, options: ClientOptions = {}): BerthClient {
  const client = createClient(url, { backoff: { initialMs: 50, maxMs: 200 }, ...options });
  const seen = { left: false };
  away.set(client, seen);
  client.on('state', (state) => {
    if (state === 'reconnecting') seen.left = true;
  });
  clients.push(client);
  return client;
}

const away = new WeakMap<BerthClient, { left: boolean }>();

/** Whether the client has left `open` since it was created (a reconnect can be over before anyone polls). */
function left(client: BerthClient): boolean {
  return away.get(client)?.left ?? false;
}

function connections(runtime: Runtime): Connection[] {
  const seen: Connection[] = [];
  runtime.on('connection', (connection) => void seen.push(connection));
  return seen;
}

describe('berth/client', () => {
  it('is open once welcomed, receives stream messages and keeps their positions', async () => {
    const { runtime, url } = await startRuntime();
    runtime.on('connection', (connection) => void connection.join('lobby'));
    const client = open(url);
    const states: string[] = [];
    client.on('state', (state) => void states.push(state));
    const messages: StreamMessage[] = [];
    client.on('message', (message) => void messages.push(message));
    await eventually(() => client.state === 'open', 'open');
    await eventually(() => client.positions.has('room:lobby'), 'the joined position');
    runtime.sendToRoom('lobby', 'hello');
    runtime.sendToRoom('lobby', new Uint8Array([1, 2]));
    await eventually(() => messages.length === 2, 'two messages');
    expect(messages[0]).toMatchObject({ stream: 'room:lobby', offset: 1, data: 'hello' });
    expect([...(messages[1]!.data as Uint8Array)]).toEqual([1, 2]);
    expect(client.positions.get('room:lobby')).toMatchObject({ offset: 2 });
    expect(states).toEqual(['open']);
  });

  it.each([
    ['loaded by itself', {}],
    // As in a browser: the class is at hand when the machine enters `connecting`.
    ['given as the WebSocket option', { WebSocket: WebSocket as unknown as WebSocketClass }],
  ] as const)('reconnects by itself after a dropped connection (ws %s), and what was sent meanwhile goes out after', async (_, options) => {
    const { runtime, url } = await startRuntime();
    const opened = connections(runtime);
    const received: string[] = [];
    runtime.on('message', ({ data }) => void received.push(String(data)));
    const client = open(url, options);
    await eventually(() => client.state === 'open', 'open');
    const first = client.id;
    (opened[0] as unknown as { socket: { terminate(): void } }).socket.terminate();
    await eventually(() => left(client), 'reconnecting');
    expect(client.send('while away')).toBe(true);
    await eventually(() => client.state === 'open', 'open again');
    expect(client.id).not.toBe(first);
    await eventually(() => received.includes('while away'), 'the queued message');
    client.send('after');
    await eventually(() => received.includes('after'), 'a live one');
    expect(received).toEqual(['while away', 'after']);
  });

  it('a message sent while the socket is already going but its close not yet seen is queued, not lost', async () => {
    const { runtime, url } = await startRuntime();
    const received: string[] = [];
    runtime.on('message', ({ data }) => void received.push(String(data)));
    const sockets: WebSocket[] = [];
    class Recording extends WebSocket {
      constructor(address: string, protocols: string[]) {
        super(address, protocols);
        sockets.push(this);
      }
    }
    const client = open(url, { WebSocket: Recording as unknown as WebSocketClass });
    await eventually(() => client.state === 'open', 'open');
    sockets[0]!.terminate();
    // The socket is closing; its close event has not reached the client yet.
    expect(client.state).toBe('open');
    expect(client.send('in the gap')).toBe(true);
    await expect(client.request('a question')).rejects.toMatchObject({ code: 'disconnected' });
    await eventually(() => sockets.length === 2 && client.state === 'open', 'open again');
    await eventually(() => received.includes('in the gap'), 'the queued message');
    expect(received).toEqual(['in the gap']);
  });

  it('gives up on an attempt that gets no welcome within connectTimeoutMs, and tries again with backoff', async () => {
    // Accepts the WebSocket, never says welcome: a stalled server, or a handshake lost on the way.
    const silent = new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: () => 'berth.v1' });
    await new Promise((resolve) => silent.once('listening', resolve));
    let attempts = 0;
    silent.on('connection', () => void attempts++);
    try {
      const client = open(`ws://127.0.0.1:${(silent.address() as { port: number }).port}/`, { connectTimeoutMs: 100 });
      await eventually(() => attempts >= 3, 'three attempts');
      expect(left(client)).toBe(true);
      expect(client.state).not.toBe('open');
      // The attempts given up on were dropped, not left open: at most the current one is.
      await eventually(() => silent.clients.size <= 1, 'the earlier sockets gone');
      client.close();
    } finally {
      for (const socket of silent.clients) socket.terminate();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it('does not come back after a close that says not to (1008, 1000, an application code)', async () => {
    const { runtime, url } = await startRuntime();
    const opened = connections(runtime);
    const client = open(url);
    await eventually(() => client.state === 'open', 'open');
    const closes: number[] = [];
    client.on('close', ({ code }) => void closes.push(code));
    opened[0]!.close(4100, 'kicked');
    await eventually(() => client.state === 'closed', 'closed');
    expect(closes).toEqual([4100]);
    expect(opened).toHaveLength(1);
    expect(client.send('x')).toBe(false);
  });

  it('a full server’s pacing is honoured: the client sets its next attempt no sooner than the retry-after, then gets in', async () => {
    const { runtime, url } = await startRuntime({ maxConnections: 1, retryAfterSeconds: 1 });
    const opened = connections(runtime);
    const first = open(url);
    await eventually(() => first.state === 'open', 'the first open');
    // The closes the second client's sockets see, and the timers the client sets as it hears of one: its
    // listener runs after this one, within the same emit, before any microtask.
    const closes: Array<{ code: number; reason: string; timers: number[] }> = [];
    class Recording extends WebSocket {
      constructor(address: string, protocols: string[]) {
        super(address, protocols);
        this.on('close', (code, reason) => {
          const timers: number[] = [];
          const real = globalThis.setTimeout;
          const spy = vi.spyOn(globalThis, 'setTimeout').mockImplementation(((fn: () => void, ms: number) => {
            timers.push(ms);
            return real(fn, ms);
          }) as typeof setTimeout);
          queueMicrotask(() => spy.mockRestore());
          closes.push({ code, reason: reason.toString(), timers });
        });
      }
    }
    const second = open(url, { WebSocket: Recording as unknown as WebSocketClass });
    await eventually(() => second.state === 'reconnecting', 'the second paced');
    expect(closes).toEqual([{ code: 1013, reason: 'retry-after=1', timers: [expect.any(Number)] }]);
    // Its next attempt is set no sooner than the server asked (its backoff alone would be 200 ms at most);
    // how the machine spreads it is test/model/client.model.test.ts's, on a simulated clock.
    expect(closes[0]!.timers[0]).toBeGreaterThanOrEqual(1000);
    first.close();
    await eventually(() => second.state === 'open', 'the second in', 5000);
    expect(opened).toHaveLength(2);
  });

  it('requests get their reply, a typed error, or a timeout', async () => {
    const { runtime, url } = await startRuntime();
    runtime.onRequest(({ data }) => {
      if (data === 'missing') throw new RequestError('not-found', 'no such thing');
      if (data === 'never') return new Promise(() => {});
      return `echo ${String(data)}`;
    });
    const client = open(url, { requestTimeoutMs: 200 });
    await eventually(() => client.state === 'open', 'open');
    expect(await client.request('hi')).toBe('echo hi');
    await expect(client.request('missing')).rejects.toMatchObject({ code: 'not-found', message: 'no such thing' });
    await expect(client.request('never')).rejects.toMatchObject({ code: 'timeout' });
  });

  it('close is for good: closed, reported once, no reconnect', async () => {
    const { runtime, url } = await startRuntime();
    const opened = connections(runtime);
    const client = open(url);
    await eventually(() => client.state === 'open', 'open');
    const closes: Array<{ code: number; reason: string }> = [];
    client.on('close', (close) => void closes.push(close));
    client.close(1000, 'done');
    await eventually(() => client.state === 'closed', 'closed');
    await eventually(() => opened[0]!.state === 'closed', 'the server side closed');
    expect(closes).toEqual([{ code: 1000, reason: 'done' }]);
  });
});

/** The lobby's texts and the `resumed` answers a client gets, once it is open in the lobby. */
async function inLobby(client: BerthClient): Promise<{ texts: string[]; resumed: boolean[] }> {
  const texts: string[] = [];
  client.on('message', ({ stream, data }) => {
    if (stream === 'room:lobby') texts.push(String(data));
  });
  const resumed: boolean[] = [];
  client.on('resumed', ({ recovered }) => void resumed.push(recovered));
  await eventually(() => client.state === 'open' && client.positions.has('room:lobby'), 'open in the lobby');
  return { texts, resumed };
}

describe('berth/client: reconnect without losing messages', () => {
  it('after a drop it resumes by itself: every message sent meanwhile arrives once, in order, before new ones', async () => {
    const { runtime, url } = await startRuntime();
    const opened = connections(runtime);
    runtime.on('connection', (connection) => void connection.join('lobby'));
    const client = open(url);
    const { texts, resumed } = await inLobby(client);
    for (let i = 0; i < 5; i++) runtime.sendToRoom('lobby', `before ${i}`);
    await eventually(() => texts.length === 5, 'five messages');
    (opened[0] as unknown as { socket: { terminate(): void } }).socket.terminate();
    await eventually(() => left(client), 'reconnecting');
    for (let i = 0; i < 20; i++) runtime.sendToRoom('lobby', `during ${i}`);
    await eventually(() => client.state === 'open', 'open again');
    for (let i = 0; i < 5; i++) runtime.sendToRoom('lobby', `after ${i}`);
    await eventually(() => texts.length === 30, 'thirty messages');
    expect(texts).toEqual([
      ...Array.from({ length: 5 }, (_, i) => `before ${i}`),
      ...Array.from({ length: 20 }, (_, i) => `during ${i}`),
      ...Array.from({ length: 5 }, (_, i) => `after ${i}`),
    ]);
    expect(resumed).toEqual([true]);
  });
});

describe('berth/client: a resume cut short', () => {
  it('a connection that drops before its resume reached the server: the next resume names the earlier token too, and recovers', async () => {
    const { runtime, url } = await startRuntime();
    const opened = connections(runtime);
    runtime.on('connection', (connection) => void connection.join('lobby'));
    // The second socket's first write (its resume) is lost, and the socket with it.
    let made = 0;
    class ResumeLost extends WebSocket {
      readonly #nth = ++made;
      override send(data: Parameters<WebSocket['send']>[0]): void {
        if (this.#nth === 2) this.terminate();
        else super.send(data);
      }
    }
    const client = open(url, { WebSocket: ResumeLost as unknown as WebSocketClass });
    const { texts, resumed } = await inLobby(client);
    runtime.sendToRoom('lobby', 'before');
    await eventually(() => texts.length === 1, 'the first message');
    (opened[0] as unknown as { socket: { terminate(): void } }).socket.terminate();
    await eventually(() => left(client), 'reconnecting');
    for (let i = 0; i < 5; i++) runtime.sendToRoom('lobby', `during ${i}`);
    await eventually(() => made === 3 && client.state === 'open', 'open on the third socket');
    runtime.sendToRoom('lobby', 'after');
    await eventually(() => texts.length === 7, 'seven messages');
    expect(texts).toEqual(['before', ...Array.from({ length: 5 }, (_, i) => `during ${i}`), 'after']);
    expect(resumed).toEqual([true]);
    expect(opened).toHaveLength(3);
  });
});

describe('berth/client: a resume that is not recovered', () => {
  it('keeps what the new connection says of its streams, and forgets only what the old one knew', async () => {
    const { runtime, url } = await startRuntime({ history: createMemoryHistory({ maxMessages: 1 }) });
    const opened = connections(runtime);
    // Every connection is put in `news` as it arrives; `lobby` only on request.
    runtime.on('connection', (connection) => void connection.join('news'));
    runtime.on('message', ({ connection, data }) => void connection.join(String(data)));
    const client = open(url);
    const outcomes: Array<{ recovered: boolean; lost: ReadonlyArray<{ stream: string; reason: string }> }> = [];
    client.on('resumed', (event) => void outcomes.push(event));
    await eventually(() => client.state === 'open' && client.positions.has('room:news'), 'open in news');
    client.send('lobby');
    await eventually(() => client.positions.has('room:lobby'), 'in the lobby');
    // More than the lobby's history keeps, sent as the client notices the drop (before it can be back
    // and resumed, which a poll could miss): its gap cannot be replayed.
    const off = client.on('state', (state) => {
      if (state !== 'reconnecting') return;
      off();
      for (let i = 0; i < 3; i++) runtime.sendToRoom('lobby', `missed ${i}`);
    });
    (opened[0] as unknown as { socket: { terminate(): void } }).socket.terminate();
    await eventually(() => outcomes.length === 1, 'the resume outcome');
    expect(outcomes[0]).toMatchObject({ recovered: false, lost: [{ stream: 'room:lobby', reason: 'trimmed' }] });
    // The new connection is in news (the application joined it) and not in the lobby: so are the client's positions.
    expect(runtime.snapshot().rooms).toEqual({ news: [opened[1]!.id] });
    expect([...client.positions.keys()].filter((stream) => stream.startsWith('room:'))).toEqual(['room:news']);
    expect(client.positions.get('room:news')?.offset).toBe(0);
  });
});

describe('berth/client: a slow replay', () => {
  it('is not cut by connectTimeoutMs: once welcomed, the client waits for its replay however long it takes', async () => {
    const memory = createMemoryHistory();
    // A history store that takes 300 ms to read, three times the client's connect timeout.
    const history = {
      append: memory.append.bind(memory),
      position: memory.position.bind(memory),
      close: memory.close.bind(memory),
      read: async (stream: string, since: { offset: number; epoch: string }) => {
        await new Promise((resolve) => setTimeout(resolve, 300));
        return memory.read(stream, since);
      },
    };
    const { runtime, url } = await startRuntime({ history });
    const opened = connections(runtime);
    runtime.on('connection', (connection) => void connection.join('lobby'));
    const client = open(url, { connectTimeoutMs: 100 });
    const texts: string[] = [];
    client.on('message', ({ stream, data }) => void (stream === 'room:lobby' && texts.push(String(data))));
    const outcomes: boolean[] = [];
    client.on('resumed', ({ recovered }) => void outcomes.push(recovered));
    await eventually(() => client.state === 'open' && client.positions.has('room:lobby'), 'open in the lobby');
    runtime.sendToRoom('lobby', 'before');
    await eventually(() => texts.length === 1, 'the first message');
    (opened[0] as unknown as { socket: { terminate(): void } }).socket.terminate();
    await eventually(() => left(client), 'reconnecting');
    runtime.sendToRoom('lobby', 'away');
    await eventually(() => outcomes.length === 1, 'the resume');
    expect(outcomes).toEqual([true]);
    expect(texts).toEqual(['before', 'away']);
    // One connection for the drop, one to resume: no attempt was given up on.
    expect(opened).toHaveLength(2);
  });
});

describe('berth/client: typed JSON messages', () => {
  interface Chat {
    receive: { type: 'said'; text: string } | { type: 'joined'; room: string };
    send: { type: 'say'; text: string };
    request: { type: 'time' };
    reply: { now: number };
  }

  it('with json: true and a message map, values go out as JSON text and come back parsed', async () => {
    const { runtime, url } = await startRuntime();
    const received: unknown[] = [];
    runtime.on('connection', (connection) => void connection.join('lobby'));
    runtime.on('message', ({ data }) => {
      received.push(JSON.parse(String(data)));
      runtime.sendToRoom('lobby', JSON.stringify({ type: 'said', text: (JSON.parse(String(data)) as { text: string }).text }));
    });
    runtime.onRequest(() => JSON.stringify({ now: 42 }));
    const client = createClient<Chat>(url, { json: true });
    const said: string[] = [];
    client.on('message', ({ data }) => {
      // The map types `data`: a union to narrow, not a string to parse.
      if (data.type === 'said') said.push(data.text);
    });
    client.send({ type: 'say', text: 'queued before open' });
    await eventually(() => client.state === 'open', 'open');
    client.send({ type: 'say', text: 'hi' });
    await eventually(() => said.length === 2, 'two messages back');
    expect(said).toEqual(['queued before open', 'hi']);
    expect(received).toEqual([
      { type: 'say', text: 'queued before open' },
      { type: 'say', text: 'hi' },
    ]);
    const reply = await client.request({ type: 'time' });
    expect(reply.now).toBe(42);
    // Type-level only (never called): typecheck fails if the map stops typing `send`.
    const misuse = () => {
      // @ts-expect-error: not a message of the map.
      client.send({ type: 'shout' });
    };
    void misuse;
    client.close();
  });

  it('a text message that is not JSON is an `invalid-json` error and no message; its position still counts', async () => {
    const { runtime, url } = await startRuntime();
    runtime.on('connection', (connection) => void connection.join('lobby'));
    const client = createClient<Chat>(url, { json: true });
    const errors: string[] = [];
    const messages: unknown[] = [];
    client.on('error', ({ code }) => void errors.push(code));
    client.on('message', ({ data }) => void messages.push(data));
    await eventually(() => client.state === 'open' && client.positions.has('room:lobby'), 'open in the lobby');
    runtime.sendToRoom('lobby', 'not json');
    runtime.sendToRoom('lobby', JSON.stringify({ type: 'said', text: 'json' }));
    await eventually(() => messages.length === 1, 'the JSON message');
    expect(errors).toEqual(['invalid-json']);
    expect(messages).toEqual([{ type: 'said', text: 'json' }]);
    expect(client.positions.get('room:lobby')).toMatchObject({ offset: 2 });
    // Without a map and json, values other than text and bytes are refused at once.
    const raw = open(url);
    expect(() => raw.send({ type: 'say' } as never)).toThrow(TypeError);
    client.close();
  });
});
