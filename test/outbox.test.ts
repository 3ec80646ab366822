import { describe, expect, it } from 'vitest';
import { FlushScheduler } from '../src/delivery/flush-scheduler.js';
import { Frame } from '../src/delivery/frame.js';
import { Outbox, SOCKET_HIGH_WATER_MARK, type OutboxLimits, type OutboxOwner, type OutboxSocket } from '../src/delivery/outbox.js';

/**
 * A socket stand-in that records writes. The outbox is a data structure over
 * the socket interface; the real socket is exercised by the integration and
 * load tests.
 */
class RecordingSocket implements OutboxSocket {
  isOpen = true;
  writableLength = 0;
  writes: Buffer[][] = [];
  failNext: Error | undefined;
  #drain: Array<() => void> = [];

  write(chunks: readonly Uint8Array[], done: (error?: Error | null) => void): void {
    this.writes.push(chunks.map((chunk) => Buffer.from(chunk)));
    const error = this.failNext;
    this.failNext = undefined;
    queueMicrotask(() => done(error));
  }

  onceDrain(listener: () => void): void {
    this.#drain.push(listener);
  }

  drain(): void {
    this.writableLength = 0;
    for (const listener of this.#drain.splice(0)) listener();
  }

  /** Every message written, in order, decoded from the text frames. */
  messages(): string[] {
    const all = Buffer.concat(this.writes.flat());
    const out: string[] = [];
    for (let offset = 0; offset < all.length;) {
      const length = all[offset + 1]!;
      out.push(all.subarray(offset + 2, offset + 2 + length).toString());
      offset += 2 + length;
    }
    return out;
  }
}

class Owner implements OutboxOwner {
  drops = 0;
  overflows = 0;
  failures: Error[] = [];
  dropped(count: number): void {
    this.drops += count;
  }
  overflowed(): void {
    this.overflows++;
  }
  failed(error: Error): void {
    this.failures.push(error);
  }
}

const turn = () => new Promise((resolve) => setImmediate(resolve));
const limits = (overrides: Partial<OutboxLimits> = {}): OutboxLimits => ({
  maxMessages: 100,
  maxBytes: 1 << 20,
  overflow: 'close',
  ...overrides,
});

function setUp(overrides?: Partial<OutboxLimits>) {
  const socket = new RecordingSocket();
  const owner = new Owner();
  const scheduler = new FlushScheduler({
    onError: (error) => {
      throw error;
    },
  });
  return { socket, owner, outbox: new Outbox(socket, owner, scheduler, limits(overrides)) };
}

describe('Outbox', () => {
  it('writes everything pushed in one turn as one write, in order', async () => {
    const { socket, outbox } = setUp();
    for (let i = 0; i < 10; i++) outbox.push(Frame.text(`m${i}`));
    expect(socket.writes).toHaveLength(0);
    await turn();
    expect(socket.writes).toHaveLength(1);
    expect(socket.writes[0]).toHaveLength(1);
    expect(socket.messages()).toEqual(Array.from({ length: 10 }, (_, i) => `m${i}`));
    expect(outbox.depth).toBe(0);
    expect(outbox.bytes).toBe(0);
  });

  it('writes once per turn, not once per push', async () => {
    const { socket, outbox } = setUp();
    for (let t = 0; t < 5; t++) {
      outbox.push(Frame.text(`a${t}`));
      outbox.push(Frame.text(`b${t}`));
      await turn();
    }
    expect(socket.writes).toHaveLength(5);
    expect(socket.messages()).toEqual([0, 1, 2, 3, 4].flatMap((t) => [`a${t}`, `b${t}`]));
  });

  it('shares frames: the same bytes go to every outbox', async () => {
    const a = setUp();
    const b = setUp();
    const frame = Frame.bytes(Buffer.alloc(100_000, 1), true);
    a.outbox.push(frame);
    b.outbox.push(frame);
    await turn();
    expect(a.socket.writes[0]![1]!.equals(frame.chunks[1] as Buffer)).toBe(true);
    expect(b.socket.writes[0]![1]!.equals(frame.chunks[1] as Buffer)).toBe(true);
  });

  it('stops at the socket high-water mark and resumes on drain, keeping order', async () => {
    const { socket, outbox } = setUp({ maxMessages: 1000 });
    socket.writableLength = SOCKET_HIGH_WATER_MARK;
    for (let i = 0; i < 20; i++) outbox.push(Frame.text(`m${i}`));
    await turn();
    expect(socket.writes).toHaveLength(0);
    expect(outbox.depth).toBe(20);
    outbox.push(Frame.text('m20'));
    await turn();
    expect(socket.writes).toHaveLength(0);
    socket.drain();
    expect(socket.messages()).toEqual(Array.from({ length: 21 }, (_, i) => `m${i}`));
  });

  it('drop-newest keeps the queue and drops what does not fit', async () => {
    const { socket, owner, outbox } = setUp({ maxMessages: 3, overflow: 'drop-newest' });
    socket.writableLength = SOCKET_HIGH_WATER_MARK;
    const pushed = [0, 1, 2, 3, 4].map((i) => outbox.push(Frame.text(`m${i}`)));
    expect(pushed).toEqual([true, true, true, false, false]);
    expect(owner.drops).toBe(2);
    socket.drain();
    await turn();
    expect(socket.messages()).toEqual(['m0', 'm1', 'm2']);
  });

  it('drop-oldest evicts from the head to make room', async () => {
    const { socket, owner, outbox } = setUp({ maxMessages: 3, overflow: 'drop-oldest' });
    socket.writableLength = SOCKET_HIGH_WATER_MARK;
    for (let i = 0; i < 5; i++) expect(outbox.push(Frame.text(`m${i}`))).toBe(true);
    expect(owner.drops).toBe(2);
    socket.drain();
    await turn();
    expect(socket.messages()).toEqual(['m2', 'm3', 'm4']);
  });

  it('bounds bytes as well as messages', () => {
    const { socket, owner, outbox } = setUp({ maxBytes: 250, overflow: 'drop-oldest' });
    socket.writableLength = SOCKET_HIGH_WATER_MARK;
    const frame = () => Frame.text('x'.repeat(98)); // 100 bytes with its header
    outbox.push(frame());
    outbox.push(frame());
    outbox.push(frame());
    expect(outbox.depth).toBe(2);
    expect(outbox.bytes).toBe(200);
    expect(owner.drops).toBe(1);
    // A frame larger than the whole bound is dropped itself.
    expect(outbox.push(Frame.text('y'.repeat(300)))).toBe(false);
    expect(owner.drops).toBe(2);
  });

  it('close policy empties the outbox and tells the owner once per overflow', () => {
    const { socket, owner, outbox } = setUp({ maxMessages: 2, overflow: 'close' });
    socket.writableLength = SOCKET_HIGH_WATER_MARK;
    outbox.push(Frame.text('a'));
    outbox.push(Frame.text('b'));
    expect(outbox.push(Frame.text('c'))).toBe(false);
    expect(owner.overflows).toBe(1);
    expect(outbox.depth).toBe(0);
    expect(outbox.push(Frame.text('d'))).toBe(false);
    expect(owner.overflows).toBe(1);
  });

  it('end() waits until the queue is written, then refuses frames', async () => {
    const { socket, outbox } = setUp();
    const ended: string[] = [];
    outbox.push(Frame.text('last words'));
    outbox.end(() => ended.push(`ended after ${socket.messages().length}`));
    expect(outbox.push(Frame.text('too late'))).toBe(false);
    expect(ended).toEqual([]);
    await turn();
    expect(ended).toEqual(['ended after 1']);
    expect(socket.messages()).toEqual(['last words']);
  });

  it('end() on an empty outbox ends at once', () => {
    const { outbox } = setUp();
    let ended = false;
    outbox.end(() => (ended = true));
    expect(ended).toBe(true);
  });

  it('reports a failed write once and discards the rest', async () => {
    const { socket, owner, outbox } = setUp();
    socket.failNext = new Error('EPIPE');
    outbox.push(Frame.text('a'));
    await turn();
    await Promise.resolve();
    expect(owner.failures.map((error) => error.message)).toEqual(['EPIPE']);
    expect(outbox.push(Frame.text('b'))).toBe(false);
  });

  it('drops its frames when the socket is no longer open', async () => {
    const { socket, outbox } = setUp();
    outbox.push(Frame.text('a'));
    socket.isOpen = false;
    await turn();
    expect(socket.writes).toHaveLength(0);
    expect(outbox.depth).toBe(0);
  });

  it('writes large batches as a vectored write without copying', async () => {
    const { socket, outbox } = setUp();
    const big = Frame.bytes(Buffer.alloc(10_000), true);
    outbox.push(big);
    outbox.push(big);
    outbox.push(big);
    await turn();
    expect(socket.writes).toHaveLength(1);
    expect(socket.writes[0]).toHaveLength(3);
  });
});
