import zlib from 'node:zlib';
import type WebSocket from 'ws';

/** Compressible JSON of about `size` bytes. */
export function json(size: number, seed = 0): string {
  const items: string[] = [];
  let length = 2;
  for (let i = 0; length < size; i++) {
    const item = JSON.stringify({ id: seed * 1_000_000 + i, user: `user-${i % 17}`, text: 'the quick brown fox jumps over the lazy dog' });
    items.push(item);
    length += item.length + 1;
  }
  return `[${items.join(',')}]`.slice(0, Math.max(0, size));
}

/** A chat-like message: similar to the others of its room, different from each. */
export function chat(room: string, seq: number): string {
  return JSON.stringify({
    type: 'message',
    room,
    seq,
    at: 1_700_000_000_000 + seq * 997,
    from: {
      id: `user-${(seq * 7) % 23}`,
      name: `User number ${(seq * 7) % 23}`,
      avatar: `https://example.com/avatars/${(seq * 7) % 23}.png`,
    },
    text: `message ${seq} in ${room}: the quick brown fox jumps over the lazy dog, again and again, ${seq % 5} times`,
    tags: ['chat', room, `seq-${seq % 11}`],
    history: Array.from({ length: 6 }, (_, k) => ({
      id: seq * 10 + k,
      by: `user-${(seq + k) % 23}`,
      reaction: ['like', 'laugh', 'wow'][(seq + k) % 3],
    })),
    note: `${'lorem ipsum dolor sit amet '.repeat(8)}${seq}`,
    padding: 'x'.repeat(300 + (seq % 9) * 13),
  });
}

/** What the client's extension settled on (ws keeps it in `_extensions`). */
export const negotiated = (client: { ws: WebSocket }) =>
  (client.ws as unknown as { _extensions: Record<string, { params: Record<string, unknown> }> })._extensions['permessage-deflate']?.params;

export const bytesRead = (client: { ws: WebSocket }) => (client.ws as unknown as { _socket: { bytesRead: number } })._socket.bytesRead;

/**
 * The compressed payload size of every compressed message the client receives, in order (0 for one
 * that came plain is not recorded: only compressed ones pass through the extension).
 */
export function compressedSizes(client: { ws: WebSocket }): number[] {
  const sizes: number[] = [];
  const extension = (client.ws as unknown as { _extensions: Record<string, { decompress: Decompress }> })._extensions['permessage-deflate'];
  if (extension === undefined) return sizes;
  let current = 0;
  const decompress = extension.decompress.bind(extension);
  extension.decompress = (data, fin, callback) => {
    current += data.length;
    if (fin) {
      sizes.push(current);
      current = 0;
    }
    decompress(data, fin, callback);
  };
  return sizes;
}

type Decompress = (data: Buffer, fin: boolean, callback: (error: Error | null, result?: Buffer) => void) => void;

/** The size of `message` deflated on its own, as RFC 7692 frames it (sync flush, trailer removed). */
export function deflatedAlone(message: string): number {
  return zlib.deflateRawSync(Buffer.from(message), { finishFlush: zlib.constants.Z_SYNC_FLUSH }).length - 4;
}

export { seededRandom as seeded } from '../../src/util/random.js';
