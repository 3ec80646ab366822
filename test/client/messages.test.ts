/**
 * berth/client against a server that breaks berth.v1: a real ws server sends it frames that are no
 * berth.v1 message, and the client skips each with an `error` event that says what is wrong, or
 * fails the request it names, and carries on.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { createClient, type BerthClient } from '../../src/client.js';
import { eventually } from '../helpers/client.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

/** A ws server that speaks berth.v1 by hand: `script` runs on each connection. */
async function handmade(script: (ws: WebSocket) => void): Promise<string> {
  const server = new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: () => 'berth.v1' });
  await new Promise((resolve) => server.once('listening', resolve));
  server.on('connection', script);
  cleanups.push(async () => {
    for (const ws of server.clients) ws.terminate();
    await new Promise((resolve) => server.close(resolve));
  });
  return `ws://127.0.0.1:${(server.address() as { port: number }).port}/`;
}

function client(url: string): BerthClient {
  const berth = createClient(url, { backoff: { initialMs: 50, maxMs: 200 } });
  cleanups.push(async () => berth.close());
  return berth;
}

const header = (text: string) => {
  const json = new TextEncoder().encode(text);
  return Buffer.concat([Buffer.from([json.length >> 8, json.length & 0xff]), json]);
};

describe('berth/client: a frame from the server that is no berth.v1 message', () => {
  it('is skipped with an error event that says what is wrong, never thrown; a later kind is ignored; the client carries on', async () => {
    const url = await handmade((ws) => {
      ws.send(JSON.stringify({ t: 'welcome', v: 1, id: 'c1' }));
      ws.send('not json');
      ws.send(Buffer.from([0]));
      ws.send(Buffer.from([0, 9, 123]));
      ws.send(Buffer.concat([header('[1]'), Buffer.from([1, 2])]));
      ws.send(JSON.stringify({ t: 7 }));
      ws.send(JSON.stringify({ t: 'msg', s: 'room:a', o: 'one', e: 'x', d: 'hi' }));
      ws.send(JSON.stringify({ t: 'error', code: 'oops' }));
      // A kind of a later version of berth.v1: a client ignores it.
      ws.send(JSON.stringify({ t: 'later', x: 1 }));
      ws.send(JSON.stringify({ t: 'msg', s: 'room:a', o: 1, e: 'x', d: 'marker' }));
    });
    const berth = client(url);
    const errors: Array<{ code: string; message: string }> = [];
    berth.on('error', (error) => void errors.push(error));
    const messages: unknown[] = [];
    berth.on('message', (message) => void messages.push(message));
    await eventually(() => messages.length === 1, 'the marker');
    expect(messages).toEqual([{ stream: 'room:a', offset: 1, epoch: 'x', data: 'marker' }]);
    const why = (text: string) => ({ code: 'invalid-server-message', message: `the server sent no berth.v1 message: ${text}` });
    expect(errors).toEqual([
      why('a text frame must be a JSON object'),
      why('a binary frame starts with a 16-bit header length'),
      why('binary header longer than the frame'),
      why('a message must be a JSON object with "t"'),
      why('a message needs "t", a string: {"t":7}'),
      why(
        '"msg" needs "s", "o" (an integer ≥ 0) and "e", and "d", a string, or a binary payload: {"t":"msg","s":"room:a","o":"one","e":"x…',
      ),
      why('"error" needs "code" and "message", strings (and "id"): {"t":"error","code":"oops"}'),
    ]);
    expect(berth.state).toBe('open');
    expect(berth.positions.get('room:a')).toEqual({ offset: 1, epoch: 'x' });
  });

  it('that answers a request (a reply or error with its id) fails that request instead', async () => {
    const url = await handmade((ws) => {
      ws.send(JSON.stringify({ t: 'welcome', v: 1, id: 'c1' }));
      ws.on('message', (data) => {
        const { id, d } = JSON.parse(String(data)) as { id: number; d: string };
        ws.send(JSON.stringify(d === 'no d' ? { t: 'reply', id } : { t: 'error', id, message: 'no code' }));
      });
    });
    const berth = client(url);
    const errors: unknown[] = [];
    berth.on('error', (error) => void errors.push(error));
    await eventually(() => berth.state === 'open', 'open');
    await expect(berth.request('no d')).rejects.toMatchObject({
      code: 'invalid-server-message',
      message: 'the server sent no berth.v1 message: "reply" needs "id", and "d", a string, or a binary payload: {"t":"reply","id":0}',
    });
    await expect(berth.request('no code')).rejects.toMatchObject({ code: 'invalid-server-message' });
    expect(errors).toEqual([]);
  });
});
