/**
 * A peer that resets its connection while the server is writing to it has gone away: its close, with
 * its cause, not an error for an operator — a network blip under many clients must not flood the log.
 */
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { RuntimeEvents } from '../../src/index.js';
import { eventually } from '../helpers/client.js';
import { startRuntime } from '../helpers/runtime.js';

describe('a peer that resets in the middle of a write', () => {
  it('is a close with its cause, counted; no ERR_SEND_FAILED is reported', async () => {
    const { runtime, url } = await startRuntime({ heartbeat: false, outbox: { maxMessages: 100_000, maxBytes: 1 << 30 } });
    const errors: Array<RuntimeEvents['error']> = [];
    const closes: Array<RuntimeEvents['close']> = [];
    runtime.on('error', (event) => void errors.push(event));
    runtime.on('close', (event) => void closes.push(event));
    runtime.on('connection', (connection) => void connection.join('r'));
    const clients = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const ws = new WebSocket(url);
        await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
        ws.on('error', () => {});
        // Stops reading: what the server writes piles up in the kernel's buffers, then in its own.
        (ws as unknown as { _socket: { pause(): void } })._socket.pause();
        return ws;
      }),
    );
    await eventually(() => runtime.snapshot().rooms.r?.length === 20, 'every client in the room');
    // More than the kernel's buffers hold: writes wait in the server for the socket to drain.
    const chunk = Buffer.alloc(64 * 1024, 7);
    for (let i = 0; i < 256; i++) runtime.sendToRoom('r', chunk);
    await eventually(
      () => [...runtime.snapshot().rooms.r!].every((id) => (runtime.connection(id)?.outbox.depth ?? 0) > 0),
      'writes waiting on every socket',
    );
    // Every client resets with the server's writes in flight.
    for (const ws of clients) (ws as unknown as { _socket: { resetAndDestroy(): void } })._socket.resetAndDestroy();
    await eventually(() => closes.length === 20, 'every close');
    expect(errors.filter(({ error }) => error.code === 'ERR_SEND_FAILED')).toEqual([]);
    expect(closes.every(({ cause }) => cause === 'send-failed' || cause === 'client')).toBe(true);
    const counted = runtime.metrics.snapshot().closedByCause;
    expect((counted['send-failed'] ?? 0) + (counted.client ?? 0)).toBe(20);
  });
});
