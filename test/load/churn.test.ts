/**
 * Under load: 20 000 connect / join / send / close cycles leave nothing behind:
 * no connection, room or user in the registry, and nothing holding on to a
 * connection or its socket once it closed. Clients run in a child process, 50
 * cycles in flight, their source addresses spread over 127.0.0.2–254 so
 * ephemeral ports never run out. The heap before and after is the benchmark's
 * churn scenario (heap_growth_ratio).
 */
import { describe, expect, it } from 'vitest';
import type { Connection } from '../../src/index.js';
import { startRuntime } from '../helpers/runtime.js';
import { clientOf, gc, nextTurn, startClients } from './harness.js';
import { eventually } from '../helpers/client.js';

const WARMUP = 1_000;
const CYCLES = 20_000;
const CONCURRENCY = 50;
const ROOMS = 20;
const USERS = 7;

/** The transport socket berth keeps for a connection (not part of its public handle). */
const socketOf = (connection: Connection) => (connection as unknown as { socket: object }).socket;

describe('connection churn', () => {
  it('20 000 connect/join/send/close cycles leave the registry empty and no connection or socket held', async () => {
    // Default heartbeat: every connection also schedules (and must cancel) its ping timer.
    const { runtime, url } = await startRuntime();
    const closes = new Map<string, number>();
    // Weak references to every connection of the measured cycles, and to their sockets: once all have
    // closed and a full collection ran, none may be left.
    let watching = false;
    const watched: Array<WeakRef<object>> = [];
    runtime.on('connection', async (connection) => {
      if (watching) watched.push(new WeakRef(connection), new WeakRef(socketOf(connection)));
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
    watching = true;

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

    expect(watched).toHaveLength(2 * CYCLES);
    // A turn later (a weak reference keeps its target for the turn it was made or read in), collected.
    await nextTurn();
    gc();
    expect(watched.filter((ref) => ref.deref() !== undefined).length).toBe(0);
  }, 120_000);
});
