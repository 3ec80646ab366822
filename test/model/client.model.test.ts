/**
 * Model-based tests of the client machine: `xstate/graph` paths to every edge
 * (state before, event, state after), each run on the pure machine with a
 * simulated clock; a coverage check fails the suite if any state or
 * transition was never taken. Its side effects run against real sockets in
 * test/client/client.test.ts.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createActor, SimulatedClock, type AnyStateMachine } from 'xstate';
import { getShortestPaths } from 'xstate/graph';
import { clientMachine, clientStateOf, reconnectDelay, type ClientEvent } from '../../machines/client.machine.js';
import { Coverage } from './coverage.js';
import { clientEvents, clientInput } from './samples.js';

type PathEvent = ClientEvent | { type: string };

const input = clientInput;

const events: PathEvent[] = [
  ...clientEvents,
  { type: 'xstate.after.reconnectDelay.client.reconnecting' },
  { type: 'xstate.after.closeTimeout.client.closing' },
  { type: 'xstate.after.connectTimeout.client.live.connecting' },
];

const paths = getShortestPaths(clientMachine as AnyStateMachine, {
  input,
  events: events as never,
  serializeState: (snapshot, event, previous) =>
    `${JSON.stringify(previous?.value ?? null)} --${event?.type ?? 'start'}${event && 'code' in event ? `(${String(event.code)})` : ''}--> ${JSON.stringify(snapshot.value)}`,
}).map((path) => ({
  events: path.steps.map((step) => step.event as PathEvent).filter((event) => event.type !== 'xstate.init'),
  expected: clientStateOf(path.state.value),
}));

const coverage = new Coverage('client');
afterAll(() => console.log(`model-based coverage: ${coverage.against(clientMachine).summary}`));

/** Runs a path: delayed events become simulated time passing by exactly their delay. */
function run(path: readonly PathEvent[]): { value: string; delays: number[] } {
  const clock = new SimulatedClock();
  const actor = createActor(clientMachine, { input, clock, inspect: coverage.observe });
  const delays: number[] = [];
  actor.start();
  for (const event of path) {
    if (event.type.startsWith('xstate.after.')) {
      // A delay of a state the actor is not in is no event at all (the model feeds it anyway).
      const state = event.type.split('.').at(-1);
      if (clientStateOf(actor.getSnapshot().value) !== state) continue;
      const delay = event.type.includes('reconnectDelay')
        ? actor.getSnapshot().context.delayMs
        : event.type.includes('connectTimeout')
          ? input.connectTimeoutMs
          : input.closeTimeoutMs;
      delays.push(delay);
      clock.increment(delay);
    } else {
      actor.send(event as ClientEvent);
    }
  }
  const value = clientStateOf(actor.getSnapshot().value);
  actor.stop();
  return { value, delays };
}

describe('client machine: paths to every edge', () => {
  it('has paths', () => expect(paths.length).toBeGreaterThan(8));
  it.each(
    paths.map(
      (path) =>
        [
          path.events.map((event) => event.type + ('code' in event ? `(${String(event.code)})` : '')).join(' → ') || '(start)',
          path,
        ] as const,
    ),
  )('%s', (_name, path) => {
    expect(run(path.events).value).toBe(path.expected);
  });
  it('covers every state and transition', () => {
    const report = coverage.against(clientMachine);
    expect(report.missingStates).toEqual([]);
    expect(report.missingTransitions).toEqual([]);
  });
});

describe('reconnect delays: full jitter, guided by the close', () => {
  const context = (attempt: number, random: () => number) => ({ backoff: { initialMs: 100, maxMs: 1000 }, random, attempt });

  it('doubles up to the cap, anywhere from 0 to it', () => {
    expect(
      [0, 1, 2, 3, 4, 5].map((attempt) =>
        reconnectDelay(
          context(attempt, () => 0.999_999),
          1006,
          '',
        ),
      ),
    ).toEqual([99, 199, 399, 799, 999, 999]);
    expect(
      reconnectDelay(
        context(3, () => 0),
        1006,
        '',
      ),
    ).toBe(0);
  });

  it('a server that asks for time gets at least that, spread over up to twice it', () => {
    expect(
      reconnectDelay(
        context(0, () => 0),
        1013,
        'retry-after=7',
      ),
    ).toBe(7000);
    expect(
      reconnectDelay(
        context(9, () => 0.999_999),
        1013,
        'retry-after=7',
      ),
    ).toBe(13_999);
  });

  it('after 1001 and 1012 without a retry-after it comes back soon, whatever the attempt', () => {
    expect(
      reconnectDelay(
        context(8, () => 0.999_999),
        1012,
        '',
      ),
    ).toBe(99);
    expect(
      reconnectDelay(
        context(8, () => 0.999_999),
        1001,
        'server shutting down',
      ),
    ).toBe(99);
  });

  it('the machine waits out a retry-after on its clock: reconnecting until the asked time has passed, then connecting', () => {
    const clock = new SimulatedClock();
    // No jitter: the wait is the floor the server asked for.
    const actor = createActor(clientMachine, { input: { ...input, random: () => 0 }, clock }).start();
    actor.send({ type: 'socket.closed', code: 1013, reason: 'retry-after=1' });
    expect(clientStateOf(actor.getSnapshot().value)).toBe('reconnecting');
    clock.increment(999);
    expect(clientStateOf(actor.getSnapshot().value)).toBe('reconnecting');
    clock.increment(1);
    expect(clientStateOf(actor.getSnapshot().value)).toBe('connecting');
    actor.stop();
  });
});
