import zlib from 'node:zlib';
import { describe, expect, it, vi } from 'vitest';
import { connect, eventually } from '../helpers/client.js';
import { nextConnection, startRuntime } from '../helpers/runtime.js';
import { limitClientWindow } from '../../src/connection/transport/deflate-offer.js';
import { bytesRead, json, negotiated } from './helpers.js';

describe('permessage-deflate: compressed once per message', () => {
  it('negotiates with client_no_context_takeover, and server_no_context_takeover when contexts is 0; without the option it declines', async () => {
    const on = await startRuntime({ compression: true });
    const client = await connect(on.url, { perMessageDeflate: true });
    expect(client.ws.extensions).toBe('permessage-deflate');
    expect(negotiated(client)).toEqual({ client_no_context_takeover: true });
    const alone = await startRuntime({ compression: { contexts: 0 } });
    const told = await connect(alone.url, { perMessageDeflate: true });
    expect(negotiated(told)).toEqual({ server_no_context_takeover: true, client_no_context_takeover: true });
    const off = await startRuntime();
    const plain = await connect(off.url, { perMessageDeflate: true });
    expect(plain.ws.extensions).toBe('');
  });

  it('round-trips messages of 0 B to 1 MiB, compressed and not, in order, with pings and several messages per write', async () => {
    // The heartbeat's pings, and the client's (answered with pongs), are control frames among the messages.
    const { runtime, url } = await startRuntime({
      compression: { threshold: 64 },
      maxPayload: 2 * 1024 * 1024,
      heartbeat: { intervalMs: 20, timeoutMs: 5000 },
    });
    runtime.on('message', ({ connection, data, binary }) => connection.send(data, { binary }));
    const opened = nextConnection(runtime);
    const client = await connect(url, { perMessageDeflate: true });
    const connection = await opened;
    const sizes = [0, 1, 63, 64, 65, 125, 126, 1000, 65_535, 65_536, 200_000, 1024 * 1024];
    const sent = sizes.map((size, i) => json(size, i));
    // Server to client, all in one turn: they leave in as few writes as the outbox makes.
    for (const [i, message] of sent.entries()) {
      connection.send(message);
      if (i % 4 === 0) client.ws.ping();
    }
    const received = await client.received(sent.length, 20_000);
    expect(received.map((m) => m.length)).toEqual(sent.map((m) => m.length));
    expect(received).toEqual(sent);
    // Client to server and back (the client compresses what is over its own threshold, 1 KiB by default).
    for (const message of sent) client.ws.send(message);
    const echoed = await client.received(sent.length * 2, 20_000);
    expect(echoed.slice(sent.length)).toEqual(sent);
    // Binary too.
    const bytes = Buffer.from(json(5000));
    client.ws.send(bytes);
    const binary = await client.received(sent.length * 2 + 1, 10_000);
    expect(binary.at(-1)).toBe(`binary:${bytes.toString('hex')}`);
  }, 30_000);

  it('contexts: 0: a broadcast is deflated once, on its own, for all its recipients; those without the extension get it plain', async () => {
    const { runtime, url } = await startRuntime({ compression: { contexts: 0 } });
    runtime.on('connection', (connection) => void connection.join('lobby'));
    const deflating = await Promise.all(Array.from({ length: 20 }, () => connect(url, { perMessageDeflate: true })));
    const plain = await Promise.all(Array.from({ length: 5 }, () => connect(url, { perMessageDeflate: false })));
    await eventually(() => runtime.snapshot().rooms.lobby?.length === 25, 'everyone in the lobby');
    const before = [...deflating, ...plain].map(bytesRead);
    const spy = vi.spyOn(zlib, 'deflateRawSync');
    const messages = Array.from({ length: 10 }, (_, i) => json(4096, i));
    try {
      for (const message of messages) runtime.sendToRoom('lobby', message);
      runtime.sendToRoom('lobby', 'small, sent plain');
      for (const client of [...deflating, ...plain]) expect(await client.received(11, 10_000)).toEqual([...messages, 'small, sent plain']);
      // Compressed as the first recipient's outbox wrote it, once for all twenty.
      expect(spy).toHaveBeenCalledTimes(messages.length);
    } finally {
      spy.mockRestore();
    }
    const wire = [...deflating, ...plain].map((client, i) => bytesRead(client) - before[i]!);
    const compressed = wire.slice(0, 20);
    const uncompressed = wire.slice(20);
    // Every deflate recipient got the same bytes; 4 KiB of this JSON shrinks several times.
    expect(new Set(compressed).size).toBe(1);
    expect(compressed[0]! * 4).toBeLessThan(uncompressed[0]!);
  });

  it('keeps no inflate context between a client’s compressed messages: each is freed once its message is whole', async () => {
    const { runtime, url } = await startRuntime({ compression: true });
    const seen: string[] = [];
    runtime.on('message', ({ data }) => void seen.push(String(data)));
    const client = await connect(url, { perMessageDeflate: true });
    expect(negotiated(client)).toMatchObject({ client_no_context_takeover: true });
    const created: Array<{ closed: boolean }> = [];
    const create = zlib.createInflateRaw;
    const spy = vi.spyOn(zlib, 'createInflateRaw').mockImplementation((options) => {
      const stream = create(options);
      const record = { closed: false };
      created.push(record);
      stream.once('close', () => (record.closed = true));
      return stream;
    });
    try {
      const messages = Array.from({ length: 5 }, (_, i) => json(3000, i));
      for (const message of messages) client.ws.send(message);
      await eventually(() => seen.length === 5, 'the five messages');
      expect(seen).toEqual(messages);
      await eventually(() => created.every((stream) => stream.closed), 'every inflate context closed');
      expect(created.length).toBe(5);
    } finally {
      spy.mockRestore();
    }
  });

  it('a deflate bomb closes with 1009 and never reaches the application; other connections carry on', async () => {
    const { runtime, url } = await startRuntime({ compression: true, maxPayload: 64 * 1024 });
    const seen: number[] = [];
    runtime.on('message', ({ data }) => void seen.push(data.length));
    runtime.on('connection', (connection) => void connection.join('lobby'));
    const bystander = await connect(url, { perMessageDeflate: true });
    const bomber = await connect(url, { perMessageDeflate: true, maxPayload: 0 });
    // 64 MiB of zeros, about 64 KiB compressed: within maxPayload on the wire, a thousand times past it inflated.
    bomber.ws.send(Buffer.alloc(64 * 1024 * 1024));
    expect((await bomber.closed).code).toBe(1009);
    expect(seen).toEqual([]);
    runtime.sendToRoom('lobby', 'still here');
    expect(await bystander.next()).toBe('still here');
  }, 30_000);

  it('inboundWindowBits lowers the window a client may compress with, when its offer lets the server choose', async () => {
    expect(limitClientWindow('permessage-deflate; client_max_window_bits', 10)).toBe('permessage-deflate; client_max_window_bits=10');
    expect(limitClientWindow('permessage-deflate; client_max_window_bits=12, permessage-deflate', 10)).toBe(
      'permessage-deflate; client_max_window_bits=10, permessage-deflate',
    );
    expect(limitClientWindow('permessage-deflate; client_max_window_bits=9', 12)).toBe('permessage-deflate; client_max_window_bits=9');
    const { runtime, url } = await startRuntime({ compression: { inboundWindowBits: 10 } });
    runtime.on('message', ({ connection, data }) => connection.send(data));
    const client = await connect(url, { perMessageDeflate: { clientMaxWindowBits: true as unknown as number } });
    expect(negotiated(client)).toMatchObject({ client_max_window_bits: 10 });
    // The client compresses with a 1 KiB window, and the server inflates with one.
    const message = json(50_000);
    client.ws.send(message);
    expect(await client.next()).toBe(message);
    // An offer without the parameter is accepted as it is (a 32 KiB window).
    const other = await connect(url, { perMessageDeflate: { clientMaxWindowBits: undefined } });
    expect(other.ws.extensions).toBe('permessage-deflate');
  });
});
