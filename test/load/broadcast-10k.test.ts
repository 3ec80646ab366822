/**
 * Under load: 10 000 concurrent connections, every broadcast reaches each of
 * them exactly once and in order. The clients run in a child process
 * (`clients.ts`): one process may hold 20 000 file descriptors.
 */
import { describe, expect, it } from 'vitest';
import { startRuntime } from '../helpers/runtime.js';
import { END } from './protocol.js';
import { joinEveryone, nextTurn, startClients } from './harness.js';
import { eventually } from '../helpers/client.js';

const CONNECTIONS = 10_000;
const MESSAGES = 20;

describe('10 000 concurrent connections', () => {
  it('each receives every broadcast exactly once, in order', async () => {
    const { runtime, url } = await startRuntime({ heartbeat: false });
    const joined = joinEveryone(runtime);
    const clients = startClients();
    const { opened, failures } = await clients.open({ url, count: CONNECTIONS, concurrency: 200 });
    expect(failures).toEqual([]);
    expect(opened).toBe(CONNECTIONS);
    await eventually(() => joined() === CONNECTIONS, `${CONNECTIONS} joins`, 20_000);
    expect(runtime.health().connections.current).toBe(CONNECTIONS);

    // Room and global broadcasts alternate; every third message starts a new event-loop turn,
    // and now and then a timer lets socket I/O run between the turns.
    for (let seq = 0; seq < MESSAGES; seq++) {
      if (seq % 2 === 0) runtime.sendToRoom('everyone', `${seq}|room`);
      else runtime.sendToAll(`${seq}|all`);
      if (seq % 3 === 2) await nextTurn();
      if (seq % 7 === 6) await new Promise((resolve) => setTimeout(resolve, 1));
    }
    runtime.sendToAll(END);

    const report = await clients.report(60_000);
    expect(report.complete).toBe(true);
    expect(report.clients).toHaveLength(CONNECTIONS);
    const expected = Array.from({ length: MESSAGES }, (_, seq) => seq);
    const wrong = report.clients.filter(
      (client) => client.violations !== 0 || !client.ended || client.closeCode !== null || client.seqs.join() !== expected.join(),
    );
    // Summarised, so a failure names a few connections instead of printing 10 000.
    expect({
      wrong: wrong.length,
      first: wrong.slice(0, 3).map(({ index, seqs, violations, closeCode }) => ({ index, seqs, violations, closeCode })),
    }).toEqual({
      wrong: 0,
      first: [],
    });
    expect(new Set(report.clients.map((client) => client.index)).size).toBe(CONNECTIONS);
  }, 120_000);
});
