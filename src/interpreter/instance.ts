/**
 * One running instance of a compiled machine: its state and context, the
 * events that arrive while one is being processed, its pending delays.
 */
import type { ActionArgs, Candidate, Delay, Program, Scope, Step, Timers, Transition } from './compiled.js';

/** What a running compiled machine reports. */
export interface CompiledMachineHooks<TContext, TOutput> {
  /** It reached a top-level final state; `output` is the machine's output. */
  done(output: TOutput, context: TContext): void;
  /**
   * An action (or a guard, or the output) threw, or it was sent a child's `xstate.error.actor.*` that no
   * transition takes: the machine stops, as an XState Actor does on an error.
   */
  failed(error: unknown, context: TContext): void;
  /** An event was processed (where an Actor's subscribers would get a snapshot): the state now. */
  processed?(state: string, context: TContext): void;
}

/** One running instance of a compiled machine. */
export class MachineInstance<TContext extends object, TEvent extends { type: string }> implements Scope {
  readonly #program: Program;
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

  constructor(program: Program, context: TContext, timers: Timers, hooks: CompiledMachineHooks<TContext, unknown>, self: unknown) {
    this.#self = self;
    this.#program = program;
    this.#context = context;
    this.#timers = timers;
    this.#hooks = hooks;
  }

  /** The current leaf state's path, or undefined once stopped. */
  get state(): string | undefined {
    return this.#state === -1 ? undefined : this.#program.leaves[this.#state]!.path;
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

  /**
   * Processes an event, after any it is already processing; ignored once stopped or where the state has no
   * transition for it, but for a child's `xstate.error.actor.*`, which fails it as it fails an Actor.
   */
  send(event: TEvent): void {
    if (this.#processing) {
      (this.#queue ??= []).push(event);
      return;
    }
    this.#drain(event, undefined);
  }

  /** @internal Enters the initial state; the entry actions see XState's start event, which carries the input. */
  begin(input: unknown): void {
    const start: { type: string; input: unknown } = { type: 'xstate.init', input };
    this.#drain(start, this.#program.initial);
  }

  /** Processes `event` (or takes `initial`), then every event queued meanwhile, one at a time. */
  #drain(event: { type: string }, initial: Transition | undefined): void {
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
    const candidates = this.#program.leaves[this.#state]!.on.get(event.type);
    let transition: Transition | undefined;
    if (candidates !== undefined) {
      try {
        transition = this.#select(candidates, event);
      } catch (error) {
        // A guard that throws fails the machine, as an action does.
        this.#fail(error);
        return;
      }
    }
    if (transition !== undefined) this.#take(transition, event);
    // XState fails a machine on a child's error that none of its transitions takes.
    else if (event.type.startsWith('xstate.error.actor')) this.#fail((event as { error?: unknown }).error);
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
        const leaf = this.#program.leaves[this.#state]!;
        if (leaf.final !== undefined) {
          const output = leaf.final.output({ context: this.#context, event, self: this.#self });
          this.#run(leaf.final.exit, event);
          if (this.#runDeferred()) this.#finish(output);
          return;
        }
        next = leaf.always.length === 0 ? undefined : this.#select(leaf.always, event);
      } catch (error) {
        this.#fail(error);
        return;
      }
    }
    if (this.#runDeferred()) this.#hooks.processed?.(this.#program.leaves[this.#state]!.path, this.#context);
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

  #finish(output: unknown): void {
    const final = this.#program.leaves[this.#state]!.path;
    this.#stop();
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
