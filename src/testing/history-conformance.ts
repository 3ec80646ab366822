/**
 * The contract every history store keeps, as one suite any store runs
 * against itself: the in-memory store here, a Redis store later, yours.
 */
import type { HistoryLimits, HistoryStore, StreamPosition } from '../index.js';
import type { ConformanceFramework } from './adapter-conformance.js';

/** A clock the suite moves by hand, for `maxAgeMs`. */
export interface ConformanceClock {
  /** Milliseconds. */
  now(): number;
}

/** The store under test. */
export interface HistorySuite {
  /** Shown in the suite's name. */
  readonly name: string;
  /**
   * A fresh, empty store with these limits, reading time from `clock` (used
   * for `maxAgeMs`), for one test; the suite closes it.
   */
  create(limits: HistoryLimits, clock: ConformanceClock): HistoryStore | Promise<HistoryStore>;
  /** Per test. [default 20000] */
  readonly timeoutMs?: number;
}

const text = (data: string | Uint8Array) => (typeof data === 'string' ? data : Buffer.from(data).toString('utf8'));
const hex = (data: string | Uint8Array) => Buffer.from(typeof data === 'string' ? Buffer.from(data) : data).toString('hex');

/**
 * Runs the history conformance suite: offsets from 1 growing by one per
 * stream in one epoch, exact replay after any position, every payload kept
 * byte for byte, trimming by count, bytes and age reported as `trimmed`, a
 * foreign epoch as `epoch-changed`, a position never handed out as `ahead`,
 * and streams independent of each other.
 */
