import { SimulatedClock, type AnyActorRef, type InspectionEvent } from 'xstate';
import { describe, expect, it } from 'vitest';
import type { Connection, RuntimeEvents } from '../src/index.js';
import { connect, eventually } from './helpers/client.js';
import { startRuntime } from './helpers/runtime.js';

const HEARTBEAT = { intervalMs: 30_000, timeoutMs: 10_000 };

async function setUp(autoPong: boolean) {
  const clock = new SimulatedClock();
  const pongs: string[] = [];
  const inspect = (event: InspectionEvent) => {
    if (event.type === '@xstate.event' && event.event.type === 'socket.pong') pongs.push((event.actorRef as AnyActorRef).id);
  };
  const { runtime, url } = await startRuntime({ clock, heartbeat: HEARTBEAT, inspect });
  const closes: RuntimeEvents['close'][] = [];
  runtime.on('close', (event) => closes.push(event));
  const opened = new Promise<Connection>((resolve) => runtime.on('connection', resolve));
  const client = await connect(url, { autoPong });
  const pings: number[] = [];
  client.ws.on('ping', () => pings.push(pings.length));
  return { runtime, clock, client, connection: await opened, closes, pongs, pings };
}

describe('heartbeat', () => {
  it('terminates a client that stops answering pings and cleans it up', async () => {
    const { runtime, clock, client, connection, closes, pings } = await setUp(false);
    await connection.join('lobby');
    clock.increment(HEARTBEAT.intervalMs - 1);
    expect(connection.state).toBe('open');
    clock.increment(1);
    await eventually(() => pings.length === 1, 'the ping');
    clock.increment(HEARTBEAT.timeoutMs - 1);
    expect(connection.state).toBe('open');
    clock.increment(1);
    expect(connection.state).not.toBe('open');
    expect((await client.closed).code).toBe(1006);
    await eventually(() => closes.length === 1, 'the close event');
    expect(closes[0]).toMatchObject({ code: 1006, cause: 'heartbeat' });
    expect(runtime.snapshot()).toEqual({ connections: {}, rooms: {}, users: {} });
  });

  it('keeps a client that answers, cycle after cycle', async () => {
    const { clock, client, connection, pongs, pings } = await setUp(true);
    for (let cycle = 1; cycle <= 5; cycle++) {
      clock.increment(HEARTBEAT.intervalMs);
      await eventually(() => pings.length === cycle, `ping ${cycle}`);
      await eventually(() => pongs.length === cycle, `pong ${cycle} at the server`);
      clock.increment(HEARTBEAT.timeoutMs);
      expect(connection.state).toBe('open');
    }
    connection.send('still here');
    expect(await client.next()).toBe('still here');
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
