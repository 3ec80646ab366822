import http from 'node:http';
import type { AddressInfo } from 'node:net';
import zlib from 'node:zlib';
import { describe, expect, it, vi } from 'vitest';
import { WebSocketServer } from 'ws';
import type { Connection } from '../../src/index.js';
import { DeflateStream } from '../../src/delivery/deflate-stream.js';
import { RESYNC_EVERY } from '../../src/delivery/deflate-contexts.js';
import { connect } from '../helpers/client.js';
import { nextConnection, startRuntime } from '../helpers/runtime.js';
import { chat, compressedSizes, deflatedAlone, negotiated, seeded } from './helpers.js';

const turn = () => new Promise((resolve) => setImmediate(resolve));
const sum = (values: readonly number[]) => values.reduce((a, b) => a + b, 0);

/**
 * A client of the runtime and its connection there, with the sizes of the compressed messages it
 * receives. One at a time: the connection is the runtime's next.
 */
async function open(runtime: Parameters<typeof nextConnection>[0], url: string, options: object = { perMessageDeflate: true }) {
  const connected = nextConnection(runtime);
  const client = await connect(url, options);
  return { client, connection: await connected, sizes: compressedSizes(client) };
}

async function openMany<T>(count: number, make: () => Promise<T>): Promise<T[]> {
  const made: T[] = [];
  for (let i = 0; i < count; i++) made.push(await make());
  return made;
}

