import http from 'node:http';
import { SimulatedClock, type AnyActorRef } from 'xstate';
import { describe, expect, it } from 'vitest';
import { createRuntime, type Connection, type RuntimeEvents } from '../src/index.js';
import { connect, eventually } from './helpers/client.js';
import { rawUpgrade } from './helpers/raw.js';
import { startRuntime } from './helpers/runtime.js';

describe('maxConnections', () => {
  it('refuses with 503 and Retry-After before any handshake or actor exists', async () => {
    const inspected: string[] = [];
    const { runtime, port, url } = await startRuntime({
      maxConnections: 2,
      retryAfterSeconds: 7,
      inspect: (event) => {
        if (event.type === '@xstate.actor') inspected.push((event.actorRef as AnyActorRef).id);
      },
    });
    const refused: RuntimeEvents['refused'][] = [];
    runtime.on('refused', (event) => refused.push(event));
    const first = await connect(url);
    await connect(url);
    const actorsBefore = inspected.length;

    const response = await rawUpgrade(port);
    expect(response.status).toBe(503);
    expect(response.headers['retry-after']).toBe('7');
    expect(response.headers['sec-websocket-accept']).toBeUndefined();
    expect(inspected.length).toBe(actorsBefore);
    expect(runtime.health().connections.current).toBe(2);
    expect(runtime.health().totals).toMatchObject({ accepted: 2, refused: { 503: 1 } });
    expect(refused.map((event) => event.status)).toEqual([503]);

    // A slot that frees up is offered again.
    first.ws.close();
    await eventually(() => runtime.health().connections.current === 1, 'the slot to free');
    expect((await rawUpgrade(port)).status).toBe(101);
  });

  it('counts handshakes still being authenticated against the limit', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const { runtime, port, url } = await startRuntime({
      maxConnections: 1,
      authenticate: async () => {
        await gate;
        return { user: 'slow' };
      },
    });
    const slow = connect(url);
    await eventually(() => runtime.health().connections.pending === 1, 'the slow handshake to be pending');
    expect((await rawUpgrade(port)).status).toBe(503);
    release();
    await slow;
  });

  it('refuses with 503 once the runtime is closing', async () => {
    const { runtime, port, url } = await startRuntime();
    await connect(url);
    const closing = runtime.close({ timeoutMs: 1000 });
    // The server keeps its port until every connection is closed.
    const response = await rawUpgrade(port);
    expect(response.status).toBe(503);
    expect(response.headers['retry-after']).toBeDefined();
    await closing;
  });
});

describe('authenticate', () => {
  it.each([401, 403] as const)('a refusal answers HTTP %i', async (status) => {
    const { port, runtime } = await startRuntime({ authenticate: () => ({ refuse: status, reason: 'no entry' }) });
    let opened = 0;
    runtime.on('connection', () => opened++);
    const response = await rawUpgrade(port);
    expect(response.status).toBe(status);
    expect(response.body).toContain('no entry');
    expect(opened).toBe(0);
  });

  it('an async grant binds the user and data', async () => {
    const { runtime, url } = await startRuntime<{ role: string }>({
      authenticate: async (request) =>
        request.headers.authorization === 'Bearer good' ? { user: 'ada', data: { role: 'admin' } } : { refuse: 401 },
    });
    const opened = new Promise<Connection<{ role: string }>>((resolve) => runtime.on('connection', resolve));
    await connect(url, { headers: { authorization: 'Bearer good' } });
    const connection = await opened;
    expect(connection.user).toBe('ada');
    expect(connection.data).toEqual({ role: 'admin' });
    await expect(connect(url, { headers: { authorization: 'Bearer bad' } })).rejects.toThrow(/401/);
  });

  it('a throwing hook answers 500 and reports ERR_AUTHENTICATE_FAILED; others carry on', async () => {
    const { runtime, port, url } = await startRuntime({
      authenticate: (request) => {
        if (request.url?.includes('boom')) throw new Error('database down');
        return undefined;
      },
    });
    const errors: RuntimeEvents['error'][] = [];
    runtime.on('error', (event) => errors.push(event));
    expect((await rawUpgrade(port, '/?boom')).status).toBe(500);
    expect(errors.map((event) => event.error.code)).toEqual(['ERR_AUTHENTICATE_FAILED']);
    expect(errors[0]!.error.message).toContain('database down');
    const client = await connect(url);
    expect(client.ws.readyState).toBe(client.ws.OPEN);
  });
});

