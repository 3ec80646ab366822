import { createHash } from 'node:crypto';
import http from 'node:http';
import { readFile } from 'node:fs/promises';
import WebSocket from 'ws';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadPageModules, staticImports } from '../demo/modules.js';
import { startDemo, type Demo } from '../demo/server.js';
import { createClient, type WebSocketClass } from '../src/client.js';
import { connect, eventually } from './helpers/client.js';
import { RawWebSocket } from './helpers/raw.js';

/** A real ws client speaking the demo's JSON protocol; replies are checked in arrival order. */
interface ChatClient {
  /** Its connection id, from the welcome. */
  id: string;
  /** Sends a string or bytes as they are, anything else as JSON. */
  send(message: unknown): void;
  /** The next message not yet taken, parsed. */
  next(): Promise<Record<string, unknown>>;
  close(): void;
  /** Drops the TCP connection without a close frame, as a lost network would. */
  terminate(): void;
  readonly closed: Promise<{ code: number; reason: string }>;
}

let demo: Demo;

beforeEach(async () => {
  demo = await startDemo({ port: 0, host: '127.0.0.1' });
});

afterEach(async () => {
  await demo.close();
});

const wsUrl = (name: string) => `ws://127.0.0.1:${demo.port}/ws?name=${encodeURIComponent(name)}`;

/** Connects as `name` (raw: no subprotocol) and takes the welcome. */
async function chatClient(name: string): Promise<ChatClient> {
  const client = await connect(wsUrl(name));
  const next = async () => JSON.parse(await client.next()) as Record<string, unknown>;
  const welcome = await next();
  expect(welcome).toEqual({ type: 'welcome', id: expect.stringMatching(new RegExp(`^${demo.runtime.nodeId}-`)), name: name.trim() });
  return {
    id: welcome.id as string,
    // Strings and bytes go as they are (bytes as a binary frame); anything else as JSON text.
    send: (message) => client.ws.send(typeof message === 'string' || Buffer.isBuffer(message) ? message : JSON.stringify(message)),
    next,
    close: () => client.ws.close(1000),
    terminate: () => client.ws.terminate(),
    closed: client.closed,
  };
}

/** Connects as `name` and joins `room`, checking every reply. */
async function person(name: string, room: string, members: string[]): Promise<ChatClient> {
  const chat = await chatClient(name);
  chat.send({ type: 'join', room });
  expect(await chat.next()).toEqual({ type: 'joined', room, members });
  return chat;
}

/** The status, headers and body of a GET of `path` exactly as written (fetch would resolve `..` first). */
function rawGet(path: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port: demo.port, path }, (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => resolve({ status: response.statusCode!, headers: response.headers, body }));
      })
      .on('error', reject);
  });
}

async function getJson(path: string): Promise<{ status: number; type: string | null; body: any }> {
  const response = await fetch(new URL(path, demo.url));
  return { status: response.status, type: response.headers.get('content-type'), body: await response.json() };
}