describe('permessage-deflate: a room’s messages share one compression context', () => {
  it('compresses each room message once, against the ones before it: as small on the wire as ws with a context per connection', async () => {
    const { runtime, url } = await startRuntime({ compression: true });
    const members = await openMany(20, () => open(runtime, url));
    const plain = await openMany(3, () => open(runtime, url, { perMessageDeflate: false }));
    for (const { connection } of [...members, ...plain]) await connection.join('lobby');
    // The first message finds no context: the room gets one as the message is queued for a second member, and it is the context's first.
    runtime.sendToRoom('lobby', chat('lobby', 0));
    for (const { client } of members) await client.received(1);

    const messages = Array.from({ length: 30 }, (_, i) => chat('lobby', i + 1));
    const streamed = vi.spyOn(DeflateStream.prototype, 'deflate');
    const alone = vi.spyOn(zlib, 'deflateRawSync');
    try {
      for (const message of messages) {
        runtime.sendToRoom('lobby', message);
        await turn();
      }
      for (const { client } of [...members, ...plain]) expect(await client.received(31)).toEqual([chat('lobby', 0), ...messages]);
      // Once per message for all 20, and nothing compressed per recipient.
      expect(streamed).toHaveBeenCalledTimes(messages.length);
      expect(alone).not.toHaveBeenCalled();
    } finally {
      streamed.mockRestore();
      alone.mockRestore();
    }
    // Every member got the same bytes, and far fewer than each message compressed on its own.
    expect(members[0]!.sizes[0]).toBe(deflatedAlone(chat('lobby', 0)));
    const wire = members.map(({ sizes }) => sum(sizes.slice(1)));
    expect(new Set(wire).size).toBe(1);
    const contextFree = sum(messages.map(deflatedAlone));
    expect(wire[0]! * 1.5).toBeLessThan(contextFree);

    // ws with a compression context per connection, the same messages: berth's are no larger than 1.02 × its.
    const server = http.createServer();
    const wss = new WebSocketServer({ server, perMessageDeflate: true });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const peer = await connect(`ws://127.0.0.1:${(server.address() as AddressInfo).port}/`, { perMessageDeflate: true });
      const sizes = compressedSizes(peer);
      const [socket] = [...wss.clients];
      for (const message of [chat('lobby', 0), ...messages]) socket!.send(message);
      await peer.received(31);
      expect(wire[0]!).toBeLessThanOrEqual(sum(sizes.slice(1)) * 1.02);
      peer.ws.close();
    } finally {
      wss.close();
      server.close();
    }
  });

  it('a client out of step gets messages compressed on its own until the context starts afresh, then shares it again', async () => {
    const { runtime, url } = await startRuntime({ compression: true });
    const steady = await open(runtime, url);
    const strayed = await open(runtime, url);
    for (const { connection } of [steady, strayed]) await connection.join('lobby');
    runtime.sendToRoom('lobby', chat('lobby', 0));
    await strayed.client.received(1);
    const room = Array.from({ length: 3 * RESYNC_EVERY }, (_, i) => chat('lobby', i + 1));
    for (const message of room.slice(0, 5)) {
      runtime.sendToRoom('lobby', message);
      await turn();
    }
    // A direct message, compressed on its own, enters the client's window: it no longer matches the room's context.
    strayed.connection.send(chat('direct', 1));
    for (const message of room.slice(5)) {
      runtime.sendToRoom('lobby', message);
      await turn();
    }
    expect(await steady.client.received(room.length + 1)).toEqual([chat('lobby', 0), ...room]);
    expect(await strayed.client.received(room.length + 2)).toEqual([
      chat('lobby', 0),
      ...room.slice(0, 5),
      chat('direct', 1),
      ...room.slice(5),
    ]);
    const steadySizes = steady.sizes.slice(1);
    const straySizes = strayed.sizes.slice(1).filter((_, i) => i !== 5);
    // Right after the direct message: each room message on its own, larger than the steady client's.
    expect(straySizes[5]).toBe(deflatedAlone(room[5]!));
    expect(straySizes[5]!).toBeGreaterThan(steadySizes[5]!);
    // Within RESYNC_EVERY messages the context started afresh, and from there both get the same frames.
    const tail = room.length - 5 - RESYNC_EVERY - 1;
    expect(straySizes.slice(-tail)).toEqual(steadySizes.slice(-tail));
    expect(sum(steadySizes.slice(-tail))).toBeLessThan(sum(room.slice(-tail).map(deflatedAlone)));
  });

  it('a frame an outbox drops is never counted: what follows it arrives whole (drop-oldest)', async () => {
    const { runtime, url } = await startRuntime({ compression: true });
    const members = await openMany(3, () => open(runtime, url));
    const lossy = await open(runtime, url);
    for (const { connection } of [...members, lossy]) await connection.join('lobby');
    lossy.connection.setOutboxLimits({ maxMessages: 4, overflow: 'drop-oldest' });
    runtime.sendToRoom('lobby', chat('lobby', 0));
    await lossy.client.received(1);
    runtime.sendToRoom('lobby', chat('lobby', 1));
    await lossy.client.received(2);
    // Ten in one turn: the lossy outbox keeps the last four, the others take all ten in the room's context.
    const burst = Array.from({ length: 10 }, (_, i) => chat('lobby', i + 2));
    for (const message of burst) runtime.sendToRoom('lobby', message);
    const after = Array.from({ length: 5 }, (_, i) => chat('lobby', i + 12));
    await turn();
    for (const message of after) {
      runtime.sendToRoom('lobby', message);
      await turn();
    }
    const all = [chat('lobby', 0), chat('lobby', 1), ...burst, ...after];
    for (const { client } of members) expect(await client.received(all.length)).toEqual(all);
    expect(await lossy.client.received(2 + 4 + after.length)).toEqual([chat('lobby', 0), chat('lobby', 1), ...burst.slice(-4), ...after]);
    expect(lossy.client.ws.readyState).toBe(lossy.client.ws.OPEN);
  });

  it('an empty message between a context’s messages goes plain (a sync flush of nothing is no bytes)', async () => {
    const { runtime, url } = await startRuntime({ compression: { threshold: 0 } });
    const members = await openMany(2, () => open(runtime, url));
    for (const { connection } of members) await connection.join('lobby');
    const sent = [chat('lobby', 0), '', chat('lobby', 1), '', '', 'x', chat('lobby', 2)];
    for (const message of sent) runtime.sendToRoom('lobby', message);
    for (const { client, sizes } of members) {
      expect(await client.received(sent.length)).toEqual(sent);
      expect(sizes.length).toBe(4);
    }
  });

  it('negotiation: a client that asks for server_no_context_takeover gets it, and contexts: 0 gives it to everyone', async () => {
    const { url } = await startRuntime({ compression: true });
    const keeps = await connect(url, { perMessageDeflate: true });
    expect(negotiated(keeps)).toMatchObject({ client_no_context_takeover: true });
    expect(negotiated(keeps)).not.toHaveProperty('server_no_context_takeover');
    const asks = await connect(url, { perMessageDeflate: { serverNoContextTakeover: true } });
    expect(negotiated(asks)).toMatchObject({ server_no_context_takeover: true });
    const none = await startRuntime({ compression: { contexts: 0 } });
    const told = await connect(none.url, { perMessageDeflate: true });
    expect(negotiated(told)).toMatchObject({ server_no_context_takeover: true, client_no_context_takeover: true });
  });

  it('a random mix of rooms, everyone, direct sends, exceptions, joins and leaves: every client receives exactly what it should', async () => {
    const { runtime, url } = await startRuntime({ compression: { threshold: 256, contexts: 2 } });
    const random = seeded(13);
    const kinds: object[] = [
      { perMessageDeflate: true },
      { perMessageDeflate: true },
      { perMessageDeflate: true },
      { perMessageDeflate: true },
      { perMessageDeflate: { serverNoContextTakeover: true } },
      { perMessageDeflate: { serverMaxWindowBits: 10 } },
      { perMessageDeflate: false },
    ];
    const peers: Awaited<ReturnType<typeof open>>[] = [];
    for (const options of kinds) peers.push(await open(runtime, url, options));
    const rooms = ['a', 'b', 'c'];
    const members = new Map(rooms.map((room) => [room, new Set<number>()]));
    const expected: string[][] = peers.map(() => []);
    let seq = 0;
    const body = (room: string) => (random() < 0.15 ? `short ${seq++}` : chat(room, seq++));
    const toggle = async (peer: number, room: string) => {
      const connection: Connection = peers[peer]!.connection;
      if (members.get(room)!.has(peer)) {
        await connection.leave(room);
        members.get(room)!.delete(peer);
      } else {
        await connection.join(room);
        members.get(room)!.add(peer);
      }
    };
    for (let peer = 0; peer < peers.length; peer++) await toggle(peer, 'a');
    for (let round = 0; round < 60; round++) {
      if (random() < 0.3) await toggle(Math.floor(random() * peers.length), rooms[Math.floor(random() * rooms.length)]!);
      const sends = 1 + Math.floor(random() * 5);
      for (let i = 0; i < sends; i++) {
        const pick = random();
        const except = random() < 0.2 ? Math.floor(random() * peers.length) : undefined;
        const options = except === undefined ? undefined : { except: peers[except]!.connection };
        if (pick < 0.6) {
          const room = rooms[Math.floor(random() * rooms.length)]!;
          const message = body(room);
          runtime.sendToRoom(room, message, options);
          for (const peer of members.get(room)!) if (peer !== except) expected[peer]!.push(message);
        } else if (pick < 0.8) {
          const message = body('all');
          runtime.sendToAll(message, options);
          for (let peer = 0; peer < peers.length; peer++) if (peer !== except) expected[peer]!.push(message);
        } else {
          const peer = Math.floor(random() * peers.length);
          const message = body(`direct-${peer}`);
          peers[peer]!.connection.send(message);
          expected[peer]!.push(message);
        }
      }
      if (random() < 0.7) await turn();
    }
    for (const [i, { client }] of peers.entries()) {
      expect(await client.received(expected[i]!.length, 10_000)).toEqual(expected[i]);
      expect(client.ws.readyState).toBe(client.ws.OPEN);
    }
    // And contexts were used: what the first client received compressed is smaller than each message alone.
    const compressed = expected[0]!.filter((message) => message.length >= 256);
    expect(peers[0]!.sizes.length).toBe(compressed.length);
    expect(sum(peers[0]!.sizes)).toBeLessThan(sum(compressed.map(deflatedAlone)));
  }, 30_000);
});
