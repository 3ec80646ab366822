/**
 * A machine's transitions worked out once, ahead of time, from its own
 * definition, and run without an XState Actor: the cheap way to run one
 * lifecycle per connection when nobody inspects it.
 *
 * An XState Actor per connection costs about 2.4 KB of heap and ~80 µs of
 * CPU over its life (creating it, its initial snapshot, starting it, and the
 * close path's transitions), most of it for what only an observer uses:
 * snapshots, the mailbox, the inspection events. A compiled machine reads
 * the state nodes XState built from the definition — targets, entry and exit
 * actions, `after` delays, eventless transitions, the final state's output —
 * and turns every (state, event) pair into a list of steps, so that sending
 * an event is a table lookup and the steps' actions. The machine stays the
 * single source of the lifecycle: nothing here names a state or an event,
 * and `test/model/compiled-machine.test.ts` checks, over every sequence of
 * a few events of each compiled machine (connection, supervisor, client) and
 * random longer ones of the supervisor, that a compiled machine and an
 * XState Actor of the same machine pass through the same states with the
 * same context, run the same actions with the same parameters in the same
 * order, send to and stop the same actors, and end with the same output.
 * The supervisor and its sessions run compiled too when nobody inspects the
 * runtime (src/runtime/supervisor.ts).
 *
 * Only what the compiled machines use is supported — atomic, compound and
 * final states; transitions with or without a target, guarded by named or
 * inline guards; eventless transitions; `assign`; named actions with static
 * or computed parameters, implemented by functions, `assign` or
 * `enqueueActions` (which may enqueue named actions, `sendTo` a ref and
 * `stopChild` a ref, both run once the transition is taken, as XState
 * defers them); named or numeric `after` delays — and anything else
 * (built-in guards such as `and`, wildcard events, parallel or history
 * states, invoked or spawned actors, other built-in actions) is refused when
 * the machine is compiled, so a change to a machine that this cannot run
 * fails at once rather than behaving differently. What an `enqueueActions`
 * enqueues is known only when it runs: anything else fails the instance
 * then, with the same "cannot run" error.
 *
 * Reaches into XState's state nodes (`transitions`, `entry`, `exit`,
 * `after`, `always`, `initial`) and built-in actions (`assign`'s
 * `assignment`, `raise` and `cancel` of delays): written against XState
 * 5.33, pinned in package.json, and held to it by the equivalence test.
 */
import type { AnyStateMachine } from 'xstate';
import type { Timers } from './timers.js';

/** What a running compiled machine reports. */
export interface CompiledMachineHooks<TContext, TOutput> {
  /** It reached a top-level final state; `output` is the machine's output. */
  done(output: TOutput, context: TContext): void;
  /** An action (or the output) threw: the machine stops, as an XState Actor does on an error. */
  failed(error: unknown, context: TContext): void;
  /** An event was processed (where an Actor's subscribers would get a snapshot): the state now. */
  processed?(state: string, context: TContext): void;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- XState's own internal shapes
type Any = any;
/** What actions, guards and delays are given; `self` is what `start` was given (an Actor would give its ref). */
type ActionArgs = { context: Any; event: Any; self: unknown };
/** `scope` is the instance running it: `sendTo` and `stopChild` are deferred to the end of its transition, as XState defers them. */
type Exec = (args: ActionArgs, scope: Scope) => void;

/** What an action needs of the instance running it. */
interface Scope {
  /** Runs `effect` once the transition (with its eventless transitions) is taken, as XState runs `sendTo` and `stopChild`. */
  defer(effect: () => void): void;
}

/**
 * What a compiled machine's `sendTo` and `stopChild` reach: an XState Actor's ref (its `_send` is what
 * XState's relay calls) or another compiled instance, which is its own ref.
 */
interface ChildRef {
  _send(event: unknown): void;
  stop?(): unknown;
}

/** A delayed event a state starts on entry and cancels on exit. */
interface Delay {
  readonly eventType: string;
  readonly ms: (args: ActionArgs) => number;
}

/** What happens on a state's entry or exit, and on a transition. */
type Step =
  | { readonly kind: 'action'; readonly exec: Exec }
  | { readonly kind: 'start'; readonly delay: Delay }
  | { readonly kind: 'cancel'; readonly eventType: string };

interface Transition {
  /** The leaf state it ends in; -1 if it has no target (it runs its actions and stays). */
  readonly target: number;
  readonly steps: readonly Step[];
}

/** A transition that may be taken: if it has no guard, or its guard holds. */
interface Candidate {
  readonly guard: ((args: ActionArgs) => boolean) | undefined;
  readonly transition: Transition;
}

interface Leaf {
  readonly path: string;
  /** Per event type, the transitions that may be taken from here, in the order XState tries them. */
  readonly on: ReadonlyMap<string, readonly Candidate[]>;
  /** The eventless transitions tried as soon as this state is entered. */
  readonly always: readonly Candidate[];
  /** A top-level final state: entering it ends the machine. */
  readonly final: boolean;
}

/** One machine, compiled; `start` runs an instance of it. */
export class CompiledMachine<TContext extends object, TEvent extends { type: string }, TInput, TOutput> {
  readonly #leaves: Leaf[] = [];
  readonly #initial: Transition;
  readonly #context: (input: TInput) => TContext;
  readonly #output: (context: TContext) => TOutput;

