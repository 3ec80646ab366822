/**
 * Under load: broadcasts to overlapping rooms, several in the same event-loop
 * turn, reach every connection exactly once each and in global send order.
 */
import { describe, expect, it } from 'vitest';
import type { Connection } from '../../src/index.js';
import { startRuntime } from '../helpers/runtime.js';
import { END } from './protocol.js';
import { clientOf, nextTurn, startClients } from './harness.js';
import { eventually } from '../helpers/client.js';
import { seededRandom as random } from '../../src/util/random.js';

const CONNECTIONS = 500;
const ROOMS = 8;
const TURNS = 300;

/** The 2 or 3 rooms of client `index`. */
function roomsOf(index: number): string[] {
  const first = index % ROOMS;
  const rooms = new Set([first, (first + 1 + (Math.floor(index / ROOMS) % (ROOMS - 1))) % ROOMS]);
  if (index % 3 === 0) rooms.add((first + ROOMS / 2) % ROOMS);
  return [...rooms].map((room) => `room-${room}`);
}

describe('overlapping rooms', () => {
  it('concurrent broadcasts to 8 overlapping rooms keep each connection’s messages exact and in order', async () => {
    const { runtime, url } = await startRuntime({ heartbeat: false });
    const connections: Connection[] = [];
    let joined = 0;
    runtime.on('connection', async (connection) => {
      connections.push(connection);
      const results = await Promise.all(roomsOf(clientOf(connection).index).map((room) => connection.join(room)));
      if (results.every(Boolean)) joined++;
    });
    const clients = startClients();
    const { opened, failures } = await clients.open({ url, count: CONNECTIONS, concurrency: 50, keepText: true });
    expect(failures).toEqual([]);
    expect(opened).toBe(CONNECTIONS);
    await eventually(() => joined === CONNECTIONS, 'every connection in its rooms', 20_000);
    for (const connection of connections) expect([...connection.rooms].sort()).toEqual(roomsOf(clientOf(connection).index).sort());
    const sizes = Object.values(runtime.snapshot().rooms).map((members) => members.length);
    expect(sizes).toHaveLength(ROOMS);

    // Each turn 2–5 rooms broadcast (some twice), now and then everybody too; every message
    // carries a global sequence number and its room's own.
    const next = random(0xbe27);
    const sent: Array<{ room: string | null; text: string }> = [];
    const roomSeq = new Map<string, number>();
    for (let turn = 0; turn < TURNS; turn++) {
      const count = 2 + Math.floor(next() * 4);
      for (let k = 0; k < count; k++) {
        const room = next() < 0.08 ? null : `room-${Math.floor(next() * ROOMS)}`;
        const tag = room ?? 'all';
        const seq = roomSeq.get(tag) ?? 0;
        roomSeq.set(tag, seq + 1);
        const text = `${sent.length}|${tag}:${seq}`;
        sent.push({ room, text });
        if (room === null) runtime.sendToAll(text);
        else runtime.sendToRoom(room, text);
      }
      await nextTurn();
      // Now and then a timer, so that socket I/O runs between the turns: pacing, not a wait for anything.
      if (turn % 25 === 24) await new Promise((resolve) => setTimeout(resolve, 1));
    }
    runtime.sendToAll(END);

    const report = await clients.report(60_000);
    expect(report.complete).toBe(true);
    expect(report.clients).toHaveLength(CONNECTIONS);
    const wrong: unknown[] = [];
    let delivered = 0;
    for (const client of report.clients) {
      const rooms = new Set(roomsOf(client.index));
      const expected = sent.filter(({ room }) => room === null || rooms.has(room)).map(({ text }) => text);
      delivered += client.texts.length;
      if (client.violations === 0 && client.closeCode === null && client.texts.join('\n') === expected.join('\n')) continue;
      const at = expected.findIndex((text, i) => client.texts[i] !== text);
      wrong.push({
        index: client.index,
        expected: expected.length,
        received: client.texts.length,
        violations: client.violations,
        firstDifference: { at, expected: expected[at], received: client.texts[at] },
      });
    }
    expect({ wrong: wrong.length, first: wrong.slice(0, 3) }).toEqual({ wrong: 0, first: [] });
    // Sanity: the scenario really overlapped (every client shares messages with others) and was not trivial.
    expect(delivered).toBeGreaterThan(CONNECTIONS * 100);
  }, 120_000);
});
