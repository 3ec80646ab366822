import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startDemo, type Demo } from '../demo/server.js';
import { connect, eventually } from './helpers/client.js';
import { RawWebSocket } from './helpers/raw.js';

/** A real ws client speaking the demo's JSON protocol; replies are checked in arrival order. */
interface ChatClient {
  /** Sends a string or bytes as they are, anything else as JSON. */
  send(message: unknown): void;
  /** The next message not yet taken, parsed. */
  next(): Promise<Record<string, unknown>>;
  close(): void;
  readonly closed: Promise<{ code: number; reason: string }>;
}

let demo: Demo;

beforeEach(async () => {
  demo = await startDemo({ port: 0, host: '127.0.0.1' });
});

afterEach(async () => {
  await demo.close();
});

async function chatClient(): Promise<ChatClient> {
  const client = await connect(`ws://127.0.0.1:${demo.port}/ws`);
  return {
    // Strings and bytes go as they are (bytes as a binary frame); anything else as JSON text.
    send: (message) => client.ws.send(typeof message === 'string' || Buffer.isBuffer(message) ? message : JSON.stringify(message)),
    next: async () => JSON.parse(await client.next()) as Record<string, unknown>,
    close: () => client.ws.close(1000),
    closed: client.closed,
  };
}

/** Connects, says hello as `name` and joins `room`, checking every reply. */
async function person(name: string, room: string, members: string[]): Promise<ChatClient> {
  const chat = await chatClient();
  expect(await chat.next()).toEqual({ type: 'welcome', id: expect.stringMatching(new RegExp(`^${demo.runtime.nodeId}-`)) });
  chat.send({ type: 'hello', name });
  expect(await chat.next()).toEqual({ type: 'hello', name });
  chat.send({ type: 'join', room });
  expect(await chat.next()).toEqual({ type: 'joined', room, members });
  return chat;
}

async function getJson(path: string): Promise<{ status: number; type: string | null; body: any }> {
  const response = await fetch(new URL(path, demo.url));
  return { status: response.status, type: response.headers.get('content-type'), body: await response.json() };
}

describe('demo chat', () => {
  it('lets two people in one room see each other, talk, whisper and leave', async () => {
    const ada = await person('ada', 'lobby', ['ada']);
    const bob = await person('bob', 'lobby', ['ada', 'bob']);
    expect(await ada.next()).toEqual({ type: 'presence', room: 'lobby', name: 'bob', event: 'join' });

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
    expect(await ada.next()).toEqual({ type: 'presence', room: 'lobby', name: 'bob', event: 'leave' });
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
    expect(await ada.next()).toEqual({ type: 'presence', room: 'lobby', name: 'bob', event: 'join' });

    bob.close();
    expect(await bob.closed).toEqual({ code: 1000, reason: '' });
    expect(await ada.next()).toEqual({ type: 'presence', room: 'lobby', name: 'bob', event: 'leave' });
    await eventually(() => demo.runtime.health().connections.current === 1, 'one connection left');
    expect((await getJson('/healthz')).body).toMatchObject({ connections: { current: 1 }, rooms: 1 });
  });

  it('answers protocol errors with their codes and keeps the connection usable', async () => {
    const chat = await chatClient();
    expect(await chat.next()).toMatchObject({ type: 'welcome' });
    const errorFor = async (message: unknown, code: string) => {
      chat.send(message);
      expect(await chat.next()).toEqual({ type: 'error', code, message: expect.any(String) });
    };

    await errorFor('{"type":"say",', 'bad-json');
    await errorFor({ type: 'dance' }, 'unknown-type');
    await errorFor([1, 2], 'invalid');
    await errorFor({ type: 'join', room: 'lobby' }, 'no-name');
    await errorFor({ type: 'say', room: 'lobby', text: 'hi' }, 'no-name');
    await errorFor({ type: 'hello', name: '   ' }, 'invalid');
    await errorFor({ type: 'hello', name: 'x'.repeat(33) }, 'invalid');

    chat.send({ type: 'hello', name: '  ada  ' });
    expect(await chat.next()).toEqual({ type: 'hello', name: 'ada' });
    await errorFor({ type: 'hello', name: 'eve' }, 'invalid');
    await errorFor({ type: 'say', room: 'lobby', text: 'hi' }, 'not-in-room');
    await errorFor({ type: 'leave', room: 'lobby' }, 'not-in-room');
    await errorFor({ type: 'join', room: 'no spaces' }, 'invalid');
    await errorFor({ type: 'join', room: 'r'.repeat(65) }, 'invalid');
    await errorFor({ type: 'whisper', to: 'bob', text: '' }, 'invalid');

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
    const chat = await chatClient();
    expect(await chat.next()).toMatchObject({ type: 'welcome' });
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
    expect(await script.text()).toContain('/ws');

    const missing = await fetch(new URL('/nope', demo.url));
    expect(missing.status).toBe(404);
    await missing.text();
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
    const raw = await RawWebSocket.open(demo.port, '/ws');
    const closing = demo.close();
    const health = await getJson('/healthz');
    expect(health.status).toBe(503);
    expect(health.body).toMatchObject({ status: 'closing' });
    raw.destroy();
    await closing;
  });
});
