/**
 * Actions compiled: a named action (a plain function, an `assign` or an
 * `enqueueActions`) or an inline `assign`, turned into what running it does.
 */
import type { Any, ChildRef, Exec } from './compiled.js';
import type { Refuse } from './refusals.js';

/** Compiles the actions of one machine, given its implementations. */
export class ActionCompiler {
  readonly #actions: Record<string, Any>;
  readonly #refuse: Refuse;

  constructor(actions: Record<string, Any> | undefined, refuse: Refuse) {
    this.#actions = actions ?? {};
    this.#refuse = refuse;
  }

  /** What running `action` does: an inline `assign`, or a named action (a plain function, an `assign` or an `enqueueActions`). */
  exec(action: Any): Exec {
    if (typeof action === 'function') {
      if (action.type === 'xstate.assign') return assigning(action.assignment, undefined);
      throw this.#refuse(`the built-in action ${String(action.type)}`);
    }
    const type: string = typeof action === 'string' ? action : action.type;
    const params = typeof action === 'string' ? undefined : action.params;
    const implementation = this.#actions[type];
    if (typeof implementation !== 'function') throw this.#refuse(`the action ${type} without an implementation`);
    switch (implementation.type) {
      case undefined:
        return typeof params === 'function' ? (args) => implementation(args, params(args)) : (args) => implementation(args, params);
      case 'xstate.assign':
        return assigning(implementation.assignment, params);
      case 'xstate.enqueueActions':
        return this.#enqueuing(implementation.collect, params);
      default:
        throw this.#refuse(`the action ${type}, a built-in action (${String(implementation.type)})`);
    }
  }

  /**
   * An `enqueueActions`: its callback runs, then what it enqueued, in order, before the transition's next
   * action, as XState runs them. Named actions and `sendTo` / `stopChild` of a ref are supported; what
   * else it may enqueue is known only when it runs, and fails the machine then.
   */
  #enqueuing(collect: Any, params: Any): Exec {
    const refuse = this.#refuse;
    // Built once, not per run: the callback's `enqueue` pushes onto the run in progress.
    let queued: Exec[] = [];
    const enqueue = (action: Any) => void queued.push(this.exec(action));
    enqueue.sendTo = (to: Any, event: Any, options?: Any) => {
      if (options !== undefined) throw refuse('a `sendTo` with options (a delay or an id)');
      queued.push((at, into) => {
        const ref = (typeof to === 'function' ? to(at, undefined) : to) as ChildRef;
        if (typeof ref?._send !== 'function') throw refuse('a `sendTo` to anything but an actor ref');
        const resolved: unknown = typeof event === 'function' ? event(at, undefined) : event;
        into.defer(() => ref._send(resolved));
      });
    };
    enqueue.stopChild = (ref: ChildRef) => {
      queued.push((_, into) => {
        if (typeof ref?.stop !== 'function') throw refuse('a `stopChild` of anything but an actor ref');
        into.defer(() => ref.stop!());
      });
    };
    for (const name of ['assign', 'cancel', 'raise', 'sendParent', 'spawnChild', 'emit'] as const) {
      (enqueue as Any)[name] = () => {
        throw refuse(`\`enqueue.${name}\``);
      };
    }
    const check = () => {
      throw refuse('`check` in `enqueueActions`');
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
