/** Model-based tests of the session machine: paths to every edge on the pure machine, and 100 % coverage. */
import { afterAll, describe, expect, it } from 'vitest';
import { createActor, SimulatedClock, type AnyStateMachine } from 'xstate';
import { getShortestPaths } from 'xstate/graph';
import { sessionMachine } from '../../machines/session.machine.js';
import { Coverage } from './coverage.js';
import { sessionInput as input } from './samples.js';

const events = [{ type: 'session.resume' }, { type: 'xstate.after.recoveryWindow.session.detached' }];
const paths = getShortestPaths(sessionMachine as AnyStateMachine, {
  input,
  events: events as never,
  serializeState: (snapshot, event, previous) =>
    `${JSON.stringify(previous?.value ?? null)} --${event?.type ?? 'start'}--> ${JSON.stringify(snapshot.value)}`,
}).map((path) => ({
  events: path.steps.map((step) => step.event.type).filter((type) => type !== 'xstate.init'),
  expected: path.state.value as string,
}));

const coverage = new Coverage('session');
afterAll(() => console.log(`model-based coverage: ${coverage.against(sessionMachine).summary}`));

describe('session machine: paths to every edge', () => {
  it.each(paths.map((path) => [path.events.join(' → ') || '(start)', path] as const))('%s', (_name, path) => {
    const clock = new SimulatedClock();
    const actor = createActor(sessionMachine, { input, clock, inspect: coverage.observe });
    actor.start();
    for (const type of path.events) {
      if (type.startsWith('xstate.after.')) {
        if (actor.getSnapshot().value === 'detached') clock.increment(input.windowMs);
      } else {
        actor.send({ type: 'session.resume' });
      }
    }
    expect(actor.getSnapshot().value).toBe(path.expected);
    if (actor.getSnapshot().status === 'done') expect(actor.getSnapshot().output).toEqual({ token: 't', outcome: path.expected });
  });

  it('covers every state and transition', () => {
    const report = coverage.against(sessionMachine);
    expect(report.missingStates).toEqual([]);
    expect(report.missingTransitions).toEqual([]);
  });
});
