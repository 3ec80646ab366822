/**
 * Under load: 20 000 connect / join / send / close cycles leave nothing behind:
 * no connection, room or user in the registry, and the heap back where it
 * started. Clients run in a child process, 50 cycles in flight, their source
 * addresses spread over 127.0.0.2–254 so ephemeral ports never run out.
 */
import { describe, expect, it } from 'vitest';
import { startRuntime } from '../helpers/runtime.js';
import { MB, clientOf, gc, mb, startClients } from './harness.js';
import { eventually } from '../helpers/client.js';

const WARMUP = 1_000;
const CYCLES = 20_000;
const CONCURRENCY = 50;
const ROOMS = 20;
const USERS = 7;
/**
 * Heap after the churn ≤ heap before + 4 MB. A connection costs the server
 * several KB while open (actor, socket, ws, outbox); leaking even 200 bytes
 * per cycle would retain 4 MB over 20 000 cycles and fail this. The slack
 * covers what is not per-connection: JIT code and feedback, lazily grown
 * tables and the test runner's own allocations between the two measurements.
 */
const HEAP_SLACK = 4 * MB;

describe('connection churn', () => {
  it('20 000 connect/join/send/close cycles leave the registry empty and the heap where it was', async () => {
    // Default heartbeat: every connection also schedules (and must cancel) its ping timer.
    const { runtime, url } = await startRuntime();
    const closes = new Map<string, number>();
    runtime.on('connection', async (connection) => {
      const { index } = clientOf(connection);
      const room = `room-${index % ROOMS}`;
      if ((await connection.join(room)) && (await connection.setUser(`user-${index % USERS}`))) connection.send(`joined:${room}`);
    });
    runtime.on('message', ({ connection, data }) => {
      for (const room of connection.rooms) runtime.sendToRoom(room, data);
    });
    runtime.on('close', ({ code, cause }) => closes.set(`${code} ${cause}`, (closes.get(`${code} ${cause}`) ?? 0) + 1));
    const closed = () => [...closes.values()].reduce((a, b) => a + b, 0);
    const clients = startClients();

    // Warm-up: code is compiled and pools and tables reach their working size before the baseline.
    const warmup = await clients.churn({ url, cycles: WARMUP, concurrency: CONCURRENCY, cycleTimeoutMs: 10_000 });
    expect(warmup).toMatchObject({ completed: WARMUP, failureCount: 0 });
    await eventually(() => closed() === WARMUP, 'warm-up connections closed', 20_000);
    gc();
    const before = process.memoryUsage().heapUsed;

    const churn = await clients.churn({ url, cycles: CYCLES, concurrency: CONCURRENCY, cycleTimeoutMs: 10_000 });
    expect(churn).toEqual({ type: 'churned', completed: CYCLES, failureCount: 0, failures: [] });
    await eventually(() => closed() === WARMUP + CYCLES, 'every connection closed', 20_000);
    expect(Object.fromEntries(closes)).toEqual({ '1000 client': WARMUP + CYCLES });

    expect(runtime.snapshot()).toEqual({ connections: {}, rooms: {}, users: {} });
    const health = runtime.health();
    expect({ current: health.connections.current, pending: health.connections.pending, rooms: health.rooms, users: health.users }).toEqual({
      current: 0,
      pending: 0,
      rooms: 0,
      users: 0,
    });
    expect(health.totals.accepted).toBe(WARMUP + CYCLES);

    gc();
    const after = process.memoryUsage().heapUsed;
    console.log(
      `churn: heapUsed ${mb(before)} before, ${mb(after)} after ${CYCLES} cycles (${((after - before) / CYCLES).toFixed(0)} B/cycle)`,
    );
    expect(after).toBeLessThan(before + HEAP_SLACK);
  }, 120_000);
});
