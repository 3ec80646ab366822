import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { Frame } from '../src/delivery/frame.js';

// ws's receiver is public (`require('ws').Receiver`) but missing from @types/ws.
interface WsReceiver {
  on(event: 'message', listener: (data: Buffer, binary: boolean) => void): void;
  on(event: 'error', listener: (error: Error) => void): void;
  write(chunk: Uint8Array): void;
  end(callback: () => void): void;
}
const { Receiver } = createRequire(import.meta.url)('ws') as {
  Receiver: new (options: { isServer: boolean; maxPayload: number }) => WsReceiver;
};

/** Parses frames with ws's own (client-side) receiver, as a browser would. */
function parse(frames: Frame[]): Promise<Array<{ data: Buffer; binary: boolean }>> {
  return new Promise((resolve, reject) => {
    const receiver = new Receiver({ isServer: false, maxPayload: 0 });
    const messages: Array<{ data: Buffer; binary: boolean }> = [];
    receiver.on('message', (data, binary) => messages.push({ data, binary }));
    receiver.on('error', reject);
    for (const frame of frames) for (const chunk of frame.chunks) receiver.write(chunk);
    receiver.end(() => resolve(messages));
  });
}

describe('Frame', () => {
  it.each([0, 1, 125, 126, 127, 65535, 65536, 70_000, 1024 * 1024])('text of %i bytes round-trips', async (length) => {
    const text = 'é'.repeat(Math.floor(length / 2)) + 'x'.repeat(length % 2);
    const frame = Frame.text(text);
    expect(frame.payloadLength).toBe(length);
    const [message] = await parse([frame]);
    expect(message!.binary).toBe(false);
    expect(message!.data.toString()).toBe(text);
  });

  it.each([0, 125, 126, 16 * 1024, 16 * 1024 + 1, 65536, 1024 * 1024])('binary of %i bytes round-trips', async (length) => {
    const payload = Buffer.alloc(length, 7);
    if (length > 0) payload[length - 1] = 9;
    const [message] = await parse([Frame.bytes(payload, true)]);
    expect(message!.binary).toBe(true);
    expect(message!.data.equals(payload)).toBe(true);
  });

  it('references a large payload instead of copying it', () => {
    const payload = Buffer.alloc(1024 * 1024, 1);
    const frame = Frame.bytes(payload, true);
    expect(frame.chunks).toHaveLength(2);
    expect(frame.chunks[1]).toBe(payload);
    expect(frame.byteLength).toBe(payload.length + 10);
  });

  it('merges a small payload with its header into one buffer', () => {
    const frame = Frame.bytes(new Uint8Array([1, 2, 3]), true);
    expect(frame.chunks).toHaveLength(1);
    expect([...frame.chunks[0]!]).toEqual([0x82, 3, 1, 2, 3]);
  });

  it('concatenated frames parse as separate messages in order', async () => {
    const frames = Array.from({ length: 50 }, (_, i) => Frame.text(`message ${i}`));
    const messages = await parse(frames);
    expect(messages.map((m) => m.data.toString())).toEqual(frames.map((_, i) => `message ${i}`));
  });
});
