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
 * and turns every (state, event) pair into a list of steps (`steps.ts`), so
 * that sending an event is a table lookup and the steps' actions
 * (`instance.ts`). The machine stays the single source of the lifecycle:
 * nothing here names a state or an event, and `test/interpreter/` checks,
 * over every sequence of a few events of each compiled machine (connection,
 * supervisor, client; and a machine using what they do not) and random
 * longer ones of the supervisor, that a compiled machine and an XState
 * Actor of the same machine pass through the same states with the same
 * context, run the same actions with the same parameters in the same order,
 * send to and stop the same actors, and end with the same output. The supervisor and its sessions run
 * compiled too when nobody inspects the runtime (src/runtime/supervisor.ts).
 *
 * Supported, as XState runs it: atomic and compound states, and final
 * states at the top level (the machine's output from the done-state event
 * carrying the final state's own `output`; every state's exit actions as it
 * finishes); the machine's own `entry`, `exit`, `after` and transitions;
 * the start event `xstate.init` carrying the input; a context function of
 * the input; transitions with or without a target, guarded by named or
 * inline guards; eventless transitions; `assign`; named actions with static
 * or computed parameters, implemented by functions, `assign` or
 * `enqueueActions` (which may enqueue named actions, `sendTo` a ref and
 * `stopChild` a ref, both run once the transition is taken, as XState
 * defers them); named or numeric `after` delays; a child's
 * `xstate.error.actor.*` that no transition takes failing the machine.
 * Anything else (built-in guards such as `and`, wildcard events, parallel
 * or history states, final states below the top level, invoked or spawned
 * actors, other built-in actions, `self` or `spawn` in the context
 * function) is refused when the machine is compiled (`refusals.ts`), so a
 * change to a machine that this cannot run fails at once rather than
 * behaving differently. What an `enqueueActions` enqueues is known only
 * when it runs: anything else fails the instance then, with the same
 * "cannot run" error; so does a context function that reads `self` only
 * past what needs a real input (see `contextOf`).
 *
 * Reaches into XState's state nodes (`transitions`, `entry`, `exit`,
 * `after`, `always`, `initial`) and built-in actions (`assign`'s
 * `assignment`, `raise` and `cancel` of delays): written against XState
 * 5.33, pinned in package.json, and held to it by the equivalence test.
 */
import type { AnyStateMachine } from 'xstate';
import type { Any, Candidate, Leaf, Program, Timers, Transition } from './compiled.js';
import { MachineInstance, type CompiledMachineHooks } from './instance.js';
import { contextOf, refuseUnsupported, refusing } from './refusals.js';
import { StepCompiler } from './steps.js';

/** One machine, compiled; `start` runs an instance of it. */
export class CompiledMachine<TContext extends object, TEvent extends { type: string }, TInput, TOutput> {
  readonly #program: Program;
  readonly #context: (input: TInput) => TContext;

  /** Compiles `machine`; throws if it uses what a compiled machine cannot run as XState does. */
  constructor(machine: AnyStateMachine) {
    const root = machine.root as Any;
    const refuse = refusing(String(root.id));
    refuseUnsupported(root, refuse);
    const leafNodes: Any[] = [];
    const collect = (node: Any) => {
      const children = Object.values(node.states);
      if (children.length === 0) leafNodes.push(node);
      else for (const child of children) collect(child);
    };
    collect(root);
    const index = new Map<Any, number>(leafNodes.map((node, i) => [node, i]));
    const compiler = new StepCompiler(machine.implementations, index, refuse);
    const leaves: Leaf[] = [];
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
      const final = node.type === 'final' ? compiler.final(node, root) : undefined;
      leaves.push({ path: node.path.join('.'), on, always, final });
    }
    const initial: Transition = compiler.initial(root);
    this.#context = contextOf((machine.config as Any).context, refuse);
    this.#program = { leaves, initial };
  }

  /**
   * Starts an instance in its initial state, running the entry actions on the way (the machine's own
   * first), which see the start event `xstate.init` with the input. `self` is given to its actions, guards,
   * delays and output as `self`: one compiled machine can then serve many owners.
   */
  start(input: TInput, timers: Timers, hooks: CompiledMachineHooks<TContext, TOutput>, self?: unknown): MachineInstance<TContext, TEvent> {
    const instance = new MachineInstance<TContext, TEvent>(this.#program, this.#context(input), timers, hooks as never, self);
    instance.begin(input);
    return instance;
  }
}
