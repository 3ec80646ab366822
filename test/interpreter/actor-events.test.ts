/** The events a compiled child's parent is sent are the ones XState sends an Actor's parent. */
import { describe, expect, it } from 'vitest';
import { createActor, createMachine } from 'xstate';
import { doneActorEvent, errorActorEvent } from '../../src/interpreter/actor-events.js';

/** What a parent invoking `child` as `kid` is sent when it ends. */
function sentToParent(child: ReturnType<typeof createMachine>): unknown[] {
  const seen: unknown[] = [];
  const record = ({ event }: { event: unknown }) => void seen.push(event);
  createActor(
    createMachine({
      invoke: { id: 'kid', src: child },
      on: { 'xstate.done.actor.kid': { actions: record }, 'xstate.error.actor.kid': { actions: record } },
    }),
  ).start();
  return seen;
}

describe('actor events', () => {
  it('xstate.done.actor.<id>, with the output', () => {
    const child = createMachine({ initial: 'over', states: { over: { type: 'final' } }, output: () => ({ answer: 42 }) });
    expect(sentToParent(child)).toEqual([doneActorEvent('kid', { answer: 42 })]);
  });

  it('xstate.error.actor.<id>, with the error', () => {
    const failure = new Error('the child failed');
    const child = createMachine({
      entry: () => {
        throw failure;
      },
    });
    const [event] = sentToParent(child) as [{ error: unknown }];
    expect(event).toEqual(errorActorEvent('kid', failure));
    expect(event.error).toBe(failure);
  });
});
