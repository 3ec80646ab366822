/**
 * Coverage of a machine's states and transitions, measured from what actors
 * actually did: an inspection observer records every active state node and
 * every transition XState reports in its `@xstate.microstep` events, keyed by
 * the state node ids, so runs of the pure machine and of the runtime's
 * provided copy count towards the same totals.
 */
import type { AnyStateMachine, InspectionEvent } from 'xstate';

type AnyNode = {
  id: string;
  key: string;
  states: Record<string, AnyNode>;
  transitions: Map<string, TransitionLike[]>;
  always?: TransitionLike[];
};

interface TransitionLike {
  readonly source: { id: string };
  readonly eventType: string;
  readonly target?: ReadonlyArray<{ id: string }>;
  readonly guard?: unknown;
}

const guardName = (guard: unknown) =>
  typeof guard === 'string'
    ? guard
    : typeof guard === 'object' && guard !== null && 'type' in guard
      ? String(guard.type)
      : guard === undefined
        ? ''
        : 'inline';

/** `connection.open.alive --socket.pong--> connection.open.alive [guard]`. */
export function transitionKey(transition: TransitionLike): string {
  const targets = transition.target?.map((node) => node.id).join(',') ?? '(self)';
  const guard = guardName(transition.guard);
  // Delayed events name their state node; the delay's name says enough.
  const event = transition.eventType === '' ? 'always' : transition.eventType.replace(/^(xstate\.after\.[^.]+)\..*$/, '$1');
  return `${transition.source.id} --${event}--> ${targets}${guard === '' ? '' : ` [${guard}]`}`;
}

function* nodes(node: AnyNode): Generator<AnyNode> {
  yield node;
  for (const child of Object.values(node.states)) yield* nodes(child);
}

/** Every state node id and every transition of a machine. */
export function inventory(machine: AnyStateMachine): { states: string[]; transitions: string[] } {
  const states: string[] = [];
  const transitions = new Set<string>();
  for (const node of nodes(machine.root as unknown as AnyNode)) {
    states.push(node.id);
    for (const list of node.transitions.values()) for (const transition of list) transitions.add(transitionKey(transition));
    for (const transition of node.always ?? []) transitions.add(transitionKey(transition));
  }
  return { states, transitions: [...transitions] };
}

export class Coverage {
  readonly #machineId: string;
  readonly states = new Set<string>();
  readonly transitions = new Set<string>();

  constructor(machineId: string) {
    this.#machineId = machineId;
  }

  /** An inspection observer: pass it as `inspect` to any actor system running this machine. */
  readonly observe = (event: InspectionEvent): void => {
    if (event.type !== '@xstate.snapshot' && event.type !== '@xstate.microstep') return;
    const snapshot = event.snapshot as { machine?: { id: string }; _nodes?: Array<{ id: string }> };
    if (snapshot.machine?.id !== this.#machineId) return;
    for (const node of snapshot._nodes ?? []) this.states.add(node.id);
    if (event.type === '@xstate.microstep') {
      for (const transition of (event as unknown as { _transitions: TransitionLike[] })._transitions) {
        this.transitions.add(transitionKey(transition));
      }
    }
  };

  /** What was never taken, and the figures to print. */
  against(machine: AnyStateMachine): { missingStates: string[]; missingTransitions: string[]; summary: string } {
    const all = inventory(machine);
    const missingStates = all.states.filter((id) => !this.states.has(id));
    const missingTransitions = all.transitions.filter((key) => !this.transitions.has(key));
    const pct = (covered: number, total: number) => `${covered}/${total} (${((100 * covered) / total).toFixed(0)} %)`;
    const summary =
      `${machine.id}: states ${pct(all.states.length - missingStates.length, all.states.length)}, ` +
      `transitions ${pct(all.transitions.length - missingTransitions.length, all.transitions.length)}`;
    return { missingStates, missingTransitions, summary };
  }
}
