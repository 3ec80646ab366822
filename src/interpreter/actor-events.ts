/**
 * The events XState sends an actor's parent when the actor ends, built here
 * for the compiled children whose parent is told by hand: the same names and
 * shapes as XState's own, so the parent's machine handles both alike.
 */
import type { DoneActorEvent, ErrorActorEvent } from 'xstate';

/** `xstate.done.actor.<id>`, as XState sends a child's parent when the child reaches a final state. */
export function doneActorEvent<TOutput, TId extends string>(id: TId, output: TOutput): DoneActorEvent<TOutput, TId> {
  return { type: `xstate.done.actor.${id}`, output, actorId: id };
}

/** `xstate.error.actor.<id>`, as XState sends a child's parent when the child fails. */
export function errorActorEvent<TId extends string>(id: TId, error: unknown): ErrorActorEvent<unknown, TId> {
  return { type: `xstate.error.actor.${id}`, error, actorId: id };
}
