/**
 * Model-based tests of the connection machine: paths generated from the
 * machine by `xstate/graph` reach every (state, incoming event) pair. Each
 * path runs on the pure machine, and every path made only of things a real
 * peer, server or clock can do also runs against a real runtime over a real
 * socket, and must end in the state the model says. A coverage check fails
 * the suite if any state or transition was never taken.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createActor, SimulatedClock, type AnyStateMachine } from 'xstate';
import { getShortestPaths } from 'xstate/graph';
import { connectionMachine, type ConnectionEvent, type ConnectionInput } from '../../machines/connection.machine.js';
import { Coverage } from './coverage.js';
import { connectionEvents, connectionInput } from './samples.js';
import { realize, REALIZABLE, stateOf } from './connection-stimuli.js';

type PathEvent = ConnectionEvent | { type: string };

const inputs: Record<string, ConnectionInput> = {
  connection: connectionInput,
};

/** One sample of every event the machine handles, the delayed ones by their XState event type. */
const events: PathEvent[] = [...connectionEvents, { type: 'xstate.after.closeTimeout.connection.disconnecting.closing' }];

/**
 * Paths to every edge (state before, event, state after): with the edge in the
 * key, shortest paths cover transitions, not only states. A bounded key too
 * (no context), or the traversal would not end.
 */
function paths(input: ConnectionInput, order: readonly PathEvent[] = events) {
  return getShortestPaths(connectionMachine as AnyStateMachine, {
    input,
    events: order as never,
    serializeState: (snapshot, event, previous) =>
      `${JSON.stringify(previous?.value ?? null)} --${event?.type ?? 'start'}--> ${JSON.stringify(snapshot.value)}`,
  }).map((path) => ({
    events: path.steps.map((step) => step.event as PathEvent).filter((event) => event.type !== 'xstate.init'),
    expected: stateOf(path.state.value),
  }));
}

const coverage = new Coverage('connection');
const real = new Coverage('connection');

afterAll(() => {
  const report = coverage.against(connectionMachine);
  console.log(`model-based coverage, all runs: ${report.summary}`);
  const overSockets = real.against(connectionMachine);
  console.log(
    `model-based coverage, over real sockets: ${overSockets.summary}; pure machine only: ${overSockets.missingTransitions.join('; ')}`,
  );
});

describe('connection machine, model-based', () => {
  for (const [name, input] of Object.entries(inputs)) {
    const generated = paths(input);

    it(`${name}: ${generated.length} generated paths on the pure machine end where the model says`, () => {
      expect(generated.length).toBeGreaterThan(5);
      for (const path of generated) {
        const actor = createActor(connectionMachine, { input, inspect: coverage.observe, clock: new SimulatedClock() });
        actor.start();
        for (const event of path.events) actor.send(event as ConnectionEvent);
        expect(stateOf(actor.getSnapshot().value), path.events.map((e) => e.type).join(' → ')).toBe(path.expected);
        actor.stop();
      }
    });

    // Ties between shortest paths are broken by event order; the reverse order gives the real runs
    // other routes to the same edges (one through socket.error cannot stay in closing: ws closes the socket).
    const realizable = [...generated, ...paths(input, [...events].reverse())].filter((path) =>
      path.events.every((event) => REALIZABLE.has(event.type)),
    );
    it(`${name}: the paths a real peer, the application and the clock can produce run against the runtime over real sockets`, async () => {
      let ran = 0;
      for (const path of realizable) {
        const outcome = await realize(input, path.events, (event) => {
          coverage.observe(event);
          real.observe(event);
        });
        if (outcome === undefined) continue;
        ran++;
        expect(outcome.real, path.events.map((e) => e.type).join(' → ')).toBe(outcome.model);
      }
      console.log(`${name}: ${ran} of ${realizable.length} realizable generated paths ran over real sockets`);
      expect(ran).toBeGreaterThan(10);
    }, 60_000);
  }

  it('covers every state and every transition of the machine (pure and real runs together)', () => {
    const report = coverage.against(connectionMachine);
    expect(report.missingStates).toEqual([]);
    expect(report.missingTransitions).toEqual([]);
  });
});