  constructor(machine: AnyStateMachine) {
    const root = machine.root as Any;
    refuseUnsupported(root);
    const implementations = machine.implementations as Any;
    const leafNodes: Any[] = [];
    const collect = (node: Any) => {
      const children = Object.values(node.states);
      if (children.length === 0) leafNodes.push(node);
      else for (const child of children) collect(child);
    };
    collect(root);
    const index = new Map<Any, number>(leafNodes.map((node, i) => [node, i]));
    const compiler = new StepCompiler(implementations, index);
    for (const node of leafNodes) {
      const on = new Map<string, Candidate[]>();
      const always: Candidate[] = [];
      // The deepest state's transitions first, each state's in document order; an ancestor's are tried
      // when none of a descendant's is enabled. Eventless ones likewise, from every active state.
      for (let at = node; at !== undefined; at = at.parent) {
        for (const [type, definitions] of at.transitions as Map<string, Any[]>) {
          let candidates = on.get(type);
          if (candidates === undefined) on.set(type, (candidates = []));
          for (const definition of definitions) candidates.push(compiler.candidate(node, at, definition));
        }
        for (const definition of (at.always as Any[] | undefined) ?? []) always.push(compiler.candidate(node, at, definition));
      }
      this.#leaves.push({ path: node.path.join('.'), on, always, final: node.type === 'final' && node.parent === root });
    }
    this.#initial = compiler.initial(root);
    const config = machine.config as Any;
    const context = config.context;
    this.#context = typeof context === 'function' ? (input) => context({ input }) : () => ({ ...context });
    this.#output = (value) => config.output?.({ context: value, event: undefined });
  }

  /** The path of a leaf state (`disconnecting.closing`). */
  pathOf(state: number): string {
    return this.#leaves[state]!.path;
  }

