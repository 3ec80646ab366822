/** What a compiled machine refuses to run, when it is compiled or, for what an `enqueueActions` enqueues, when it runs. */
import { describe, expect, it } from 'vitest';
import { and, createActor, createMachine, enqueueActions, setup, SimulatedClock, type AnyStateMachine } from 'xstate';
import { clientMachine } from '../../machines/client.machine.js';
import { connectionMachine } from '../../machines/connection.machine.js';
import { sessionMachine } from '../../machines/session.machine.js';
import { supervisorMachine } from '../../machines/supervisor.machine.js';
import { CompiledMachine } from '../../src/interpreter/machine.js';

const compile = (machine: unknown) => new CompiledMachine(machine as AnyStateMachine);
const hooks = { done: () => {}, failed: () => {} };

describe('a compiled machine refuses', () => {
  it('compiles every machine of the project', () => {
    for (const machine of [connectionMachine, supervisorMachine, sessionMachine, clientMachine])
      expect(() => compile(machine)).not.toThrow();
  });

  it('what it cannot run as XState would, naming the machine and what: parallel states, built-in guards, invoked actors, wildcards', () => {
    const refused: Array<[AnyStateMachine, string]> = [
      [createMachine({ id: 'p', type: 'parallel', states: { a: {}, b: {} } }), "'p' cannot run the parallel state p"],
      [createMachine({ id: 'g', on: { go: { guard: and([() => true, () => true]) } } }), "'g' cannot run the built-in guard and"],
      [createMachine({ id: 'i', invoke: { src: createMachine({}) } }), "'i' cannot run invoked actors (in i)"],
      [createMachine({ id: 'w', on: { 'socket.*': {} } }), "'w' cannot run the wildcard event socket.* (in w)"],
    ];
    for (const [machine, message] of refused)
      expect(() => compile(machine)).toThrow(`the compiled machine ${message}; run it as an XState Actor`);
  });

  it('a context function that reads `self` or `spawn`, when it is compiled', () => {
    const self = createMachine({ id: 'owner', context: ({ self }) => ({ owner: self }) });
    expect(() => compile(self)).toThrow("the compiled machine 'owner' cannot run `self` in its context function");
    const spawn = createMachine({ id: 'parent', context: ({ spawn }) => ({ child: spawn(createMachine({})) }) });
    expect(() => compile(spawn)).toThrow("the compiled machine 'parent' cannot run `spawn` in its context function");
    // Read only past what needs a real input: the compile-time probe cannot see it, the start refuses it.
    const late = createMachine({
      id: 'late',
      context: (args: { input: { id: string } }) => ({ id: args.input.id, owner: (args as unknown as { self: unknown }).self }),
    });
    const compiled = compile(late);
    expect(() => compiled.start({ id: 'x' }, new SimulatedClock(), hooks)).toThrow(
      "the compiled machine 'late' cannot run `self` in its context function",
    );
    // XState gives the context function its own ref: the compiled machine has none to give.
    expect((createActor(late as AnyStateMachine, { input: { id: 'x' } }).getSnapshot().context as { owner: unknown }).owner).toBeDefined();
  });

  it('a final state below the top level (XState raises its done-state event for the parent)', () => {
    const nested = createMachine({ id: 'nested', initial: 'a', states: { a: { initial: 'x', states: { x: { type: 'final' } } } } });
    expect(() => compile(nested)).toThrow("the compiled machine 'nested' cannot run the final state nested.a.x below the top level");
  });

  it('and fails the instance when an `enqueueActions` enqueues what it cannot run (known only when it runs)', () => {
    const machine = setup({
      actions: { later: enqueueActions(({ enqueue }) => enqueue.raise({ type: 'again' })) },
    }).createMachine({ id: 'later', on: { go: { actions: 'later' } } });
    const failures: unknown[] = [];
    const instance = compile(machine).start(undefined, new SimulatedClock(), { ...hooks, failed: (error) => failures.push(error) });
    expect(instance.ended).toBe(false);
    instance.send({ type: 'go' } as never);
    expect(instance.ended).toBe(true);
    expect(String(failures[0])).toMatch("the compiled machine 'later' cannot run `enqueue.raise`");
  });
});