describe('demo chat', () => {
  it('lets two people in one room see each other, talk, whisper and leave', async () => {
    const ada = await person('ada', 'lobby', ['ada']);
    const bob = await person('bob', 'lobby', ['ada', 'bob']);
    expect(await ada.next()).toEqual({ type: 'presence', room: 'lobby', name: 'bob', id: bob.id, event: 'join' });

    ada.send({ type: 'say', room: 'lobby', text: 'hi bob' });
    const fromAda = { type: 'said', room: 'lobby', from: 'ada', text: 'hi bob', at: expect.any(Number) };
    expect(await ada.next()).toEqual(fromAda);
    expect(await bob.next()).toEqual(fromAda);

    bob.send({ type: 'say', room: 'lobby', text: 'hello ada' });
    const fromBob = { type: 'said', room: 'lobby', from: 'bob', text: 'hello ada', at: expect.any(Number) };
    expect(await bob.next()).toEqual(fromBob);
    expect(await ada.next()).toEqual(fromBob);

    bob.send({ type: 'whisper', to: 'ada', text: 'psst' });
    expect(await ada.next()).toEqual({ type: 'whispered', from: 'bob', text: 'psst' });

    // Joining again answers with the members but announces nothing: bob's next message is ada's `said`.
    ada.send({ type: 'join', room: 'lobby' });
    expect(await ada.next()).toEqual({ type: 'joined', room: 'lobby', members: ['ada', 'bob'] });
    ada.send({ type: 'say', room: 'lobby', text: 'still here' });
    expect(await ada.next()).toMatchObject({ type: 'said', text: 'still here' });
    expect(await bob.next()).toMatchObject({ type: 'said', text: 'still here' });

    bob.send({ type: 'leave', room: 'lobby' });
    expect(await bob.next()).toEqual({ type: 'left', room: 'lobby' });
    expect(await ada.next()).toEqual({ type: 'presence', room: 'lobby', name: 'bob', id: bob.id, event: 'leave' });
    bob.send({ type: 'say', room: 'lobby', text: 'anyone?' });
    expect(await bob.next()).toMatchObject({ type: 'error', code: 'not-in-room' });
  });

  it('reports connections and rooms on /healthz', async () => {
    await person('ada', 'lobby', ['ada']);
    await person('bob', 'lobby', ['ada', 'bob']);
    const health = await getJson('/healthz');
    expect(health.status).toBe(200);
    expect(health.type).toMatch(/^application\/json/);
    expect(health.body).toMatchObject({ status: 'ok', connections: { current: 2 }, rooms: 1, users: 2 });
  });

  it('tells the others when a connection closes', async () => {
    const ada = await person('ada', 'lobby', ['ada']);
    const bob = await person('bob', 'lobby', ['ada', 'bob']);
    expect(await ada.next()).toEqual({ type: 'presence', room: 'lobby', name: 'bob', id: bob.id, event: 'join' });

    bob.close();
    expect(await bob.closed).toEqual({ code: 1000, reason: '' });
    expect(await ada.next()).toEqual({ type: 'presence', room: 'lobby', name: 'bob', id: bob.id, event: 'leave' });
    await eventually(() => demo.runtime.health().connections.current === 1, 'one connection left');
    expect((await getJson('/healthz')).body).toMatchObject({ connections: { current: 1 }, rooms: 1 });
  });

  it('tells the others a connection dropped when it ends without a close frame', async () => {
    const ada = await person('ada', 'lobby', ['ada']);
    const bob = await person('bob', 'lobby', ['ada', 'bob']);
    expect(await ada.next()).toMatchObject({ type: 'presence', name: 'bob', event: 'join' });
    bob.terminate();
    expect(await ada.next()).toEqual({ type: 'presence', room: 'lobby', name: 'bob', id: bob.id, event: 'leave', dropped: true });
  });

  it('takes the name from the upgrade URL, trimmed, and refuses a missing, blank or too long one with 401', async () => {
    const refusal = async (path: string) => {
      const response = await new Promise<http.IncomingMessage>((resolve, reject) => {
        const ws = new WebSocket(`ws://127.0.0.1:${demo.port}${path}`);
        ws.once('unexpected-response', (_request, res) => resolve(res));
        ws.once('open', () => reject(new Error(`${path} was accepted`)));
        ws.once('error', () => {});
      });
      let body = '';
      for await (const chunk of response) body += String(chunk);
      return { status: response.statusCode, body };
    };
    for (const path of ['/ws', '/ws?name=', '/ws?name=%20%20%20', `/ws?name=${'x'.repeat(33)}`, '/ws?nom=ada']) {
      expect(await refusal(path)).toEqual({ status: 401, body: 'name must be 1–32 characters after trimming: /ws?name=…\n' });
    }
    // Trimmed; 32 characters as a person counts them, not UTF-16 units.
    const ada = await chatClient('  ada  ');
    ada.send({ type: 'join', room: 'lobby' });
    expect(await ada.next()).toEqual({ type: 'joined', room: 'lobby', members: ['ada'] });
    await chatClient('🐙'.repeat(32));
    expect(demo.runtime.health().connections.current).toBe(2);
  });

  it('answers protocol errors with their codes and keeps the connection usable', async () => {
    const chat = await chatClient('ada');
    const errorFor = async (message: unknown, code: string) => {
      chat.send(message);
      expect(await chat.next()).toEqual({ type: 'error', code, message: expect.any(String) });
    };

    await errorFor('{"type":"say",', 'bad-json');
    await errorFor({ type: 'dance' }, 'unknown-type');
    await errorFor([1, 2], 'invalid');
    // The name comes with the upgrade; there is no renaming.
    await errorFor({ type: 'hello', name: 'eve' }, 'unknown-type');
    await errorFor({ type: 'say', room: 'lobby', text: 'hi' }, 'not-in-room');
    await errorFor({ type: 'leave', room: 'lobby' }, 'not-in-room');
    await errorFor({ type: 'join', room: 'no spaces' }, 'invalid');
    await errorFor({ type: 'join', room: 'r'.repeat(65) }, 'invalid');
    await errorFor({ type: 'whisper', to: 'bob', text: '' }, 'invalid');
    await errorFor({ type: 'whisper', to: '  ', text: 'psst' }, 'invalid');

    chat.send({ type: 'join', room: 'lobby' });
    expect(await chat.next()).toEqual({ type: 'joined', room: 'lobby', members: ['ada'] });
    await errorFor({ type: 'say', room: 'lobby', text: 'y'.repeat(2001) }, 'invalid');
    chat.send(Buffer.from([1, 2, 3]));
    expect(await chat.next()).toMatchObject({ type: 'error', code: 'invalid' });

    // Handled in order even when sent back to back: the join completes before the say is checked.
    chat.send({ type: 'join', room: 'kitchen' });
    chat.send({ type: 'say', room: 'kitchen', text: 'first!' });
    expect(await chat.next()).toEqual({ type: 'joined', room: 'kitchen', members: ['ada'] });
    expect(await chat.next()).toMatchObject({ type: 'said', room: 'kitchen', from: 'ada', text: 'first!' });
  });

  it('closes a connection that sends more than 64 KiB with 1009', async () => {
    const errors: string[] = [];
    demo.runtime.on('error', ({ error }) => void errors.push(error.code));
    const chat = await chatClient('ada');
    chat.send({ type: 'say', room: 'lobby', text: 'z'.repeat(64 * 1024) });
    expect(await chat.closed).toMatchObject({ code: 1009 });
    expect(errors).toEqual(['ERR_SOCKET']);
  });

  it('serves the chat page and its assets, and 404 for anything else', async () => {
    const page = await fetch(demo.url);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await page.text();
    expect(html).toContain('<title>berth chat</title>');
    expect(html).toContain('src="/chat.js"');

    const script = await fetch(new URL('/chat.js', demo.url));
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(await script.text()).toContain("import { createClient } from 'berth/client';");

    const missing = await fetch(new URL('/nope', demo.url));
    expect(missing.status).toBe(404);
    await missing.text();
  });

  it('serves berth/client and its dependencies as the import map names them, allowed by a strict CSP', async () => {
    const page = await fetch(demo.url);
    const html = await page.text();
    const importMap = /<script type="importmap">([\s\S]*?)<\/script>/.exec(html)![1]!;
    const hash = createHash('sha256').update(importMap).digest('base64');
    const csp = page.headers.get('content-security-policy')!;
    expect(csp).toContain(`script-src 'self' 'sha256-${hash}';`);
    expect(csp).toContain("default-src 'none'");
    expect(csp).not.toContain('unsafe-inline');

    const { imports } = JSON.parse(importMap) as { imports: Record<string, string> };
    expect(Object.keys(imports).sort()).toEqual(['berth/client', 'mitt', 'xstate']);
    // Every module the entries reach through static imports is served; every bare import is in the map.
    const seen = new Set<string>();
    const pending = Object.values(imports);
    for (let url = pending.pop(); url !== undefined; url = pending.pop()) {
      if (seen.has(url)) continue;
      seen.add(url);
      const response = await fetch(new URL(url, demo.url));
      expect(response.status, url).toBe(200);
      expect(response.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
      for (const specifier of staticImports(await response.text())) {
        if (specifier.startsWith('.')) pending.push(new URL(specifier, new URL(url, demo.url)).pathname);
        else expect(Object.keys(imports), `${url} imports ${specifier}`).toContain(specifier);
      }
    }
    expect([...seen].filter((url) => url.startsWith('/modules/berth/')).sort()).toEqual([
      '/modules/berth/machines/client.machine.js',
      '/modules/berth/src/client.js',
      '/modules/berth/src/client/api.js',
      '/modules/berth/src/client/client.js',
      '/modules/berth/src/client/messages.js',
      '/modules/berth/src/interpreter/actions.js',
      '/modules/berth/src/interpreter/instance.js',
      '/modules/berth/src/interpreter/machine.js',
      '/modules/berth/src/interpreter/refusals.js',
      '/modules/berth/src/interpreter/steps.js',
      '/modules/berth/src/util/event-hub.js',
      '/modules/berth/src/util/mitt.js',
      '/modules/berth/src/util/thenable.js',
      '/modules/berth/src/util/timers.js',
      '/modules/berth/src/wire/codec.js',
      '/modules/berth/src/wire/v1.js',
    ]);
    expect(seen.has('/modules/mitt/dist/mitt.mjs')).toBe(true);
  });

  it('serves only its list of files: no path reaches another', async () => {
    for (const path of [
      '/modules/berth/../../package.json',
      '/modules/berth/%2e%2e/%2e%2e/package.json',
      '/modules/berth/src/client.js/../index.js',
      '/modules/berth/src/index.js',
      '/modules/berth/src/client.js.map',
      '/modules/berth/src/client.d.ts',
      '/modules/berth/src//client.js',
      '/modules/xstate/package.json',
      '/modules/xstate/dist/xstate.cjs.js',
      '/modules/xstate/dist/../package.json',
      '/modules/mitt/dist/mitt.js',
      '/modules/',
      '/public/chat.js',
      '/server.ts',
      '/../package.json',
      '//etc/passwd',
    ]) {
      expect((await rawGet(path)).status, path).toBe(404);
    }
    expect((await rawGet('/modules/berth/src/client.js')).status).toBe(200);
    expect((await rawGet('/modules/berth/src/client.js?v=1')).status).toBe(200);
  });

  it('fails to start, saying what to do, when berth/client is not built', async () => {
    const html = await readFile(new URL('../demo/public/index.html', import.meta.url), 'utf8');
    await expect(loadPageModules(html, { dist: '/nonexistent/dist' })).rejects.toThrow(/berth\/client is not built .*: run npm run build$/);
    await expect(loadPageModules(html.replace('/modules/xstate/dist/xstate.esm.js', '/modules/xstate/dist/xstate.cjs.js'))).rejects.toThrow(
      'its browser build is node_modules/xstate/dist/xstate.esm.js',
    );
  });

  it('lets a berth/client that dropped back into its rooms, with what it missed; the others see it lost and back', async () => {
    const ada = await person('ada', 'lobby', ['ada']);
    // A WebSocket that can be cut, and kept from coming back until the test says so.
    const sockets: WebSocket[] = [];
    let away = false;
    class Network extends WebSocket {
      constructor(url: string, protocols: string[]) {
        super(away ? 'ws://127.0.0.1:1/' : url, protocols);
        sockets.push(this);
      }
    }
    const bob = createClient(wsUrl('bob'), { WebSocket: Network as unknown as WebSocketClass, backoff: { initialMs: 20, maxMs: 50 } });
    const seen: Array<[string, unknown]> = [];
    bob.on('message', ({ stream, data }) => void seen.push([stream.split(':')[0]!, JSON.parse(data as string)]));
    bob.on('resumed', (resumed) => void seen.push(['resumed', resumed.recovered]));
    try {
      await eventually(() => bob.state === 'open', 'bob open');
      bob.send(JSON.stringify({ type: 'join', room: 'lobby' }));
      expect(await ada.next()).toMatchObject({ type: 'presence', name: 'bob', event: 'join' });
      const first = bob.id;

      away = true;
      sockets.at(-1)!.terminate();
      expect(await ada.next()).toEqual({ type: 'presence', room: 'lobby', name: 'bob', id: first, event: 'leave', dropped: true });
      ada.send({ type: 'say', room: 'lobby', text: 'one' });
      ada.send({ type: 'whisper', to: 'bob', text: 'psst' });
      ada.send({ type: 'say', room: 'lobby', text: 'two' });
      expect(await ada.next()).toMatchObject({ type: 'said', text: 'one' });
      expect(await ada.next()).toMatchObject({ type: 'said', text: 'two' });
      seen.length = 0;
      away = false;

      expect(await ada.next()).toEqual({ type: 'presence', room: 'lobby', name: 'bob', id: bob.id, event: 'join', resumed: true });
      expect(bob.id).not.toBe(first);
      await eventually(() => seen.length >= 7, 'the replay, the resume and the members');
      const said = (text: string) => ['room', { type: 'said', room: 'lobby', from: 'ada', text, at: expect.any(Number) }];
      // What bob missed, each stream in order and once, before the resume is reported; then the room as it is now.
      const of = (kind: string) => seen.filter(([stream]) => stream === kind);
      expect(of('room')).toEqual([
        ['room', { type: 'presence', room: 'lobby', name: 'bob', id: first, event: 'leave', dropped: true }],
        said('one'),
        said('two'),
      ]);
      expect(of('user')).toEqual([['user', { type: 'whispered', from: 'ada', text: 'psst' }]]);
      expect(of('conn')).toEqual([
        ['conn', { type: 'welcome', id: bob.id, name: 'bob' }],
        ['conn', { type: 'joined', room: 'lobby', members: ['ada', 'bob'] }],
      ]);
      // Only the replay comes before `resumed`; what the new connection was sent (its welcome, the
      // room's members now) follows it.
      const resumedAt = seen.findIndex(([stream]) => stream === 'resumed');
      expect(seen.slice(resumedAt)).toEqual([
        ['resumed', true],
        ['conn', { type: 'welcome', id: bob.id, name: 'bob' }],
        ['conn', { type: 'joined', room: 'lobby', members: ['ada', 'bob'] }],
      ]);
      ada.send({ type: 'say', room: 'lobby', text: 'three' });
      await eventually(() => seen.length === 8, 'the next message');
      expect(seen[7]).toEqual(said('three'));
    } finally {
      bob.close();
    }
  });

  it('closes every client with 1001 when the demo closes', async () => {
    const ada = await person('ada', 'lobby', ['ada']);
    await demo.close();
    expect(await ada.closed).toMatchObject({ code: 1001 });
  });

  it('serves Prometheus metrics from prom-client on /metrics', async () => {
    await person('ada', 'lobby', ['ada']);
    await person('bob', 'lobby', ['ada', 'bob']);
    const response = await fetch(`${demo.url}metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    expect(text).toContain('# TYPE berth_connections gauge');
    expect(text).toMatch(/^berth_connections 2$/m);
    expect(text).toContain('# TYPE berth_broadcast_fanout_seconds histogram');
  });

  it('answers /healthz with 503 while shutting down', async () => {
    // A raw client never answers the close frame, so the shutdown waits on it until it is destroyed.
    const raw = await RawWebSocket.open(demo.port, '/ws?name=ada');
    const closing = demo.close();
    const health = await getJson('/healthz');
    expect(health.status).toBe(503);
    expect(health.body).toMatchObject({ status: 'closing' });
    raw.destroy();
    await closing;
  });
});
