/**
 * No callback can stop the supervisor: a throw injected into each callback the runtime or the
 * application supplies, in turn, is reported, and every other connection carries on.
 */
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { SupervisorEvent } from '../../machines/supervisor.machine.js';
import { connectionMachine } from '../../machines/connection.machine.js';
import {
  createMemoryAdapter,
  createMemoryHistory,
  type Adapter,
  type HistoryStore,
  type Runtime,
  type RuntimeEvents,
  type RuntimeOptions,
} from '../../src/index.js';
import { provideSupervisorMachine } from '../../src/connection/actors.js';
import { startSupervisor } from '../../src/runtime/supervisor.js';
import { realTimers } from '../../src/util/timers.js';
import { eventually } from '../helpers/client.js';
import { startRuntime } from '../helpers/runtime.js';

type Message = Record<string, unknown>;

async function v1(url: string): Promise<{ ws: WebSocket; received: Message[] }> {
  const ws = new WebSocket(url, ['berth.v1']);
  const received: Message[] = [];
  ws.on('message', (data: Buffer) => void received.push(JSON.parse(data.toString()) as Message));
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  await eventually(() => received.some((m) => m.t === 'welcome'), 'welcome');
  return { ws, received };
}

const boom = (what: string) => () => {
  throw new Error(`injected: ${what}`);
};

/**
 * `real`, except that its `method` throws once `armed` says so. A method `real` lacks (the in-memory
 * adapter's `track`) is there all the same, doing nothing until armed.
 */