export function historyConformance(framework: ConformanceFramework, suite: HistorySuite): void {
  const { describe, it, expect } = framework;
  const timeout = suite.timeoutMs ?? 20_000;

  async function withStore(
    limits: HistoryLimits,
    body: (store: HistoryStore, clock: { now(): number; advance(ms: number): void }) => Promise<void>,
  ) {
    let time = 1_000_000;
    const clock = { now: () => time, advance: (ms: number) => void (time += ms) };
    const store = await suite.create(limits, clock);
    try {
      await body(store, clock);
    } finally {
      await store.close();
    }
  }

  const append = (store: HistoryStore, stream: string, ...texts: string[]) =>
    texts.reduce<Promise<StreamPosition | undefined>>(async (previous, data) => {
      await previous;
      return store.append(stream, { data, binary: false });
    }, Promise.resolve(undefined));

  describe(`history conformance: ${suite.name}`, () => {
    it(
      'offsets start at 1 and grow by one per message, in one epoch per stream',
      () =>
        withStore({}, async (store) => {
          const start = await store.position('room:a');
          expect(start.offset).toBe(0);
          expect(typeof start.epoch).toBe('string');
          expect(start.epoch.length > 0).toBe(true);
          const first = await store.append('room:a', { data: 'one', binary: false });
          const second = await store.append('room:a', { data: 'two', binary: false });
          expect(first).toEqual({ offset: 1, epoch: start.epoch });
          expect(second).toEqual({ offset: 2, epoch: start.epoch });
          expect(await store.position('room:a')).toEqual(second);
          // A stream's epoch is its own.
          const other = await store.append('room:b', { data: 'x', binary: false });
          expect(other.offset).toBe(1);
        }),
      timeout,
    );

    it(
      'replays exactly what came after a position, in order, and nothing at the top',
      () =>
        withStore({}, async (store) => {
          const { epoch } = await store.position('s');
          await append(store, 's', 'a', 'b', 'c', 'd');
          const fromStart = await store.read('s', { offset: 0, epoch });
          expect(fromStart.recovered).toBe(true);
          if (fromStart.recovered)
            expect(fromStart.messages.map((m) => [m.offset, text(m.data)])).toEqual([
              [1, 'a'],
              [2, 'b'],
              [3, 'c'],
              [4, 'd'],
            ]);
          const fromTwo = await store.read('s', { offset: 2, epoch });
          expect(fromTwo.recovered).toBe(true);
          expect(fromTwo.position).toEqual({ offset: 4, epoch });
          if (fromTwo.recovered) expect(fromTwo.messages.map((m) => m.offset)).toEqual([3, 4]);
          expect(await store.read('s', { offset: 4, epoch })).toEqual({ recovered: true, position: { offset: 4, epoch }, messages: [] });
        }),
      timeout,
    );

    it(
      'keeps every payload: UTF-8 text, binary bytes, empty messages',
      () =>
        withStore({}, async (store) => {
          const { epoch } = await store.position('s');
          const sent = [
            { data: 'héllo wörld 👋', binary: false },
            { data: new Uint8Array([0, 1, 2, 255]), binary: true },
            { data: new Uint8Array([104, 105]), binary: false },
            { data: '', binary: false },
          ];
          for (const message of sent) await store.append('s', message);
          const read = await store.read('s', { offset: 0, epoch });
          expect(read.recovered).toBe(true);
          if (!read.recovered) return;
          expect(read.messages.map((m) => ({ data: hex(m.data), binary: m.binary }))).toEqual(
            sent.map((m) => ({ data: hex(m.data), binary: m.binary })),
          );
        }),
      timeout,
    );

    it(
      'keeps the connection a message was not for (except), and gives none where there was none',
      () =>
        withStore({}, async (store) => {
          const { epoch } = await store.position('s');
          await store.append('s', { data: 'for all', binary: false });
          await store.append('s', { data: 'not for c1', binary: false, except: 'node-c1' });
          const read = await store.read('s', { offset: 0, epoch });
          expect(read.recovered).toBe(true);
          if (!read.recovered) return;
          expect(read.messages.map((m) => m.except)).toEqual([undefined, 'node-c1']);
        }),
      timeout,
    );

    it(
      'trims by count: a position before the oldest kept message is trimmed, one within it recovers',
      () =>
        withStore({ maxMessages: 3 }, async (store) => {
          const { epoch } = await store.position('s');
          await append(store, 's', '1', '2', '3', '4', '5');
          expect(await store.read('s', { offset: 1, epoch })).toEqual({
            recovered: false,
            position: { offset: 5, epoch },
            reason: 'trimmed',
          });
          const kept = await store.read('s', { offset: 2, epoch });
          expect(kept.recovered).toBe(true);
          if (kept.recovered) expect(kept.messages.map((m) => m.offset)).toEqual([3, 4, 5]);
        }),
      timeout,
    );

    it(
      'trims by bytes',
      () =>
        // Payloads large enough that a store's own cost per message (memory's: about 96 bytes) does not decide.
        withStore({ maxBytes: 10_000 }, async (store) => {
          const { epoch } = await store.position('s');
          await append(store, 's', 'a'.repeat(4000), 'b'.repeat(4000), 'c'.repeat(4000));
          expect((await store.read('s', { offset: 0, epoch })).recovered).toBe(false);
          const kept = await store.read('s', { offset: 1, epoch });
          expect(kept.recovered).toBe(true);
          if (kept.recovered) expect(kept.messages.map((m) => text(m.data)[0])).toEqual(['b', 'c']);
        }),
      timeout,
    );

    it(
      'trims by age, on the clock it was given',
      () =>
        withStore({ maxAgeMs: 1000 }, async (store, clock) => {
          const { epoch } = await store.position('s');
          await append(store, 's', 'old');
          clock.advance(600);
          await append(store, 's', 'newer');
          clock.advance(600);
          expect(await store.read('s', { offset: 0, epoch })).toEqual({
            recovered: false,
            position: { offset: 2, epoch },
            reason: 'trimmed',
          });
          const kept = await store.read('s', { offset: 1, epoch });
          expect(kept.recovered).toBe(true);
          if (kept.recovered) expect(kept.messages.map((m) => text(m.data))).toEqual(['newer']);
        }),
      timeout,
    );

    it(
      'a position of another epoch is epoch-changed, one never handed out is ahead',
      () =>
        withStore({}, async (store) => {
          const position = await append(store, 's', 'a', 'b');
          expect(await store.read('s', { offset: 1, epoch: 'not-this-one' })).toEqual({
            recovered: false,
            position,
            reason: 'epoch-changed',
          });
          expect(await store.read('s', { offset: 9, epoch: position!.epoch })).toEqual({ recovered: false, position, reason: 'ahead' });
        }),
      timeout,
    );

    it(
      'a stream never written is not created by reading it',
      () =>
        withStore({ maxStreams: 2 }, async (store) => {
          const kept = await append(store, 'kept', 'a');
          await append(store, 'second', 'b');
          for (let i = 0; i < 10; i++) {
            expect(await store.read(`ghost-${i}`, { offset: 0, epoch: 'x' })).toEqual({
              recovered: false,
              position: { offset: 0, epoch: '' },
              reason: 'epoch-changed',
            });
          }
          // Reading ghosts evicted nothing.
          expect(await store.position('kept')).toEqual(kept);
        }),
      timeout,
    );

    it(
      'streams past maxStreams are forgotten oldest-written first, and come back in a new epoch',
      () =>
        withStore({ maxStreams: 2 }, async (store) => {
          const first = await append(store, 'first', 'a');
          await append(store, 'second', 'b');
          await append(store, 'third', 'c');
          const lost = await store.read('first', { offset: 0, epoch: first!.epoch });
          expect(lost.recovered).toBe(false);
          if (!lost.recovered) expect(lost.reason).toBe('epoch-changed');
          const again = await store.append('first', { data: 'again', binary: false });
          expect(again.offset).toBe(1);
          expect(again.epoch === first!.epoch).toBe(false);
        }),
      timeout,
    );

    it(
      'past maxTotalBytes, the streams written longest ago are forgotten first',
      () =>
        withStore({ maxBytes: 10_000, maxTotalBytes: 10_000 }, async (store) => {
          const first = await append(store, 'first', 'a'.repeat(4000));
          const second = await append(store, 'second', 'b'.repeat(4000));
          await append(store, 'third', 'c'.repeat(4000));
          const lost = await store.read('first', { offset: 0, epoch: first!.epoch });
          expect(lost.recovered).toBe(false);
          const kept = await store.read('second', { offset: 0, epoch: second!.epoch });
          expect(kept.recovered).toBe(true);
        }),
      timeout,
    );

    it(
      'keeps one order per stream when appends are not awaited one by one',
      () =>
        withStore({}, async (store) => {
          const { epoch } = await store.position('s');
          const positions = await Promise.all(Array.from({ length: 50 }, (_, i) => store.append('s', { data: `#${i}`, binary: false })));
          expect(positions.map((p) => p.offset)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
          const read = await store.read('s', { offset: 0, epoch });
          expect(read.recovered).toBe(true);
          if (read.recovered) expect(read.messages.map((m) => text(m.data))).toEqual(Array.from({ length: 50 }, (_, i) => `#${i}`));
        }),
      timeout,
    );
  });
}
