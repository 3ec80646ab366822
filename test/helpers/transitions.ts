import { transition, type AnyStateMachine, type EventFromLogic, type ExecutableActionObject, type SnapshotFrom } from 'xstate';

/** Folds `events` over `snapshot` with XState's pure `transition()`: the final snapshot and every action along the way. */
export function runEvents<T extends AnyStateMachine>(
  machine: T,
  snapshot: SnapshotFrom<T>,
  events: ReadonlyArray<EventFromLogic<T>>,
): [SnapshotFrom<T>, ExecutableActionObject[]] {
  const all: ExecutableActionObject[] = [];
  for (const event of events) {
    const [next, actions] = transition(machine, snapshot, event);
    snapshot = next;
    all.push(...actions);
  }
  return [snapshot, all];
}
