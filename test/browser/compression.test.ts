import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createRuntime, type Runtime } from '../../src/index.js';
import { connect, eventually } from '../helpers/client.js';
import { headlessChromium } from '../helpers/browser.js';
import { compressedSizes, deflatedAlone } from '../compression/helpers.js';

let running: { runtime: Runtime; server: http.Server } | undefined;
afterEach(async () => {
  await running?.runtime.close({ timeoutMs: 1000 });
  running?.server.close();
  running = undefined;
});

/**
 * A runtime on an HTTP server of the test's that also serves an empty page: Chromium lets a page open
 * a WebSocket to loopback only from a loopback origin.
 */
async function startPageAndRuntime(): Promise<{ runtime: Runtime; url: string; page: string }> {
  const server = http.createServer((_request, response) => response.end('<!doctype html><title>compression</title>'));
  const runtime = createRuntime({
    server,
    compression: { threshold: 0 },
    maxPayload: 2 * 1024 * 1024,
    heartbeat: { intervalMs: 20, timeoutMs: 5000 },
  });
  running = { runtime, server };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  await runtime.ready;
  const { port } = server.address() as AddressInfo;
  return { runtime, url: `ws://127.0.0.1:${port}/`, page: `http://127.0.0.1:${port}/` };
}

/** Compressible JSON of `size` bytes. */
function json(size: number, seed: number): string {
  let text = `{"seed":${seed},"items":[`;
  for (let i = 0; text.length < size; i++) text += `{"id":${i},"text":"the quick brown fox ${i % 13}"},`;
  return text.slice(0, size);
}

describe('permessage-deflate with Chromium', () => {
  it('Chromium, a ws client with the extension and one without, in one room, receive the same broadcasts, in the room’s context; Chromium’s compressed messages arrive whole', async () => {
    const { runtime, url, page: address } = await startPageAndRuntime();
    const received: string[] = [];
    runtime.on('connection', (connection) => void connection.join('lobby'));
    runtime.on('message', ({ data }) => void received.push(String(data)));
    const plain = await connect(url, { perMessageDeflate: false });
    const deflating = await connect(url, { perMessageDeflate: true });
    const sizes = compressedSizes(deflating);

    const page = await (await headlessChromium()).newPage();
    await page.goto(address);
    await page.evaluate((address) => {
      const state = globalThis as unknown as { socket: WebSocket; messages: string[]; opened: Promise<void> };
      state.messages = [];
      state.socket = new WebSocket(address);
      state.socket.onmessage = (event) => void state.messages.push(String(event.data));
      state.opened = new Promise((resolve) => (state.socket.onopen = () => resolve()));
    }, url);
    await page.evaluate(() => (globalThis as unknown as { opened: Promise<void> }).opened);
    // Chromium keeps its inflate context between messages: berth compresses against earlier ones.
    const extensions = await page.evaluate(() => (globalThis as unknown as { socket: WebSocket }).socket.extensions);
    expect(extensions).toMatch(/^permessage-deflate/);
    expect(extensions).not.toMatch(/server_no_context_takeover/);
    await eventually(() => runtime.snapshot().rooms.lobby?.length === 3, 'all three in the lobby');

    const lengths = [0, 1, 125, 126, 4096, 65_536, 300_000, 1024 * 1024];
    // Twice: the room's context opens with the first message and serves all that follow.
    const sent = [...lengths.map((size, i) => json(size, i)), ...lengths.map((size, i) => json(size, i + 100))];
    // In one turn: the outbox coalesces the small ones; the large ones drain over several turns, and the
    // heartbeat's pings (control frames, every 20 ms) go out between those writes.
    for (const message of sent) runtime.sendToRoom('lobby', message);
    expect(await plain.received(sent.length, 20_000)).toEqual(sent);
    expect(await deflating.received(sent.length, 20_000)).toEqual(sent);
    // Every message but the empty ones came compressed in the room's context, the second 126-byte one
    // a fraction of its size alone (it refers back to the 125-byte one before it): Chromium took the same frames.
    expect(sizes.length).toBe(sent.length - 2);
    expect(sizes[9]! * 3).toBeLessThan(deflatedAlone(sent[11]!));
    await expect
      .poll(() => page.evaluate(() => (globalThis as unknown as { messages: string[] }).messages.length), { timeout: 20_000 })
      .toBe(sent.length);
    const inBrowser = await page.evaluate(() => (globalThis as unknown as { messages: string[] }).messages);
    expect(inBrowser.map((m) => m.length)).toEqual(sent.map((m) => m.length));
    expect(inBrowser).toEqual(sent);

    // Chromium compresses what it sends: each arrives whole, in order.
    await page.evaluate((messages) => {
      for (const message of messages) (globalThis as unknown as { socket: WebSocket }).socket.send(message);
    }, sent);
    await eventually(() => received.length === sent.length, 'Chromium’s messages', 20_000);
    expect(received).toEqual(sent);
    await page.close();
  }, 60_000);
});
