import { SimulatedClock } from 'xstate';
import { describe, expect, it } from 'vitest';
import type { CloseCause, Connection, Runtime, RuntimeEvents } from '../src/index.js';
import type { ServerConnection } from '../src/connection/connection.js';
import { connect, eventually, type TestClient } from './helpers/client.js';
import { startRuntime } from './helpers/runtime.js';

interface Setup {
  runtime: Runtime;
  connection: ServerConnection;
  client: TestClient;
  clock: SimulatedClock;
  closes: RuntimeEvents['close'][];
}

interface Trigger {
  name: string;
  cause: CloseCause;
  code: number;
  reason: string;
  /** Takes effect later (over the network, or at the next flush), so the test waits until the server has seen it. */
  deferred: boolean;
  fire(setup: Setup): void;
}

const HEARTBEAT = { intervalMs: 1000, timeoutMs: 500 };

const triggers: Trigger[] = [
  {
    name: 'client close frame',
    cause: 'client',
    code: 4000,
    reason: 'client bye',
    deferred: true,
    fire: ({ client }) => client.ws.close(4000, 'client bye'),
  },
  {
    name: 'client drops TCP',
    cause: 'client',
    code: 1006,
    reason: '',
    deferred: true,
    fire: ({ client }) => client.ws.terminate(),
  },
  {
    name: 'server close()',
    cause: 'server',
    code: 4002,
    reason: 'server bye',
    deferred: false,
    fire: ({ connection }) => connection.close(4002, 'server bye'),
  },
  {
    name: 'heartbeat timeout',
    cause: 'heartbeat',
    code: 1006,
    reason: '',
    deferred: false,
    // The ping went out during setup; this passes its deadline.
    fire: ({ clock }) => clock.increment(HEARTBEAT.timeoutMs),
  },
  {
    name: 'failed send',
    cause: 'send-failed',
    code: 1006,
    reason: '',
    deferred: true,
    fire: ({ connection }) => {
      // Fault injection on the real socket: the next write fails as a broken pipe would.
      (connection.socket as { write: ServerConnection['socket']['write'] }).write = (_chunks, done) =>
        done(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
      connection.send('doomed');
    },
  },
  {
    name: 'socket error (oversized frame)',
    cause: 'socket-error',
    code: 1009,
    reason: '',
    deferred: true,
    fire: ({ client }) => client.ws.send('x'.repeat(2048)),
  },
  {
    name: 'runtime shutdown',
    cause: 'shutdown',
    code: 1001,
    reason: 'server shutting down',
    deferred: false,
    fire: ({ runtime }) => void runtime.close({ timeoutMs: 2000 }),
  },
];

async function setUp(): Promise<Setup> {
  const clock = new SimulatedClock();
  const { runtime, url } = await startRuntime({ clock, heartbeat: HEARTBEAT, maxPayload: 1024 });
  const closes: RuntimeEvents['close'][] = [];
  runtime.on('close', (event) => closes.push(event));
  runtime.on('error', () => {});
  const opened = new Promise<Connection>((resolve) => runtime.on('connection', resolve));
  // A client that never answers pings, so the heartbeat trigger can fire.
  const client = await connect(url, { autoPong: false });
  const connection = (await opened) as ServerConnection;
  expect(await connection.join('room-a')).toBe(true);
  expect(await connection.join('room-b')).toBe(true);
  expect(await connection.setUser('ada')).toBe(true);
  clock.increment(HEARTBEAT.intervalMs);
  await new Promise<void>((resolve) => client.ws.once('ping', () => resolve()));
  return { runtime, connection, client, clock, closes };
}

async function fire(trigger: Trigger, setup: Setup): Promise<void> {
  trigger.fire(setup);
  // A deferred trigger counts as first once the server has seen it.
  if (trigger.deferred) await eventually(() => setup.connection.state !== 'open', `${trigger.name} to arrive`);
}

async function expectCleanedUpOnce(setup: Setup, first: Trigger): Promise<void> {
  const { runtime, connection, closes } = setup;
  await eventually(() => closes.length > 0, 'the close event');
  // Settle everything (a shutdown trigger may already have started this).
  await runtime.close({ timeoutMs: 2000 });
  await new Promise((resolve) => setImmediate(resolve));
  expect(closes).toHaveLength(1);
  expect(closes[0]).toMatchObject({ code: first.code, reason: first.reason, cause: first.cause });
  expect(closes[0]!.connection).toBe(connection);
  expect(connection.state).toBe('closed');
  expect(runtime.connection(connection.id)).toBeUndefined();
  const snapshot = runtime.snapshot();
  expect(snapshot.connections).toEqual({});
  expect(snapshot.rooms).toEqual({});
  expect(snapshot.users).toEqual({});
  expect(runtime.health().totals.closedByCause).toEqual({ [first.cause]: 1 });
}

describe('cleanup runs exactly once', () => {
  it.each(triggers.map((t) => [t.name, t] as const))('%s alone', async (_name, trigger) => {
    const setup = await setUp();
    await fire(trigger, setup);
    await expectCleanedUpOnce(setup, trigger);
  });

  const pairs = triggers.flatMap((first) =>
    triggers.filter((second) => second !== first).map((second) => [first.name, second.name, first, second] as const),
  );

  it.each(pairs)('%s, then %s', async (_a, _b, first, second) => {
    const setup = await setUp();
    await fire(first, setup);
    second.fire(setup);
    await expectCleanedUpOnce(setup, first);
  });
});
