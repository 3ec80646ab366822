/**
 * Under load: clients that stop reading are closed (4001) or have frames
 * dropped, per the outbox policy, while fast clients sharing every broadcast
 * receive all of it in order, and what the outboxes hold stays bounded. The
 * server's RSS under slow clients is measured by the benchmark's slow-client
 * scenario.
 */
import { describe, expect, it } from 'vitest';
import type { Connection, OverflowPolicy, RuntimeEvents } from '../../src/index.js';
import { connect } from '../helpers/client.js';
import { startRuntime } from '../helpers/runtime.js';
import { END } from './protocol.js';
import { MB, clientOf, joinEveryone, startClients } from './harness.js';
import { eventually } from '../helpers/client.js';

const FAST = 200;
const SLOW = 40;
/**
 * At least this many messages; more until every slow connection has
 * overflowed (the kernel buffers a few MB of a paused loopback socket, more
 * on some systems), at most `MAX_MESSAGES`.
 */
const MESSAGES = 200;
const MAX_MESSAGES = 1_000;
const LIMITS = { maxMessages: 64, maxBytes: 1 * MB };
/** 16–64 KiB, deterministic. */
const sizeOf = (seq: number): number => 16 * 1024 + ((seq * 7919) % (48 * 1024 + 1));
/** The largest frame: a 64 KiB payload takes a 10-byte header. */
const MAX_FRAME = 64 * 1024 + 10;
/**
 * Our bound on the bytes all outboxes hold at once, each shared frame counted
 * once. Every outbox is sent the same frames and holds the newest of them: a
 * slow one at most `maxBytes` (then it drops or is closed), a fast one at most
 * half of that when a batch of four goes. So together they hold one outbox's
 * worth and a batch. A server that buffered every frame for each slow client
 * would hold all it sent.
 */
const HELD_BOUND = LIMITS.maxBytes + 4 * MAX_FRAME;

function tally(keys: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const key of keys) counts[key] = (counts[key] ?? 0) + 1;
  return counts;
}

function payload(seq: number): Buffer {
  const bytes = Buffer.alloc(sizeOf(seq), seq & 0xff);
  bytes.writeUInt32BE(seq, 0);
  return bytes;
}

async function overload(overflow: OverflowPolicy) {
  // The close timeout outlasts the test: a slow client must get its close frame once it reads again.
  const { runtime, url } = await startRuntime({ heartbeat: false, closeTimeoutMs: 60_000, outbox: { ...LIMITS, overflow } });
  const fast: Connection[] = [];
  const slow: Connection[] = [];
  const joined = joinEveryone(runtime);
  const drops = new Map<string, number>();
  const closes: RuntimeEvents['close'][] = [];
  runtime.on('connection', (connection) => {
    (clientOf(connection).slow ? slow : fast).push(connection);
  });
  runtime.on('dropped', ({ connection, reason, count }) => {
    if (reason === 'outbox-overflow') drops.set(connection.id, (drops.get(connection.id) ?? 0) + count);
  });
  runtime.on('close', (event) => closes.push(event));
  const clients = startClients();
  const { opened, failures } = await clients.open({ url, count: FAST + SLOW, slow: SLOW, concurrency: 50 });
  expect(failures).toEqual([]);
  expect(opened).toBe(FAST + SLOW);
  await eventually(() => joined() === FAST + SLOW, 'every connection in the room', 20_000);

  let heldMax = 0;
  // Paced by the fast clients only: a batch goes once their outboxes have room for it,
  // so only clients that stopped reading can overflow.
  const fastHaveRoom = () =>
    fast.every((c) => c.state !== 'open' || (c.outbox.depth <= LIMITS.maxMessages / 2 && c.outbox.bytes <= LIMITS.maxBytes / 2));
  const overflowed = (c: Connection) => (overflow === 'close' ? c.state !== 'open' : drops.has(c.id));
  let sent = 0;
  let sentBytes = 0;
  while (sent < MESSAGES || (!slow.every(overflowed) && sent < MAX_MESSAGES)) {
    runtime.sendToRoom('everyone', payload(sent));
    sentBytes += sizeOf(sent++);
    // Read as the frame is queued, before any of it is written: the most they hold.
    heldMax = Math.max(heldMax, runtime.health().outbox.bytesQueued);
    if (sent % 4 === 0) await eventually(fastHaveRoom, 'fast outboxes to drain', 30_000);
  }
  runtime.sendToAll(END);
  // Slow clients are still paused; the report waits for the fast ones.
  const fastReport = await clients.report(60_000);
  expect(slow.filter((c) => !overflowed(c)).map((c) => c.id)).toEqual([]);

  expect(fastReport.complete).toBe(true);
  const expected = Array.from({ length: sent }, (_, seq) => seq);
  const fastWrong = fastReport.clients
    .filter((client) => !client.slow)
    .filter(
      (client) =>
        !client.ended ||
        client.violations > 0 ||
        client.seqs.join() !== expected.join() ||
        client.lengths.some((length, i) => length !== sizeOf(i)),
    )
    .map(({ index, seqs, closeCode }) => ({ index, received: seqs.length, closeCode }));
  expect(fastWrong).toEqual([]);
  expect(fastReport.clients.filter((client) => !client.slow)).toHaveLength(FAST);
  expect(fast.filter((c) => drops.has(c.id)).map((c) => c.id)).toEqual([]);
  expect(
    closes.filter((event) => fast.includes(event.connection)).map(({ connection, code, cause }) => ({ id: connection.id, code, cause })),
  ).toEqual([]);

  expect(sentBytes).toBeGreaterThan(4 * HELD_BOUND);
  expect(heldMax).toBeGreaterThan(0);
  expect(heldMax).toBeLessThanOrEqual(HELD_BOUND);
  return { runtime, clients, slow, drops, closes, sent };
}

