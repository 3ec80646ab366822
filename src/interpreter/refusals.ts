/**
 * What a compiled machine refuses: anything it cannot run exactly as XState
 * does, refused when the machine is compiled, so that a change to a machine
 * that the interpreter cannot run fails at once rather than behaving
 * differently.
 */
import type { Any } from './compiled.js';

/** The error for what a machine uses and a compiled machine cannot run: `what` names it. */
export type Refuse = (what: string) => Error;

/** The `Refuse` of the machine `id`: its errors name it. */
export function refusing(id: string): Refuse {
  return (what) => new Error(`the compiled machine '${id}' cannot run ${what}; run it as an XState Actor`);
}

/** Refuses the states and transitions of `node` and its descendants that a compiled machine cannot run. */
export function refuseUnsupported(node: Any, refuse: Refuse): void {
  if (node.type === 'parallel' || node.type === 'history') throw refuse(`the ${String(node.type)} state ${node.id}`);
  // XState raises `xstate.done.state.<parent>` (with the state's output) on entering one: nothing here would.
  if (node.type === 'final' && node.parent?.parent !== undefined) throw refuse(`the final state ${node.id} below the top level`);
  if ((node.invoke as Any[]).length > 0) throw refuse(`invoked actors (in ${node.id})`);
  for (const type of (node.transitions as Map<string, Any[]>).keys()) {
    // A wildcard (`*`, `socket.*`) matches event types this table cannot list ahead of time.
    if (type.includes('*')) throw refuse(`the wildcard event ${type} (in ${node.id})`);
  }
  for (const child of Object.values(node.states)) refuseUnsupported(child, refuse);
}

/**
 * The initial context from the input, as XState makes it from the machine's `context` (a function of
 * `{ input, self, spawn }`, or an object), except that `self` and `spawn` are refused: a compiled
 * machine has no actor ref of its own to give, and spawns nothing. To refuse them when the machine is
 * compiled, the context function is called once then with no input, and its `self` and `spawn` trapped
 * (context functions are meant to be pure: all it costs is what it allocates); one that reads them
 * only past what needs a real input fails there, when an instance is started, with the same error.
 */
export function contextOf<TInput, TContext>(context: Any, refuse: Refuse): (input: TInput) => TContext {
  if (typeof context !== 'function') return () => ({ ...context });
  const selfRefused = () => refuse('`self` in its context function');
  const spawnRefused = () => refuse('`spawn` in its context function');
  let probed: Error | undefined;
  const probe = {
    input: undefined,
    get self() {
      throw (probed = selfRefused());
    },
    get spawn() {
      throw (probed = spawnRefused());
    },
  };
  try {
    context(probe);
  } catch {
    // Whatever else it threw needed a real input.
  }
  if (probed !== undefined) throw probed;
  class Args {
    constructor(readonly input: TInput) {}
    get self(): never {
      throw selfRefused();
    }
    get spawn(): never {
      throw spawnRefused();
    }
  }
  return (input) => context(new Args(input)) as TContext;
}
