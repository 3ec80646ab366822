/**
 * What a compiled machine refuses: anything it cannot run exactly as XState
 * does, refused when the machine is compiled, so that a change to a machine
 * that the interpreter cannot run fails at once rather than behaving
 * differently.
 */
import type { Any } from './compiled.js';

/** The error for what a machine uses and a compiled machine cannot run: `what` names it. */
export type Refuse = (what: string) => Error;

/** The `Refuse` of one machine. */
export function refusing(): Refuse {
  return (what) => new Error(`a compiled machine cannot run ${what}; run it as an XState Actor`);
}

/** Refuses the state kinds and transitions of `node` and its descendants that a compiled machine cannot run. */
export function refuseUnsupported(node: Any, refuse: Refuse): void {
  if (node.type === 'parallel' || node.type === 'history') throw refuse(`the ${String(node.type)} state ${node.id}`);
  if ((node.invoke as Any[]).length > 0) throw refuse(`invoked actors (in ${node.id})`);
  for (const type of (node.transitions as Map<string, Any[]>).keys()) {
    // A wildcard (`*`, `socket.*`) matches event types this table cannot list ahead of time.
    if (type.includes('*')) throw refuse(`the wildcard event ${type} (in ${node.id})`);
  }
  for (const child of Object.values(node.states)) refuseUnsupported(child, refuse);
}