describe('slow consumers', () => {
  it('close: every slow client is closed with 4001, fast clients receive everything', async () => {
    const { clients, slow, closes, sent } = await overload('close');
    await clients.resume();
    const report = await clients.report(10_000);
    const slowReports = report.clients.filter((client) => client.slow);
    expect(slowReports).toHaveLength(SLOW);
    // What reached them is a prefix of what was sent, in order, then the close frame.
    for (const client of slowReports) {
      expect(client.seqs).toEqual(Array.from({ length: client.seqs.length }, (_, seq) => seq));
      expect(client.seqs.length).toBeLessThan(sent);
    }
    // Tallied, so a failure reads `{ "null ": 40 }` rather than 40 lines.
    expect(tally(slowReports.map((client) => `${client.closeCode} ${client.closeReason}`))).toEqual({ '4001 slow consumer': SLOW });
    await eventually(() => closes.length === SLOW, 'the server to see every slow connection closed', 10_000);
    expect(tally(closes.map(({ code, cause }) => `${code} ${cause}`))).toEqual({ '4001 slow-consumer': SLOW });
    expect(new Set(closes.map((event) => event.connection))).toEqual(new Set(slow));
  }, 120_000);

  it('drop-oldest: slow clients stay open, every frame is delivered or counted as dropped', async () => {
    const { runtime, clients, slow, drops, closes, sent } = await overload('drop-oldest');
    expect(slow.filter((c) => c.state !== 'open').map((c) => c.id)).toEqual([]);
    for (const c of slow) {
      expect(c.outbox.depth).toBeLessThanOrEqual(LIMITS.maxMessages);
      expect(c.outbox.bytes).toBeLessThanOrEqual(LIMITS.maxBytes);
    }
    const dropped = [...drops.values()].reduce((a, b) => a + b, 0);
    expect(dropped).toBeGreaterThan(0);
    expect(runtime.health().totals.dropped['outbox-overflow']).toBe(dropped);
    expect(slow.every((c) => (drops.get(c.id) ?? 0) > 0)).toBe(true);

    await clients.resume();
    const report = await clients.report(30_000);
    expect(report.complete).toBe(true);
    const byIndex = new Map(slow.map((c) => [clientOf(c).index, c]));
    const slowReports = report.clients.filter((client) => client.slow);
    expect(slowReports).toHaveLength(SLOW);
    for (const client of slowReports) {
      const connection = byIndex.get(client.index)!;
      expect({ ended: client.ended, closeCode: client.closeCode, violations: client.violations }).toEqual({
        ended: true,
        closeCode: null,
        violations: 0,
      });
      // The newest frames are kept: the last message arrives, and nothing is lost uncounted.
      expect(client.seqs.at(-1)).toBe(sent - 1);
      expect(client.seqs.length + drops.get(connection.id)!).toBe(sent);
    }
    expect(closes.map(({ connection, code, cause }) => ({ id: connection.id, code, cause }))).toEqual([]);
    await clients.close();
  }, 120_000);

  it('a slow consumer closed by its outbox receives the 4001 close frame once it reads again', async () => {
    const { runtime, url } = await startRuntime({
      heartbeat: false,
      closeTimeoutMs: 60_000,
      outbox: { maxMessages: 8, overflow: 'close' },
    });
    const opened: Connection[] = [];
    runtime.on('connection', (connection) => opened.push(connection));
    const client = await connect(url);
    await eventually(() => opened.length === 1, 'the connection', 20_000);
    const socket = (client.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    socket.pause();
    for (let i = 0; i < 9; i++) opened[0]!.send(`${i}`);
    expect(opened[0]!.state).toBe('disconnecting');
    socket.resume();
    const closed = await Promise.race([client.closed, new Promise((resolve) => setTimeout(() => resolve('no close within 5 s'), 5000))]);
    expect(closed).toEqual({ code: 4001, reason: 'slow consumer' });
  }, 20_000);
});
