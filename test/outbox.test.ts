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

/**
 * A socket that keeps the chunks it is given, not copies: `queues` true holds
 * them in user land (`writableLength` > 0, as a socket whose peer is slow),
 * false hands them on at once (as when the kernel takes the whole write).
 */
class ReferencingSocket implements OutboxSocket {
  isOpen = true;
  /** The chunks it was given, as given. */
  held: Uint8Array[] = [];
  /** What they held when they were written (what a kernel would have sent). */
  taken: Buffer[] = [];
  constructor(readonly queues: boolean) {}

  get writableLength(): number {
    return this.queues ? this.held.reduce((sum, chunk) => sum + chunk.length, 0) : 0;
  }

  write(chunks: readonly Uint8Array[], done: (error?: Error | null) => void): void {
    this.held.push(...chunks);
    for (const chunk of chunks) this.taken.push(Buffer.from(chunk));
    queueMicrotask(() => done());
  }

  onceDrain(): void {}

  /** The messages in the chunks it holds, read now (or, `taken`, as they were when written). */
  messages(taken = false): string[] {
    const all = Buffer.concat(taken ? this.taken : this.held);
    const out: string[] = [];
    for (let offset = 0; offset < all.length; offset += 2 + all[offset + 1]!)
      out.push(all.subarray(offset + 2, offset + 2 + all[offset + 1]!).toString());
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

  it('reuses one merge buffer while sockets take each write whole, never one a socket still holds', async () => {
    const scheduler = new FlushScheduler({
      onError: (error) => {
        throw error;
      },
    });
    const slow = new ReferencingSocket(true);
    const fast = [new ReferencingSocket(false), new ReferencingSocket(false), new ReferencingSocket(false)];
    const slowOutbox = new Outbox(slow, new Owner(), scheduler, limits());
    const fastOutboxes = fast.map((socket) => new Outbox(socket, new Owner(), scheduler, limits()));
    for (let t = 0; t < 3; t++) {
      // The slow socket is flushed between fast ones, so a buffer it keeps would be written over if reused.
      fastOutboxes[0]!.push(Frame.text(`f0-${t}a`));
      fastOutboxes[0]!.push(Frame.text(`f0-${t}b`));
      slowOutbox.push(Frame.text(`s-${t}a`));
      slowOutbox.push(Frame.text(`s-${t}b`));
      for (const [i, outbox] of fastOutboxes.entries()) {
        if (i === 0) continue;
        outbox.push(Frame.text(`f${i}-${t}a`));
        outbox.push(Frame.text(`f${i}-${t}b`));
      }
      await turn();
      // What a fast socket was given is read at once, as the kernel would; the slow one's is read at the end.
      for (const [i, socket] of fast.entries()) expect(socket.messages(true).slice(-2)).toEqual([`f${i}-${t}a`, `f${i}-${t}b`]);
    }
    expect(slow.messages()).toEqual([0, 1, 2].flatMap((t) => [`s-${t}a`, `s-${t}b`]));
    // Read only now, the slow socket's bytes are intact: no two of its writes share memory.
    const overlaps = (a: Uint8Array, b: Uint8Array) =>
      a.buffer === b.buffer && a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength;
    expect(slow.held.some((a, i) => slow.held.some((b, j) => i !== j && overlaps(a, b)))).toBe(false);
    // Once it held bytes, its writes were not copied: they refer to the frames themselves, two a write.
    expect(slow.held).toHaveLength(1 + 2 + 2);
    const fastBuffers = new Set(fast.flatMap((socket) => socket.held.map((chunk) => chunk.buffer)));
    // The fast sockets' nine writes were copied into far fewer buffers: reused, not allocated per write.
    expect(fastBuffers.size).toBeLessThanOrEqual(4);
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

describe('FlushScheduler', () => {
  const room = (name: string) => ({ kind: 'room', room: name }) as const;

  /** A scheduler for which a broadcast to `largeFanout` outboxes or more is large. [default 1: every one] */
  const scheduled = (largeFanout = 1) =>
    new FlushScheduler({
      onError: (error) => {
        throw error;
      },
      largeFanout,
    });

  /** A broadcast as the supervisor makes it: announced, queued in each recipient's outbox, written at once if so told. */
  const broadcaster = (scheduler: FlushScheduler) => (target: string, recipients: Outbox[], text: string) => {
    const atOnce = scheduler.broadcasting(room(target));
    for (const outbox of recipients) outbox.push(Frame.text(text));
    if (atOnce) scheduler.broadcasted(recipients.length);
  };

  it('small broadcasts to different targets coalesce until the turn’s end, until as many outboxes wait as make a large one', async () => {
    const scheduler = scheduled(8);
    const sockets = Array.from({ length: 8 }, () => new RecordingSocket());
    const outboxes = sockets.map((socket) => new Outbox(socket, new Owner(), scheduler, limits()));
    const broadcast = broadcaster(scheduler);
    // Three rooms of two, ten messages each, interleaved: six outboxes wait, fewer than eight.
    for (let k = 0; k < 10; k++)
      for (const [i, name] of ['a', 'b', 'c'].entries()) broadcast(name, outboxes.slice(2 * i, 2 * i + 2), `${name}${k}`);
    expect(sockets.every((socket) => socket.writes.length === 0)).toBe(true);
    await turn();
    // One write each, in order.
    expect(sockets.slice(0, 6).every((socket) => socket.writes.length === 1)).toBe(true);
    expect(sockets[0]!.messages()).toEqual(Array.from({ length: 10 }, (_, k) => `a${k}`));
    expect(sockets[4]!.messages()).toEqual(Array.from({ length: 10 }, (_, k) => `c${k}`));
    // A fourth room: eight wait once it is queued, so the next broadcast to another target writes them first.
    broadcast('a', outboxes.slice(0, 2), 'a10');
    broadcast('b', outboxes.slice(2, 4), 'b10');
    broadcast('c', outboxes.slice(4, 6), 'c10');
    broadcast('d', outboxes.slice(6, 8), 'd10');
    expect(sockets.every((socket) => socket.writes.length <= 1)).toBe(true);
    broadcast('a', outboxes.slice(0, 2), 'a11');
    expect(sockets[6]!.messages()).toEqual(['d10']);
    expect(sockets[0]!.messages().at(-1)).toBe('a10');
    // A broadcast to eight or more is written at once.
    await turn();
    broadcast('e', outboxes, 'e');
    expect(sockets.every((socket) => socket.messages().at(-1) === 'e')).toBe(true);
  });

  it('writes a broadcast to a new target at once, and coalesces the next ones to that target until another target or the turn’s end', async () => {
    const scheduler = scheduled();
    const [a, b, both] = [new RecordingSocket(), new RecordingSocket(), new RecordingSocket()];
    const [inA, inB, inBoth] = [a, b, both].map((socket) => new Outbox(socket, new Owner(), scheduler, limits()));
    const broadcast = broadcaster(scheduler);
    broadcast('a', [inA!, inBoth!], 'a1');
    // The first broadcast to a: written at once, as a plain socket write would be.
    expect(a.messages()).toEqual(['a1']);
    broadcast('a', [inA!, inBoth!], 'a2');
    broadcast('a', [inA!, inBoth!], 'a3');
    expect(a.writes).toHaveLength(1);
    broadcast('b', [inB!, inBoth!], 'b1');
    // Room a's two queued messages left together as b began, and b's first went at once after them.
    expect(a.writes).toHaveLength(2);
    expect(a.messages()).toEqual(['a1', 'a2', 'a3']);
    expect(b.messages()).toEqual(['b1']);
    broadcast('b', [inB!, inBoth!], 'b2');
    broadcast('a', [inA!, inBoth!], 'a4');
    expect(b.messages()).toEqual(['b1', 'b2']);
    expect(a.messages()).toEqual(['a1', 'a2', 'a3', 'a4']);
    await turn();
    expect(a.writes).toHaveLength(3);
    expect(b.writes).toHaveLength(2);
    // A connection in both rooms gets every message in the order it was sent.
    expect(both.messages()).toEqual(['a1', 'a2', 'a3', 'b1', 'b2', 'a4']);
  });

  it('remembers the target across turns: a room sent to turn after turn coalesces each turn into one write', async () => {
    const scheduler = scheduled();
    const socket = new RecordingSocket();
    const outbox = new Outbox(socket, new Owner(), scheduler, limits());
    const broadcast = broadcaster(scheduler);
    broadcast('a', [outbox], 'm0');
    expect(socket.writes).toHaveLength(1);
    for (let turnNo = 1; turnNo <= 3; turnNo++) {
      for (let k = 0; k < 10; k++) broadcast('a', [outbox], `m${turnNo}.${k}`);
      expect(socket.writes).toHaveLength(turnNo);
      await turn();
      expect(socket.writes).toHaveLength(turnNo + 1);
    }
    expect(socket.messages()).toHaveLength(31);
  });

  it('leaves a broadcast begun during a flush to that flush’s end', async () => {
    const scheduler = scheduled();
    const [first, second] = [new RecordingSocket(), new RecordingSocket()];
    const inSecond = new Outbox(second, new Owner(), scheduler, limits());
    // A flush whose write leads to another broadcast (a close handler sending to a room, say).
    scheduler.schedule({
      flush: () => {
        first.writes.push([Buffer.from('x')]);
        if (scheduler.broadcasting(room('b'))) {
          inSecond.push(Frame.text('b1'));
          scheduler.broadcasted(1);
        }
        scheduler.broadcasting(room('c'));
        expect(second.writes).toHaveLength(0);
      },
    });
    scheduler.broadcasting(room('a'));
    await turn();
    expect(first.writes).toHaveLength(1);
    await turn();
    expect(second.messages()).toEqual(['b1']);
  });
});