  /**
   * Starts an instance in its initial state, running the initial entry actions. `self` is given to its
   * actions as `self`: one compiled machine can then serve many owners.
   */
  start(input: TInput, timers: Timers, hooks: CompiledMachineHooks<TContext, TOutput>, self?: unknown): MachineInstance<TContext, TEvent> {
    const instance = new MachineInstance<TContext, TEvent>(this as never, this.#context(input), timers, hooks as never, self);
    instance.begin(this.#initial);
    return instance;
  }

  /** @internal */
  leaf(state: number): Leaf {
    return this.#leaves[state]!;
  }

  /** @internal */
  output(context: TContext): TOutput {
    return this.#output(context);
  }
}

/** The event the initial entry actions see, as XState's. */
const INIT = { type: 'xstate.init' } as const;

/** One running instance of a compiled machine. */
export class MachineInstance<TContext extends object, TEvent extends { type: string }> implements Scope {
  readonly #machine: CompiledMachine<TContext, TEvent, unknown, unknown>;
  readonly #timers: Timers;
  readonly #hooks: CompiledMachineHooks<TContext, unknown>;
  readonly #self: unknown;
  /** The current leaf state; -1 once stopped (done, or failed). */
  #state = -1;
  #context: TContext;
  /** Events sent while an earlier one is being processed, as an Actor's mailbox holds them. */
  #queue: TEvent[] | undefined;
  #processing = false;
  /** Pending delayed events (their type is unique to the state that started them), with their timers. */
  #delays: Array<{ type: string; timer: unknown }> | undefined;
  /** Effects of the transition being taken that run once it is taken (`sendTo`, `stopChild`). */
  #deferred: Array<() => void> | undefined;

  constructor(
    machine: CompiledMachine<TContext, TEvent, unknown, unknown>,
    context: TContext,
    timers: Timers,
    hooks: CompiledMachineHooks<TContext, unknown>,
    self: unknown,
  ) {
    this.#self = self;
    this.#machine = machine;
    this.#context = context;
    this.#timers = timers;
    this.#hooks = hooks;
  }

  /** The current leaf state's path, or undefined once stopped. */
  get state(): string | undefined {
    return this.#state === -1 ? undefined : this.#machine.pathOf(this.#state);
  }

  get context(): TContext {
    return this.#context;
  }

  /** True once it has stopped: done, or failed. */
  get ended(): boolean {
    return this.#state === -1;
  }

  /** What XState calls on an actor ref it relays an event to (a `sendTo` of another machine): `send`. */
  _send(event: TEvent): void {
    this.send(event);
  }

  /** Stops it where it is, as stopping an Actor does: no output, no hook, no more events; pending delays cancelled. */
  stop(): void {
    this.#stop();
  }

  /** @internal */
  defer(effect: () => void): void {
    (this.#deferred ??= []).push(effect);
  }

  /** Processes an event, after any it is already processing; ignored once stopped or where the state has no transition for it. */
  send(event: TEvent): void {
    if (this.#processing) {
      (this.#queue ??= []).push(event);
      return;
    }
    this.#drain(event, undefined);
  }

  /** @internal Enters the initial state. */
  begin(initial: Transition): void {
    this.#drain(INIT, initial);
  }

  /** Processes `event` (or takes `initial`), then every event queued meanwhile, one at a time. */
  #drain(event: TEvent | typeof INIT, initial: Transition | undefined): void {
    this.#processing = true;
    try {
      if (initial === undefined) this.#process(event);
      else this.#take(initial, event);
      while (this.#queue !== undefined && this.#queue.length > 0) this.#process(this.#queue.shift()!);
    } finally {
      this.#processing = false;
    }
  }

  #process(event: TEvent | { type: string }): void {
    if (this.#state === -1) return;
    const candidates = this.#machine.leaf(this.#state).on.get(event.type);
    if (candidates === undefined) return;
    let transition: Transition | undefined;
    try {
      transition = this.#select(candidates, event);
    } catch (error) {
      // A guard that throws fails the machine, as an action does.
      this.#fail(error);
      return;
    }
    if (transition !== undefined) this.#take(transition, event);
  }

  #select(candidates: readonly Candidate[], event: { type: string }): Transition | undefined {
    for (const { guard, transition } of candidates) {
      if (guard === undefined || guard({ context: this.#context, event, self: this.#self })) return transition;
    }
    return undefined;
  }

  /** Takes `transition`, then whatever eventless transitions follow. */
  #take(transition: Transition, event: { type: string }): void {
    let next: Transition | undefined = transition;
    while (next !== undefined) {
      try {
        this.#run(next.steps, event);
        if (next.target !== -1) this.#state = next.target;
        const leaf = this.#machine.leaf(this.#state);
        if (leaf.final) {
          if (this.#runDeferred()) this.#finish();
          return;
        }
        next = leaf.always.length === 0 ? undefined : this.#select(leaf.always, event);
      } catch (error) {
        this.#fail(error);
        return;
      }
    }
    if (this.#runDeferred()) this.#hooks.processed?.(this.#machine.pathOf(this.#state), this.#context);
  }

  /** Runs the transition's deferred effects, in order; false if one threw, which fails the machine. */
  #runDeferred(): boolean {
    const deferred = this.#deferred;
    if (deferred === undefined) return true;
    this.#deferred = undefined;
    try {
      for (const effect of deferred) effect();
      return true;
    } catch (error) {
      this.#fail(error);
      return false;
    }
  }

  #run(steps: readonly Step[], event: { type: string }): void {
    const args: ActionArgs = { context: this.#context, event, self: this.#self };
    for (const step of steps) {
      switch (step.kind) {
        case 'action':
          step.exec(args, this);
          // `assign` replaces the context; later actions see the new one.
          this.#context = args.context;
          break;
        case 'start':
          this.#startDelay(step.delay, args);
          break;
        case 'cancel':
          this.#cancelDelay(step.eventType);
          break;
      }
    }
  }

  #startDelay(delay: Delay, args: ActionArgs): void {
    const type = delay.eventType;
    const timer = this.#timers.setTimeout(() => {
      if (this.#forgetDelay(type) !== undefined) this.send({ type } as TEvent);
    }, delay.ms(args));
    (this.#delays ??= []).push({ type, timer });
  }

  #cancelDelay(type: string): void {
    const pending = this.#forgetDelay(type);
    if (pending !== undefined) this.#timers.clearTimeout(pending.timer);
  }

  /** Takes a pending delay off the list; undefined if it is not pending (fired, or cancelled). */
  #forgetDelay(type: string): { type: string; timer: unknown } | undefined {
    const delays = this.#delays;
    const at = delays?.findIndex((pending) => pending.type === type) ?? -1;
    return at === -1 ? undefined : delays!.splice(at, 1)[0];
  }

  #finish(): void {
    const final = this.#machine.pathOf(this.#state);
    this.#stop();
    let output: unknown;
    try {
      output = this.#machine.output(this.#context);
    } catch (error) {
      this.#hooks.failed(error, this.#context);
      return;
    }
    this.#hooks.processed?.(final, this.#context);
    this.#hooks.done(output, this.#context);
  }

  #fail(error: unknown): void {
    this.#stop();
    this.#hooks.failed(error, this.#context);
  }

  #stop(): void {
    for (const { timer } of this.#delays ?? []) this.#timers.clearTimeout(timer);
    this.#delays = undefined;
    this.#deferred = undefined;
    this.#state = -1;
    this.#queue = undefined;
  }
}

/** Builds the steps of transitions between the leaves of one machine. */
class StepCompiler {
  readonly #actions: Record<string, Any>;
  readonly #delays: Record<string, Any>;
  readonly #guards: Record<string, Any>;
  readonly #index: ReadonlyMap<Any, number>;