describe('allowed origins', () => {
  it('accepts a listed origin and refuses others (and none) with 403', async () => {
    const { port } = await startRuntime({ allowedOrigins: ['https://app.example'] });
    expect((await rawUpgrade(port, '/', { Origin: 'https://app.example' })).status).toBe(101);
    expect((await rawUpgrade(port, '/', { Origin: 'HTTPS://APP.EXAMPLE/' })).status).toBe(101);
    expect((await rawUpgrade(port, '/', { Origin: 'https://evil.example' })).status).toBe(403);
    expect((await rawUpgrade(port, '/')).status).toBe(403);
  });
});

describe('path', () => {
  it('upgrades only the configured path, ignoring the query string', async () => {
    const { port } = await startRuntime({ path: '/ws' });
    expect((await rawUpgrade(port, '/ws?token=1')).status).toBe(101);
    expect((await rawUpgrade(port, '/other')).status).toBe(400);
  });

  it('attaches to an existing server and leaves its other routes and upgrades alone', async () => {
    const server = http.createServer((_request, response) => response.end('plain http'));
    let otherUpgrades = 0;
    server.on('upgrade', (request, socket) => {
      if (request.url === '/elsewhere') {
        otherUpgrades++;
        socket.end('HTTP/1.1 418 I am a teapot\r\nConnection: close\r\n\r\n');
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const runtime = createRuntime({ server, path: '/ws' });
    try {
      const client = await connect(`ws://127.0.0.1:${port}/ws`);
      expect(client.ws.readyState).toBe(client.ws.OPEN);
      expect((await rawUpgrade(port, '/elsewhere')).status).toBe(418);
      expect(otherUpgrades).toBe(1);
      expect(await (await fetch(`http://127.0.0.1:${port}/`)).text()).toBe('plain http');
    } finally {
      await runtime.close({ timeoutMs: 1000 });
      // berth never closes a server it did not create.
      expect(server.listening).toBe(true);
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('maxPayload and rate limits', () => {
  it('closes with 1009 on an oversized frame; other connections carry on', async () => {
    const { runtime, url } = await startRuntime({ maxPayload: 1000 });
    const closes: RuntimeEvents['close'][] = [];
    runtime.on('close', (event) => closes.push(event));
    runtime.on('error', () => {});
    const big = await connect(url);
    const other = await connect(url);
    big.ws.send('x'.repeat(1001));
    expect((await big.closed).code).toBe(1009);
    await eventually(() => closes.length === 1, 'the close event');
    expect(closes[0]).toMatchObject({ code: 1009, cause: 'socket-error' });
    runtime.sendToAll('after');
    expect(await other.next()).toBe('after');
  });

  it('closes a flooding client with 1008 under the close policy', async () => {
    // A clock that stands still: no token comes back while the flood is read, so the burst is all that passes.
    const { runtime, url } = await startRuntime({
      clock: new SimulatedClock(),
      rateLimit: { messagesPerSecond: 1, burst: 10, policy: 'close' },
    });
    let received = 0;
    runtime.on('message', () => received++);
    const flooder = await connect(url);
    const calm = await connect(url);
    for (let i = 0; i < 200; i++) flooder.ws.send(`flood ${i}`);
    expect(await flooder.closed).toEqual({ code: 1008, reason: 'rate limit exceeded' });
    expect(received).toBe(10);
    calm.ws.send('hello');
    await eventually(() => received === 11, 'the calm client’s message');
  });

  it('drops messages over the limit under the drop policy and keeps the connection', async () => {
    const { runtime, url } = await startRuntime({
      clock: new SimulatedClock(),
      rateLimit: { messagesPerSecond: 1, burst: 5, policy: 'drop' },
    });
    let received = 0;
    let dropped = 0;
    runtime.on('message', () => received++);
    runtime.on('dropped', (event) => {
      expect(event.reason).toBe('rate-limit');
      dropped++;
    });
    const flooder = await connect(url);
    for (let i = 0; i < 100; i++) flooder.ws.send(`flood ${i}`);
    await eventually(() => received + dropped === 100, 'every message to be counted');
    expect(received).toBe(5);
    expect(runtime.health().totals.dropped).toEqual({ 'rate-limit': dropped });
    runtime.sendToAll('still open');
    expect(await flooder.next()).toBe('still open');
  });
});
