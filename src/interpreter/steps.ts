/**
 * The steps of transitions between the leaves of one machine, worked out
 * from XState's state nodes: exits from the leaf up to the transition's
 * domain, the transition's actions, entries down to the target's leaf, and
 * the `after` delays those entries start and exits cancel.
 */
import { ActionCompiler } from './actions.js';
import type { ActionArgs, Any, Candidate, Delay, Final, Step, Transition } from './compiled.js';
import type { Refuse } from './refusals.js';

/** Builds the steps of transitions between the leaves of one machine. */
export class StepCompiler {
  readonly #actions: ActionCompiler;
  readonly #delays: Record<string, Any>;
  readonly #guards: Record<string, Any>;
  readonly #index: ReadonlyMap<Any, number>;
  readonly #refuse: Refuse;

  /** `implementations` are the machine's; `index` numbers its leaf state nodes. */
  constructor(implementations: Any, index: ReadonlyMap<Any, number>, refuse: Refuse) {
    this.#actions = new ActionCompiler(implementations.actions, refuse);
    this.#guards = implementations.guards ?? {};
    this.#delays = implementations.delays ?? {};
    this.#index = index;
    this.#refuse = refuse;
  }

  /** The machine's start: the root entered (its own entry actions and delays), then its initial states down to a leaf. */
  initial(root: Any): Transition {
    const steps: Step[] = [];
    const leaf = this.#enter(root, [], steps);
    return { target: this.#index.get(leaf)!, steps };
  }

  /**
   * The machine finishing in `leaf`, a top-level final state of `root`: its output as XState's
   * (`getMachineOutput`: the machine's `output` given the done-state event, which carries the final
   * state's own `output`; neither is resolved if the machine has none), then the exit actions of every
   * state still active, the final state's first.
   */
  final(leaf: Any, root: Any): Final {
    const exit: Step[] = [];
    this.#exit(leaf, exit);
    this.#exit(root, exit);
    const machineOutput = root.output;
    const finalOutput = leaf.output;
    const type = `xstate.done.state.${String(leaf.id)}`;
    if (machineOutput === undefined) return { exit, output: () => undefined };
    return {
      exit,
      output: ({ context, event, self }) => {
        const done = { type, output: finalOutput === undefined ? undefined : resolveOutput(finalOutput, context, event, self) };
        return resolveOutput(machineOutput, context, done, self);
      },
    };
  }

  /** `definition`, defined on `source` (the leaf `from` or an ancestor), with its guard. */
  candidate(from: Any, source: Any, definition: Any): Candidate {
    return { guard: this.#guard(definition.guard), transition: this.transition(from, source, definition) };
  }

  #guard(guard: Any): ((args: ActionArgs) => boolean) | undefined {
    if (guard === undefined) return undefined;
    if (typeof guard === 'function') {
      // `and`, `or`, `not`, `stateIn` are functions with a `check`; an inline guard is a plain function.
      if (guard.check !== undefined) throw this.#refuse(`the built-in guard ${String(guard.type ?? guard.name)}`);
      return (args) => guard(args, undefined) as boolean;
    }
    const type: string = typeof guard === 'string' ? guard : guard.type;
    const params = typeof guard === 'string' ? undefined : guard.params;
    const implementation = this.#guards[type];
    if (typeof implementation !== 'function') throw this.#refuse(`the guard ${type} without an implementation`);
    if (implementation.check !== undefined) throw this.#refuse(`the guard ${type}, a built-in guard`);
    return typeof params === 'function'
      ? (args) => implementation(args, params(args)) as boolean
      : (args) => implementation(args, params) as boolean;
  }

  /** `definition`, defined on `source` (the leaf `from` or an ancestor), taken while in `from`. */
  transition(from: Any, source: Any, definition: Any): Transition {
    const steps: Step[] = [];
    const targets = definition.target as Any[] | undefined;
    if (targets === undefined || targets.length === 0) {
      for (const action of definition.actions) steps.push(this.#action(action));
      return { target: -1, steps };
    }
    if (targets.length > 1) throw this.#refuse(`a transition with ${targets.length} targets`);
    const target = targets[0];
    const domain = this.#domain(source, target, definition.reenter === true);
    // Exit from the leaf up to the domain, the transition's actions, then entry from below the domain down.
    for (let node = from; node !== domain; node = node.parent) this.#exit(node, steps);
    for (const action of definition.actions) steps.push(this.#action(action));
    const path: Any[] = [];
    for (let node = target; node !== domain; node = node.parent) path.unshift(node);
    const leaf = this.#enter(path[0], path.slice(1), steps);
    return { target: this.#index.get(leaf)!, steps };
  }

  /** Enters `node`, then `below` (its descendants on the way to a target), then initial states down to a leaf; returns the leaf. */
  #enter(node: Any, below: Any[], steps: Step[]): Any {
    const delays = delayedEvents(node);
    for (const action of node.entry as Any[]) {
      const delay = delays.get(delayIdOf(action, 'xstate.raise'));
      if (delay !== undefined) steps.push({ kind: 'start', delay: this.#delay(delay.delay, delay.eventType) });
      else steps.push(this.#action(action));
    }
    const next = below.length > 0 ? below[0] : this.#initialChild(node);
    if (next === undefined) return node;
    return this.#enter(next, below.slice(1), steps);
  }

  #exit(node: Any, steps: Step[]): void {
    const delays = delayedEvents(node);
    for (const action of node.exit as Any[]) {
      const id = delayIdOf(action, 'xstate.cancel');
      if (delays.has(id)) steps.push({ kind: 'cancel', eventType: id });
      else steps.push(this.#action(action));
    }
  }

  #delay(delay: Any, eventType: string): Delay {
    if (typeof delay === 'number') return { eventType, ms: () => delay };
    const implementation = this.#delays[delay];
    if (implementation === undefined) throw this.#refuse(`the delay ${String(delay)} without an implementation`);
    return {
      eventType,
      ms: typeof implementation === 'function' ? (args) => implementation(args) as number : () => implementation as number,
    };
  }

  #action(action: Any): Step {
    return { kind: 'action', exec: this.#actions.exec(action) };
  }

  #initialChild(node: Any): Any {
    if (Object.keys(node.states).length === 0) return undefined;
    const targets = node.initial?.target as Any[] | undefined;
    if (targets === undefined || targets.length !== 1) throw this.#refuse(`the state ${node.id} without exactly one initial state`);
    if ((node.initial.actions as Any[]).length > 0) throw this.#refuse(`actions on the initial transition of ${node.id}`);
    return targets[0];
  }

  /** The state a transition exits and enters below (SCXML's transition domain, as XState computes it). */
  #domain(source: Any, target: Any, reenter: boolean): Any {
    if (!reenter && isDescendant(target, source)) return source;
    let domain = source.parent;
    while (domain !== undefined && !(isDescendant(target, domain) && isDescendant(source, domain))) domain = domain.parent;
    if (domain === undefined) throw this.#refuse(`a transition from ${source.id} to ${target.id} leaving the machine`);
    return domain;
  }
}

/** An output as XState resolves one: a function of `{ context, event, self }`, or the value itself. */
function resolveOutput(mapper: Any, context: Any, event: Any, self: unknown): unknown {
  return typeof mapper === 'function' ? mapper({ context, event, self }) : mapper;
}

/** A state's `after` delays, by the id its entry raise and exit cancel use. */
function delayedEvents(node: Any): Map<string, { delay: Any; eventType: string }> {
  const delays = new Map<string, { delay: Any; eventType: string }>();
  for (const transition of (node.after as Any[]) ?? [])
    delays.set(transition.eventType, { delay: transition.delay, eventType: transition.eventType });
  return delays;
}

/** The id of a built-in `raise` (or `cancel`) action of type `type`, or '' for any other action. */
function delayIdOf(action: Any, type: string): string {
  if (typeof action !== 'function' || action.type !== type) return '';
  return type === 'xstate.raise' ? (action.id ?? '') : (action.sendId ?? '');
}

function isDescendant(node: Any, ancestor: Any): boolean {
  for (let at = node.parent; at !== undefined; at = at.parent) if (at === ancestor) return true;
  return false;
}