  constructor(implementations: Any, index: ReadonlyMap<Any, number>) {
    this.#actions = implementations.actions ?? {};
    this.#guards = implementations.guards ?? {};
    this.#delays = implementations.delays ?? {};
    this.#index = index;
  }

  /** The machine's start: the root's initial states entered, down to a leaf. */
  initial(root: Any): Transition {
    const steps: Step[] = [];
    const leaf = this.#enter(root, [], steps, true);
    return { target: this.#index.get(leaf)!, steps };
  }

  /** `definition`, defined on `source` (the leaf `from` or an ancestor), with its guard. */
  candidate(from: Any, source: Any, definition: Any): Candidate {
    return { guard: this.#guard(definition.guard), transition: this.transition(from, source, definition) };
  }

  #guard(guard: Any): ((args: ActionArgs) => boolean) | undefined {
    if (guard === undefined) return undefined;
    if (typeof guard === 'function') {
      // `and`, `or`, `not`, `stateIn` are functions with a `check`; an inline guard is a plain function.
      if (guard.check !== undefined) throw unsupported(`the built-in guard ${String(guard.type ?? guard.name)}`);
      return (args) => guard(args, undefined) as boolean;
    }
    const type: string = typeof guard === 'string' ? guard : guard.type;
    const params = typeof guard === 'string' ? undefined : guard.params;
    const implementation = this.#guards[type];
    if (typeof implementation !== 'function') throw unsupported(`the guard ${type} without an implementation`);
    if (implementation.check !== undefined) throw unsupported(`the guard ${type}, a built-in guard`);
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
    if (targets.length > 1) throw unsupported(`a transition with ${targets.length} targets`);
    const target = targets[0];
    const domain = transitionDomain(source, target, definition.reenter === true);
    // Exit from the leaf up to the domain, the transition's actions, then entry from below the domain down.
    for (let node = from; node !== domain; node = node.parent) this.#exit(node, steps);
    for (const action of definition.actions) steps.push(this.#action(action));
    const path: Any[] = [];
    for (let node = target; node !== domain; node = node.parent) path.unshift(node);
    const leaf = this.#enter(path[0], path.slice(1), steps, false);
    return { target: this.#index.get(leaf)!, steps };
  }

  /** Enters `node`, then `below` (its descendants on the way to a target), then initial states down to a leaf; returns the leaf. */
  #enter(node: Any, below: Any[], steps: Step[], isRoot: boolean): Any {
    if (!isRoot) {
      const delays = delayedEvents(node);
      for (const action of node.entry as Any[]) {
        const delay = delays.get(delayIdOf(action, 'xstate.raise'));
        if (delay !== undefined) steps.push({ kind: 'start', delay: this.#delay(delay.delay, delay.eventType) });
        else steps.push(this.#action(action));
      }
    }
    const next = below.length > 0 ? below[0] : initialChild(node);
    if (next === undefined) return node;
    return this.#enter(next, below.slice(1), steps, false);
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
    if (implementation === undefined) throw unsupported(`the delay ${String(delay)} without an implementation`);
    return {
      eventType,
      ms: typeof implementation === 'function' ? (args) => implementation(args) as number : () => implementation as number,
    };
  }

  #action(action: Any): Step {
    return { kind: 'action', exec: this.#exec(action) };
  }

  /** What running `action` does: an inline `assign`, or a named action (a plain function, an `assign` or an `enqueueActions`). */
  #exec(action: Any): Exec {
    if (typeof action === 'function') {
      if (action.type === 'xstate.assign') return assigning(action.assignment, undefined);
      throw unsupported(`the built-in action ${String(action.type)}`);
    }
    const type: string = typeof action === 'string' ? action : action.type;
    const params = typeof action === 'string' ? undefined : action.params;
    const implementation = this.#actions[type];
    if (typeof implementation !== 'function') throw unsupported(`the action ${type} without an implementation`);
    switch (implementation.type) {
      case undefined:
        return typeof params === 'function' ? (args) => implementation(args, params(args)) : (args) => implementation(args, params);
      case 'xstate.assign':
        return assigning(implementation.assignment, params);
      case 'xstate.enqueueActions':
        return this.#enqueuing(implementation.collect, params);
      default:
        throw unsupported(`the action ${type}, a built-in action (${String(implementation.type)})`);
    }
  }

  /**
   * An `enqueueActions`: its callback runs, then what it enqueued, in order, before the transition's next
   * action, as XState runs them. Named actions and `sendTo` / `stopChild` of a ref are supported; what
   * else it may enqueue is known only when it runs, and fails the machine then.
   */
  #enqueuing(collect: Any, params: Any): Exec {
    // Built once, not per run: the callback's `enqueue` pushes onto the run in progress.
    let queued: Exec[] = [];
    const enqueue = (action: Any) => void queued.push(this.#exec(action));
    enqueue.sendTo = (to: Any, event: Any, options?: Any) => {
      if (options !== undefined) throw unsupported('a `sendTo` with options (a delay or an id)');
      queued.push((at, into) => {
        const ref = (typeof to === 'function' ? to(at, undefined) : to) as ChildRef;
        if (typeof ref?._send !== 'function') throw unsupported('a `sendTo` to anything but an actor ref');
        const resolved: unknown = typeof event === 'function' ? event(at, undefined) : event;
        into.defer(() => ref._send(resolved));
      });
    };
    enqueue.stopChild = (ref: ChildRef) => {
      queued.push((_, into) => {
        if (typeof ref?.stop !== 'function') throw unsupported('a `stopChild` of anything but an actor ref');
        into.defer(() => ref.stop!());
      });
    };
    for (const name of ['assign', 'cancel', 'raise', 'sendParent', 'spawnChild', 'emit'] as const) {
      (enqueue as Any)[name] = () => {
        throw unsupported(`\`enqueue.${name}\``);
      };
    }
    const check = () => {
      throw unsupported('`check` in `enqueueActions`');
    };
    return (args, scope) => {
      const outer = queued;
      const mine: Exec[] = (queued = []);
      try {
        collect(
          { context: args.context, event: args.event, self: args.self, enqueue, check },
          typeof params === 'function' ? params(args) : params,
        );
      } finally {
        queued = outer;
      }
      for (const exec of mine) exec(args, scope);
    };
  }
}

/** An `assign`: the context replaced by a copy with the assignment's update; later actions see the new one. */
function assigning(assignment: Any, params: Any): Exec {
  return (args) => {
    const resolved = typeof params === 'function' ? params(args) : params;
    let update: Any;
    if (typeof assignment === 'function') {
      update = assignment(args, resolved);
    } else {
      update = {};
      for (const key of Object.keys(assignment)) {
        const value = assignment[key];
        update[key] = typeof value === 'function' ? value(args, resolved) : value;
      }
    }
    args.context = Object.assign({}, args.context, update);
  };
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

function initialChild(node: Any): Any {
  if (Object.keys(node.states).length === 0) return undefined;
  const targets = node.initial?.target as Any[] | undefined;
  if (targets === undefined || targets.length !== 1) throw unsupported(`the state ${node.id} without exactly one initial state`);
  if ((node.initial.actions as Any[]).length > 0) throw unsupported(`actions on the initial transition of ${node.id}`);
  return targets[0];
}

/** The state a transition exits and enters below (SCXML's transition domain, as XState computes it). */
function transitionDomain(source: Any, target: Any, reenter: boolean): Any {
  if (!reenter && isDescendant(target, source)) return source;
  let domain = source.parent;
  while (domain !== undefined && !(isDescendant(target, domain) && isDescendant(source, domain))) domain = domain.parent;
  if (domain === undefined) throw unsupported(`a transition from ${source.id} to ${target.id} leaving the machine`);
  return domain;
}

function isDescendant(node: Any, ancestor: Any): boolean {
  for (let at = node.parent; at !== undefined; at = at.parent) if (at === ancestor) return true;
  return false;
}

/** Refuses what a compiled machine cannot run the way XState does. */
function refuseUnsupported(node: Any): void {
  if (node.type === 'parallel' || node.type === 'history') throw unsupported(`the ${String(node.type)} state ${node.id}`);
  if ((node.invoke as Any[]).length > 0) throw unsupported(`invoked actors (in ${node.id})`);
  for (const type of (node.transitions as Map<string, Any[]>).keys()) {
    // A wildcard (`*`, `socket.*`) matches event types this table cannot list ahead of time.
    if (type.includes('*')) throw unsupported(`the wildcard event ${type} (in ${node.id})`);
  }
  for (const child of Object.values(node.states)) refuseUnsupported(child);
}

function unsupported(what: string): Error {
  return new Error(`a compiled machine cannot run ${what}; run it as an XState Actor`);
}
