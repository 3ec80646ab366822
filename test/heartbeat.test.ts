import { SimulatedClock } from 'xstate';
import { describe, expect, it } from 'vitest';
import type { Connection, RuntimeEvents } from '../src/index.js';
import { connect, eventually } from './helpers/client.js';
import { startRuntime } from './helpers/runtime.js';

const HEARTBEAT = { intervalMs: 30_000, timeoutMs: 10_000 };

async function setUp(autoPong: boolean, heartbeat = HEARTBEAT) {
  const clock = new SimulatedClock();
  const { runtime, url } = await startRuntime({ clock, heartbeat });
  const closes: RuntimeEvents['close'][] = [];
  runtime.on('close', (event) => closes.push(event));
  const opened = new Promise<Connection>((resolve) => runtime.on('connection', resolve));
  const client = await connect(url, { autoPong });
  const pings: number[] = [];
  client.ws.on('ping', () => pings.push(pings.length));
  // Pongs the server took, from its heartbeat counters.
  const pongs = () => runtime.metrics.snapshot().heartbeat.pongs;
  return { runtime, clock, client, connection: await opened, closes, pongs, pings };
}

describe('heartbeat', () => {
  it('terminates a client that stops answering pings and cleans it up', async () => {
    const { runtime, clock, client, connection, closes, pings } = await setUp(false);
    await connection.join('lobby');
    expect(connection.heartbeat).toEqual({ phase: 'waiting', roundTripMs: undefined });
    clock.increment(HEARTBEAT.intervalMs - 1);
    expect(connection.state).toBe('open');
    clock.increment(1);
    await eventually(() => pings.length === 1, 'the ping');
    // The ping's state is data, in the handle and the snapshot, not a machine state.
    expect(connection.heartbeat.phase).toBe('awaiting-pong');
    expect(runtime.snapshot().connections[connection.id]?.heartbeat.phase).toBe('awaiting-pong');
    clock.increment(HEARTBEAT.timeoutMs - 1);
    expect(connection.state).toBe('open');
    clock.increment(1);
    expect(connection.state).not.toBe('open');
    expect(connection.heartbeat.phase).toBe('off');
    expect(runtime.metrics.snapshot().heartbeat).toEqual({ pings: 1, pongs: 0, missed: 1 });
    expect((await client.closed).code).toBe(1006);
    await eventually(() => closes.length === 1, 'the close event');
    expect(closes[0]).toMatchObject({ code: 1006, cause: 'heartbeat' });
    expect(runtime.snapshot()).toEqual({ connections: {}, rooms: {}, users: {} });
  });

  it('keeps a client that answers, cycle after cycle: one ping every interval', async () => {
    const { runtime, clock, client, connection, pongs, pings } = await setUp(true);
    clock.increment(HEARTBEAT.intervalMs);
    for (let cycle = 1; cycle <= 5; cycle++) {
      await eventually(() => pings.length === cycle, `ping ${cycle}`);
      await eventually(() => pongs() === cycle, `pong ${cycle} at the server`);
      expect(connection.heartbeat).toEqual({ phase: 'waiting', roundTripMs: 0 });
      // Past this round's timeout, then on to the next round.
      clock.increment(HEARTBEAT.timeoutMs);
      expect(connection.state).toBe('open');
      clock.increment(HEARTBEAT.intervalMs - HEARTBEAT.timeoutMs);
    }
    expect(runtime.metrics.snapshot().heartbeat).toMatchObject({ pongs: 5, missed: 0 });
    connection.send('still here');
    expect(await client.next()).toBe('still here');
  });

  it('one sweep for every connection: only the one that stops answering is ended', async () => {
    const clock = new SimulatedClock();
    const { runtime, url } = await startRuntime({ clock, heartbeat: HEARTBEAT });
    const closes: RuntimeEvents['close'][] = [];
    runtime.on('close', (event) => closes.push(event));
    const clients = await Promise.all([connect(url), connect(url), connect(url, { autoPong: false })]);
    await eventually(() => Object.keys(runtime.snapshot().connections).length === 3, 'three connections');
    clock.increment(HEARTBEAT.intervalMs);
    await eventually(() => runtime.metrics.snapshot().heartbeat.pongs === 2, 'two pongs');
    clock.increment(HEARTBEAT.timeoutMs);
    expect((await clients[2]!.closed).code).toBe(1006);
    await eventually(() => closes.length === 1, 'one close');
    expect(closes[0]).toMatchObject({ cause: 'heartbeat' });
    expect(Object.keys(runtime.snapshot().connections)).toHaveLength(2);
    expect(runtime.metrics.snapshot().heartbeat).toEqual({ pings: 3, pongs: 2, missed: 1 });
  });

  it('with a timeout longer than the interval, a ping awaiting its pong is not sent again, and the miss comes at its timeout', async () => {
    const { clock, connection, pings } = await setUp(false, { intervalMs: 1000, timeoutMs: 2500 });
    clock.increment(1000);
    await eventually(() => pings.length === 1, 'the ping');
    clock.increment(1000);
    clock.increment(1000);
    // Rounds at 2000 and 3000 skip it: its ping of 1000 is still out.
    expect(connection.state).toBe('open');
    clock.increment(499);
    expect(connection.state).toBe('open');
    clock.increment(1);
    expect(connection.state).not.toBe('open');
    expect(pings).toHaveLength(1);
  });

  it('a ping that throws ends only its own connection, as a failed write (cause send-failed); the others are pinged', async () => {
    const clock = new SimulatedClock();
    const { runtime, url } = await startRuntime({ clock, heartbeat: HEARTBEAT });
    const closes: RuntimeEvents['close'][] = [];
    runtime.on('close', (event) => closes.push(event));
    const errors: string[] = [];
    runtime.on('error', ({ error }) => void errors.push(error.code));
    const seen: Connection[] = [];
    runtime.on('connection', (connection) => void seen.push(connection));
    await Promise.all([connect(url), connect(url)]);
    await eventually(() => seen.length === 2, 'two connections');
    (seen[0] as unknown as { socket: { ping(): void } }).socket.ping = () => {
      throw new Error('boom');
    };
    clock.increment(HEARTBEAT.intervalMs);
    await eventually(() => closes.length === 1, 'one close');
    expect(closes[0]).toMatchObject({ cause: 'send-failed' });
    expect(errors).toEqual(['ERR_SEND_FAILED']);
    await eventually(() => runtime.metrics.snapshot().heartbeat.pongs === 1, 'the other one’s pong');
    expect(seen[1]!.state).toBe('open');
  });

  it('answers client pings', async () => {
    const { client } = await setUp(true);
    const pong = new Promise<string>((resolve) => client.ws.once('pong', (data) => resolve(data.toString())));
    client.ws.ping('are you there');
    expect(await pong).toBe('are you there');
  });

  it('with heartbeat off, sends no pings however much time passes', async () => {
    const clock = new SimulatedClock();
    const { runtime, url } = await startRuntime({ clock, heartbeat: false });
    const opened = new Promise<Connection>((resolve) => runtime.on('connection', resolve));
    const client = await connect(url, { autoPong: false });
    const connection = await opened;
    let pinged = false;
    client.ws.on('ping', () => (pinged = true));
    clock.increment(10 * HEARTBEAT.intervalMs);
    connection.send('marker');
    // The marker was sent after any ping could have been, so it arrives after it.
    expect(await client.next()).toBe('marker');
    expect(pinged).toBe(false);
    expect(connection.state).toBe('open');
  });
});
