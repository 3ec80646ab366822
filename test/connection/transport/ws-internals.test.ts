/**
 * The transport's shim over ws's private fields (src/connection/transport/ws-internals.ts), run
 * against the installed ws: each function must find the field it reads and have the effect it
 * promises. An upgrade of ws that renames or drops one of them fails here.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer, type PerMessageDeflateOptions } from 'ws';
import { deflateOption } from '../../../src/connection/transport/deflate-offer.js';
import { deflateParamsOf, rawSocketOf, releaseInflate } from '../../../src/connection/transport/ws-internals.js';
import { resolveCompression } from '../../../src/delivery/deflate.js';

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

/** A ws server with berth's own permessage-deflate answer, and the server side of one client's connection. */
async function serverSideOf(clientDeflate: PerMessageDeflateOptions | false): Promise<{
  server: WebSocket;
  request: IncomingMessage;
  client: WebSocket;
}> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: deflateOption(resolveCompression(true)) });
  await new Promise((resolve) => wss.once('listening', resolve));
  const accepted = new Promise<[WebSocket, IncomingMessage]>((resolve) => wss.once('connection', (ws, request) => resolve([ws, request])));
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as { port: number }).port}/`, { perMessageDeflate: clientDeflate });
  closers.push(async () => {
    client.terminate();
    for (const socket of wss.clients) socket.terminate();
    await new Promise((resolve) => wss.close(resolve));
  });
  await new Promise((resolve, reject) => client.once('open', resolve).once('error', reject));
  const [server, request] = await accepted;
  return { server, request, client };
}

/** What ws keeps of a negotiated permessage-deflate, spelled here as this ws spells it (not through the shim). */
function extensionOf(
  ws: WebSocket,
): { params: Record<string, unknown>; _inflate: { close(): void; destroyed: boolean } | null } | undefined {
  return (ws as unknown as { _extensions: Record<string, never> })._extensions['permessage-deflate'];
}

describe('the shim over ws private fields', () => {
  it('rawSocketOf finds the TCP socket ws frames onto: the one the upgrade came on', async () => {
    const { server, request } = await serverSideOf(false);
    const socket: Duplex = rawSocketOf(server);
    expect(socket).toBe(request.socket);
  });

  it('deflateParamsOf reads what the peer settled for the server side, and nothing for a peer without the extension', async () => {
    expect(deflateParamsOf((await serverSideOf(false)).server)).toBeUndefined();
    expect(deflateParamsOf((await serverSideOf({})).server)).toEqual({ windowBits: 15, contextTakeover: true });
    const limited = await serverSideOf({ serverMaxWindowBits: 10, serverNoContextTakeover: true });
    expect(extensionOf(limited.server)?.params).toMatchObject({ server_max_window_bits: 10, server_no_context_takeover: true });
    expect(deflateParamsOf(limited.server)).toEqual({ windowBits: 10, contextTakeover: false });
    // zlib's raw deflate cannot make 8-bit windows: such a peer gets plain frames.
    expect(deflateParamsOf((await serverSideOf({ serverMaxWindowBits: 8 })).server)).toBeUndefined();
  });

  it('releaseInflate frees the inflate context ws keeps after a compressed message, and ws makes a new one for the next', async () => {
    const { server, client } = await serverSideOf({ threshold: 0 });
    expect(extensionOf(server)?.params).toMatchObject({ client_no_context_takeover: true });
    const received: string[] = [];
    const contexts: Array<{ kept: boolean; freed: boolean }> = [];
    server.on('message', (data) => {
      received.push(String(data));
      const extension = extensionOf(server)!;
      // ws keeps the context it inflated the message with for the next one, and the shim frees it.
      const inflate = extension._inflate;
      releaseInflate(server);
      contexts.push({ kept: inflate !== null, freed: extension._inflate === null && inflate?.destroyed === true });
    });
    const text = 'the quick brown fox jumps over the lazy dog '.repeat(20);
    client.send(text);
    client.send(`${text}again`);
    await new Promise<void>((resolve) => server.on('message', () => received.length === 2 && resolve()));
    expect(received).toEqual([text, `${text}again`]);
    expect(contexts).toEqual([
      { kept: true, freed: true },
      { kept: true, freed: true },
    ]);
  });

  it('releaseInflate leaves a context that a later message may need (no client_no_context_takeover) alone', async () => {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: { threshold: 0 } });
    await new Promise((resolve) => wss.once('listening', resolve));
    const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as { port: number }).port}/`, { perMessageDeflate: { threshold: 0 } });
    closers.push(async () => {
      client.terminate();
      await new Promise((resolve) => wss.close(resolve));
    });
    const server = await new Promise<WebSocket>((resolve) => wss.once('connection', resolve));
    const kept = new Promise<boolean>((resolve) =>
      server.once('message', () => {
        const inflate = extensionOf(server)!._inflate;
        releaseInflate(server);
        resolve(inflate !== null && extensionOf(server)!._inflate === inflate);
      }),
    );
    await new Promise((resolve) => client.once('open', resolve));
    client.send('hello hello hello');
    expect(await kept).toBe(true);
  });
});