function faulty<T extends object>(real: T, name: string, method: string, armed: () => boolean): T {
  return new Proxy(real, {
    get(target, key) {
      const value = Reflect.get(target, key) as unknown;
      if (key === method)
        return (...args: unknown[]) =>
          armed() ? boom(`${name}.${method}`)() : (value as ((...a: unknown[]) => unknown) | undefined)?.apply(target, args);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

const faultyHistory = (method: 'append' | 'position' | 'read', armed: () => boolean): HistoryStore =>
  faulty(createMemoryHistory(), 'history', method, armed);

const faultyAdapter = (method: 'publish' | 'track', armed: () => boolean): Adapter =>
  faulty(createMemoryAdapter(), 'adapter', method, armed);

interface Fault {
  readonly name: string;
  options?(armed: () => boolean): RuntimeOptions;
  install?(runtime: Runtime): void;
  /** Makes the runtime run the faulty callback, with `url` and a bystander in room `r`. */
  trigger(runtime: Runtime, url: string): Promise<void>;
}

/** A berth.v1 client that drops and resumes: the resume takes its session and reads its history. */
async function dropAndResume(runtime: Runtime, url: string): Promise<void> {
  const client = await v1(url);
  const { session } = client.received.find((m) => m.t === 'welcome')!;
  const before = runtime.metrics.snapshot().sessions.detached ?? 0;
  client.ws.terminate();
  await eventually(() => (runtime.metrics.snapshot().sessions.detached ?? 0) > before, 'the session kept');
  const again = await v1(url);
  again.ws.send(JSON.stringify({ t: 'resume', token: session }));
  await eventually(() => again.received.some((m) => m.t === 'resumed'), 'resumed');
}

let fired = false;
const armed = () => fired;

const faults: Fault[] = [
  { name: 'history.read', options: (a) => ({ history: faultyHistory('read', a) }), trigger: (runtime, url) => dropAndResume(runtime, url) },
  {
    name: 'history.append',
    options: (a) => ({ history: faultyHistory('append', a) }),
    trigger: async (runtime) => runtime.sendToRoom('r', 'numbered'),
  },
  {
    name: 'history.position',
    options: (a) => ({ history: faultyHistory('position', a) }),
    trigger: async (runtime, url) => {
      await v1(url);
    },
  },
  {
    name: 'adapter.publish',
    options: (a) => ({ adapter: faultyAdapter('publish', a) }),
    trigger: async (runtime) => runtime.sendToRoom('r', 'published'),
  },
  {
    name: 'adapter.track',
    options: (a) => ({ adapter: faultyAdapter('track', a) }),
    trigger: async (runtime, url) => {
      await v1(url);
    },
  },
  {
    name: 'authenticate',
    options: (a) => ({ authenticate: () => (a() ? boom('authenticate')() : {}) }),
    trigger: async (_runtime, url) => {
      const ws = new WebSocket(url);
      await new Promise((resolve) => ws.once('error', resolve).once('unexpected-response', resolve));
    },
  },
  {
    name: 'inspect',
    options: (a) => ({ inspect: (event) => void (a() && event.type === '@xstate.event' ? boom('inspect')() : undefined) }),
    trigger: async (runtime) => runtime.sendToRoom('r', 'inspected'),
  },
  ...(['connection', 'close', 'resumed', 'error'] as const).map((event): Fault => ({
    name: `the ${event} handler`,
    install: (runtime) => runtime.on(event, () => void (fired ? boom(`${event} handler`)() : undefined)),
    trigger: async (runtime, url) => {
      if (event === 'error') {
        // A frame that is no berth.v1 message is reported (ERR_PROTOCOL): the error handler runs, and throws.
        const client = await v1(url);
        client.ws.send('not json');
        return eventually(() => client.received.some((m) => m.t === 'error'), 'the error answer');
      }
      if (event === 'resumed') return dropAndResume(runtime, url);
      const client = await v1(url);
      if (event === 'close') client.ws.close(1000);
    },
  })),
  {
    name: 'the request handler',
    install: (runtime) => runtime.onRequest(() => (fired ? boom('request handler')() : 'ok')),
    trigger: async (_runtime, url) => {
      const client = await v1(url);
      client.ws.send(JSON.stringify({ t: 'req', id: 1, d: 'q' }));
      await eventually(() => client.received.some((m) => m.id === 1), 'the answer');
    },
  },
];

describe('no callback can stop the supervisor', () => {
  for (const fault of faults) {
    it(`a throw in ${fault.name} is reported; other connections carry on`, async () => {
      fired = false;
      const { runtime, url } = await startRuntime({ heartbeat: false, ...fault.options?.(armed) });
      const errors: Array<RuntimeEvents['error']> = [];
      runtime.on('error', (event) => void errors.push(event));
      fault.install?.(runtime);
      runtime.on('connection', (connection) => void connection.join('r'));
      const bystander = await v1(url);
      await eventually(() => bystander.received.some((m) => m.t === 'joined'), 'the bystander joined');

      fired = true;
      await fault.trigger(runtime, url).catch(() => {});
      await eventually(() => errors.length > 0, 'the failure reported');
      fired = false;

      expect(runtime.supervisor.getSnapshot().status).toBe('active');
      const newcomer = await v1(url);
      await eventually(() => newcomer.received.some((m) => m.t === 'joined'), 'the newcomer joined');
      runtime.sendToRoom('r', 'after');
      for (const [who, client] of [
        ['bystander', bystander],
        ['newcomer', newcomer],
      ] as const) {
        await eventually(
          () => client.received.some((m) => m.d === 'after'),
          `the broadcast after, to the ${who}: ${JSON.stringify(client.received.map((m) => m.t))}`,
        );
      }
    });
  }
});

describe('the callbacks an event carries run guarded', () => {
  for (const inspected of [false, true]) {
    it(`a throwing respond, taken or delivered is reported and the supervisor goes on (${inspected ? 'actors' : 'compiled'})`, () => {
      const failures: string[] = [];
      const supervisor = startSupervisor(
        provideSupervisorMachine({ sessionExpired: () => {}, broadcasting: () => false, broadcasted: () => {}, deliveryFailed: () => {} }),
        {
          input: { maxSessions: 10 },
          inspect: inspected ? () => {} : undefined,
          clock: undefined,
          timers: realTimers,
          connectionLogic: connectionMachine,
          failed: (error) => failures.push(`failed ${String(error)}`),
          callbackFailed: (_error, what) => failures.push(what),
          connectionFailed: () => {},
        },
      );
      const thrower = boom('callback');
      const events: SupervisorEvent[] = [
        { type: 'room.join', id: 'nobody', room: 'r', respond: thrower },
        { type: 'session.take', token: 't', user: undefined, taken: thrower },
        { type: 'broadcast', target: { kind: 'all' }, frame: { chunks: [], byteLength: 0 }, delivered: thrower },
      ];
      for (const event of events) supervisor.send(event);
      expect(failures).toEqual([
        "the room.join event's respond callback",
        "the session.take event's taken callback",
        "the broadcast event's delivered callback",
      ]);
      expect(supervisor.active).toBe(true);
      let answered: boolean | undefined;
      supervisor.send({ type: 'room.join', id: 'nobody', room: 'r', respond: (ok) => void (answered = ok) });
      expect(answered).toBe(false);
    });
  }
});
