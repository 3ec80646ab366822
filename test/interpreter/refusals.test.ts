/** What a compiled machine refuses to run, when it is compiled or, for what an `enqueueActions` enqueues, when it runs. */
import { describe, expect, it } from 'vitest';
import { and, createMachine, enqueueActions, setup, SimulatedClock, type AnyStateMachine } from 'xstate';
import { CompiledMachine } from '../../src/interpreter/machine.js';

describe('a compiled machine refuses', () => {
  it('refuses a machine it cannot run as XState would: parallel states, built-in guards, invoked actors, wildcards', () => {
    const machines = [
      createMachine({ type: 'parallel', states: { a: {}, b: {} } }),
      createMachine({ on: { go: { guard: and([() => true, () => true]) } } }),
      createMachine({ invoke: { src: createMachine({}) } }),
      createMachine({ on: { 'socket.*': {} } }),
    ];
    for (const machine of machines) expect(() => new CompiledMachine(machine as AnyStateMachine)).toThrow(/cannot run/);
  });

  it('fails the instance when an `enqueueActions` enqueues what it cannot run (known only when it runs)', () => {
    const machine = setup({
      actions: { later: enqueueActions(({ enqueue }) => enqueue.raise({ type: 'again' })) },
    }).createMachine({ on: { go: { actions: 'later' } } });
    const failures: unknown[] = [];
    const instance = new CompiledMachine(machine as AnyStateMachine).start(undefined, new SimulatedClock(), {
      done: () => {},
      failed: (error) => failures.push(error),
    });
    expect(instance.ended).toBe(false);
    instance.send({ type: 'go' } as never);
    expect(instance.ended).toBe(true);
    expect(String(failures[0])).toMatch(/cannot run `enqueue.raise`/);
  });
});
