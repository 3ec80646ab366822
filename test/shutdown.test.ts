import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { createRuntime, type RuntimeEvents } from '../src/index.js';
import { connect, eventually } from './helpers/client.js';
import { RawWebSocket } from './helpers/raw.js';

describe('runtime.close()', () => {
  it('delivers what was queued, closes every connection with 1001, and releases the port', async () => {
    const runtime = createRuntime({ port: 0, host: '127.0.0.1' });
    await runtime.ready;
    const { port } = runtime.address()!;
    const closes: RuntimeEvents['close'][] = [];
    runtime.on('close', (event) => closes.push(event));
    runtime.on('connection', (connection) => void connection.join('lobby'));
    const clients = await Promise.all(Array.from({ length: 20 }, () => connect(`ws://127.0.0.1:${port}/`)));
    await eventually(() => runtime.snapshot().rooms.lobby?.length === 20, 'everyone in the lobby');

    const big = 'x'.repeat(256 * 1024);
    for (let i = 0; i < 20; i++) runtime.sendToRoom('lobby', `${i}:${big}`);
    await runtime.close({ timeoutMs: 5000 });

    for (const client of clients) {
      expect(await client.closed).toEqual({ code: 1001, reason: 'server shutting down' });
      expect(client.messages.map((message) => message.slice(0, message.indexOf(':')))).toEqual(
        Array.from({ length: 20 }, (_, i) => String(i)),
      );
    }
    expect(closes).toHaveLength(20);
    expect(closes.every((event) => event.cause === 'shutdown' && event.code === 1001)).toBe(true);
    expect(runtime.health()).toMatchObject({ status: 'closed', connections: { current: 0 }, rooms: 0 });
    // The port is free again: nothing of berth is left listening.
    await expect(
      new Promise((resolve, reject) => net.connect(port, '127.0.0.1').on('connect', resolve).on('error', reject)),
    ).rejects.toThrow(/ECONNREFUSED/);
  });

  it('terminates a peer that never answers the close frame once the timeout passes', async () => {
    const runtime = createRuntime({ port: 0, host: '127.0.0.1' });
    await runtime.ready;
    const closes: RuntimeEvents['close'][] = [];
    runtime.on('close', (event) => closes.push(event));
    // A raw client that reads frames but never sends a close frame back.
    const raw = await RawWebSocket.open(runtime.address()!.port);
    const polite = await connect(`ws://127.0.0.1:${runtime.address()!.port}/`);
    await eventually(() => runtime.health().connections.current === 2, 'both connections');
    await runtime.close({ timeoutMs: 200 });
    await raw.ended;
    expect(raw.frames.find((frame) => frame.opcode === 0x8)?.payload.readUInt16BE(0)).toBe(1001);
    expect((await polite.closed).code).toBe(1001);
    expect(closes).toHaveLength(2);
    expect(runtime.health().status).toBe('closed');
  });

  it('is idempotent; a broadcast after it throws ERR_CLOSED, one while closing is counted where it reaches nobody', async () => {
    const runtime = createRuntime({ port: 0, host: '127.0.0.1' });
    await runtime.ready;
    const first = runtime.close();
    expect(runtime.close()).toBe(first);
    // Closing: the supervisor has stopped (nobody was connected), so nobody here gets it, and that is counted.
    runtime.sendToRoom('lobby', 'closing');
    expect(runtime.metrics.snapshot().dropped).toMatchObject({ 'runtime-stopped': 1 });
    await first;
    expect(() => runtime.sendToAll('nobody')).toThrow(expect.objectContaining({ code: 'ERR_CLOSED' }));
    expect(() => runtime.sendToRoom('lobby', 'nobody')).toThrow(/the runtime is closed/);
    expect(() => runtime.sendToUser('ada', 'nobody')).toThrow(expect.objectContaining({ code: 'ERR_CLOSED' }));
    expect(runtime.health().status).toBe('closed');
  });

  it('rejects ready when the port is taken, without crashing', async () => {
    const first = createRuntime({ port: 0, host: '127.0.0.1' });
    await first.ready;
    const second = createRuntime({ port: first.address()!.port, host: '127.0.0.1' });
    await expect(second.ready).rejects.toThrow(/EADDRINUSE/);
    await first.close();
  });
});
