/**
 * The compiled form of a machine: what `steps.ts` builds from XState's state
 * nodes once, and `instance.ts` runs per instance.
 */
import type { ActorOptions, AnyActorLogic } from 'xstate';

/** The timers delays run on: an Actor's clock (the host's timers, or XState's `SimulatedClock` in tests). */
export type Timers = NonNullable<ActorOptions<AnyActorLogic>['clock']>;

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- XState's own internal shapes
export type Any = any;

/** What actions, guards and delays are given; `self` is what `start` was given (an Actor would give its ref). */
export type ActionArgs = { context: Any; event: Any; self: unknown };

/** `scope` is the instance running it: `sendTo` and `stopChild` are deferred to the end of its transition, as XState defers them. */
export type Exec = (args: ActionArgs, scope: Scope) => void;

/** What an action needs of the instance running it. */
export interface Scope {
  /** Runs `effect` once the transition (with its eventless transitions) is taken, as XState runs `sendTo` and `stopChild`. */
  defer(effect: () => void): void;
}

/**
 * What a compiled machine's `sendTo` and `stopChild` reach: an XState Actor's ref (its `_send` is what
 * XState's relay calls) or another compiled instance, which is its own ref.
 */
export interface ChildRef {
  _send(event: unknown): void;
  stop?(): unknown;
}

/** A delayed event a state starts on entry and cancels on exit. */
export interface Delay {
  readonly eventType: string;
  readonly ms: (args: ActionArgs) => number;
}

/** What happens on a state's entry or exit, and on a transition. */
export type Step =
  | { readonly kind: 'action'; readonly exec: Exec }
  | { readonly kind: 'start'; readonly delay: Delay }
  | { readonly kind: 'cancel'; readonly eventType: string };

/** A transition worked out from one leaf state. */
export interface Transition {
  /** The leaf state it ends in; -1 if it has no target (it runs its actions and stays). */
  readonly target: number;
  readonly steps: readonly Step[];
}

/** A transition that may be taken: if it has no guard, or its guard holds. */
export interface Candidate {
  readonly guard: ((args: ActionArgs) => boolean) | undefined;
  readonly transition: Transition;
}

/** A leaf state: what each event does there. */
export interface Leaf {
  readonly path: string;
  /** Per event type, the transitions that may be taken from here, in the order XState tries them. */
  readonly on: ReadonlyMap<string, readonly Candidate[]>;
  /** The eventless transitions tried as soon as this state is entered. */
  readonly always: readonly Candidate[];
  /** Set on a top-level final state: entering it ends the machine. */
  readonly final: Final | undefined;
}

/** How a machine finishes, once its top-level final state is entered. */
export interface Final {
  /** The machine's output, resolved as XState resolves it: before the exit actions. */
  output(args: ActionArgs): unknown;
  /** The final state's exit actions, then the machine's, as XState runs them when a machine finishes. */
  readonly exit: readonly Step[];
}

/** A whole machine compiled: what an instance of it runs. */
export interface Program {
  /** The leaf states, by number. */
  readonly leaves: readonly Leaf[];
  /** The machine's start: the machine entered, then its initial states down to a leaf. */
  readonly initial: Transition;
}
