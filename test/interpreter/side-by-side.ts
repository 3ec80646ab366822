/**
 * Runs one machine two ways, side by side — as an XState Actor and compiled
 * (src/interpreter/) — over the same stimuli, and traces what each does: the
 * state, context, status and output after every stimulus, and a log of the
 * actions run (with their parameters and the context they saw), the events
 * sent to actors and the actors stopped.
 */
import { createActor, createMachine, SimulatedClock, type AnyStateMachine } from 'xstate';
import { CompiledMachine } from '../../src/interpreter/machine.js';

/** An event, or the simulated clock moving on by `ms`. */
export type Stimulus = { type: string; [key: string]: unknown } | { tick: number };

/** What a run gives the events it sends: its log, and an actor ref (recording what it is sent, and its stop) by name. */
export interface Run {
  readonly log: unknown[];
  ref(name: string): unknown;
}

export interface Subject {
  readonly name: string;
  /** The machine with its actions recording into the log of the run in progress (`recording`). */
  readonly machine: AnyStateMachine;
  readonly input: unknown;
  readonly actions: readonly string[];
  readonly stimuli: readonly Stimulus[];
  /** How long the sequences get. */
  readonly length: number;
  /** How many sequences the walk must take at least (it stops extending one where the machine ends). */
  readonly atLeast: number;
  /** The states some sequence must end in (a final one as `<state> (done)`, or `error`): the walk reached them all. */
  readonly ends: readonly string[];
  /** The event as this run sends it: its refs and callbacks the run's own. */
  readonly bind?: (event: { type: string; [key: string]: unknown }, run: Run) => unknown;
  /** Also this many random sequences of this length, from a fixed seed. */
  readonly random?: { readonly count: number; readonly length: number };
}

/**
 * The run in progress: where the recording actions log, and which of them throws. Runs are synchronous
 * (the clock is simulated), so one at a time; a machine is then provided, and compiled, once per subject.
 */
const running: { log: unknown[]; throwOn: string | undefined } = { log: [], throwOn: undefined };

/** `machine` with the actions `names` recording into the run in progress; its `throwOn` throws. */
export function recording(machine: AnyStateMachine, names: readonly string[]): AnyStateMachine {
  const actions = Object.fromEntries(
    names.map((name) => [
      name,
      ({ context }: { context: unknown }, params: unknown) => {
        running.log.push({ name, params, context: plain(context) });
        if (name === running.throwOn) throw new Error(`${name} failed`);
      },
    ]),
  );
  return machine.provide({ actions } as never) as AnyStateMachine;
}

/** Starts a run: its log, and the action that throws. */
function begin(throwOn: string | undefined): unknown[] {
  running.log = [];
  running.throwOn = throwOn;
  return running.log;
}

const compiledMachines = new WeakMap<AnyStateMachine, CompiledMachine<object, { type: string }, unknown, unknown>>();

/** A context as data: functions (the client's `random`, `reconnectable`) left out. */
export function plain(value: unknown): unknown {
  return value === undefined ? undefined : (JSON.parse(JSON.stringify(value)) as unknown);
}

function leafOf(value: unknown): string {
  if (typeof value === 'string') return value;
  const [key, inner] = Object.entries(value as Record<string, unknown>)[0]!;
  return `${key}.${leafOf(inner)}`;
}

/** What a run did: its log, and after the start and each stimulus its state and context (also once done), status, output and error. */
export interface Trace {
  log: unknown[];
  states: Array<{ state: string | undefined; context: unknown; status: string; output: unknown; error: string | undefined }>;
}

export function runActor(subject: Subject, sequence: readonly Stimulus[], throwOn?: string): Trace {
  const log = begin(throwOn);
  const clock = new SimulatedClock();
  const actor = createActor(subject.machine, { input: subject.input, clock });
  actor.subscribe({ error: () => {} });
  actor.start();
  const run: Run = {
    log,
    // The supervisor stops its sessions, which XState allows only for its own children.
    ref: (name) => {
      const sender = () => (actor.getSnapshot().status === 'active' ? leafOf(actor.getSnapshot().value) : undefined);
      const child = createActor(recorder(log, name, sender), { parent: actor });
      child.subscribe({ complete: () => log.push({ stopped: name }) });
      return child.start();
    },
  };
  const states: Trace['states'] = [];
  const record = () => {
    const snapshot = actor.getSnapshot();
    const settled = snapshot.status === 'active' || snapshot.status === 'done';
    states.push({
      state: settled ? leafOf(snapshot.value) : undefined,
      context: settled ? plain(snapshot.context) : undefined,
      status: snapshot.status,
      output: snapshot.output,
      error: snapshot.status === 'error' ? String(snapshot.error) : undefined,
    });
  };
  record();
  for (const stimulus of sequence) {
    if ('tick' in stimulus) clock.increment(stimulus.tick as number);
    // A stopped actor ignores events (and warns of each): the compiled machine ignores them too.
    else if (actor.getSnapshot().status === 'active') actor.send((subject.bind?.(stimulus, run) ?? stimulus) as never);
    record();
  }
  return { log, states };
}

export function runCompiled(subject: Subject, sequence: readonly Stimulus[], throwOn?: string): Trace {
  const log = begin(throwOn);
  const clock = new SimulatedClock();
  let status = 'active';
  let output: unknown;
  let error: string | undefined;
  /** The state the last event left it in: a final state is reported here, before `done`. */
  let last: string | undefined;
  let machine = compiledMachines.get(subject.machine);
  if (machine === undefined) compiledMachines.set(subject.machine, (machine = new CompiledMachine(subject.machine)));
  const instance = machine.start(subject.input, clock, {
    processed: (state) => {
      last = state;
    },
    done: (value) => {
      status = 'done';
      output = value;
    },
    failed: (failure) => {
      status = 'error';
      error = String(failure);
    },
  });
  const run: Run = {
    log,
    ref: (name) => ({
      // The sender's state as the event arrives: XState sends once the transition is taken.
      _send: (event: { type: string }) => log.push({ to: name, event: event.type, senderIn: instance.state }),
      stop: () => log.push({ stopped: name }),
    }),
  };
  const states: Trace['states'] = [];
  const record = () => {
    const settled = status === 'active' || status === 'done';
    states.push({
      state: status === 'active' ? instance.state : status === 'done' ? last : undefined,
      context: settled ? plain(instance.context) : undefined,
      status,
      output,
      error,
    });
  };
  record();
  for (const stimulus of sequence) {
    if ('tick' in stimulus) clock.increment(stimulus.tick as number);
    else instance.send((subject.bind?.(stimulus, run) ?? stimulus) as never);
    record();
  }
  return { log, states };
}

/** An actor that logs every event it is sent, as a compiled run's refs do. */
function recorder(log: unknown[], name: string, sender: () => string | undefined): AnyStateMachine {
  return createMachine({ on: { '*': { actions: ({ event }) => log.push({ to: name, event: event.type, senderIn: sender() }) } } });
}

/** `count` sequences of `length` stimuli, the same every run (a linear congruential generator from a fixed seed). */
export function randomSequences(subject: Subject, count: number, length: number): Stimulus[][] {
  let seed = 20261201;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  return Array.from({ length: count }, () => Array.from({ length }, () => subject.stimuli[Math.floor(next() * subject.stimuli.length)]!));
}

/**
 * Every sequence of up to `length` stimuli, not extended past the end of the machine: `ended` says whether
 * the sequence last yielded ended it (the caller has run it by then, so each sequence is run once).
 */
export function* sequences(subject: Subject, ended: () => boolean, prefix: Stimulus[] = []): Generator<Stimulus[]> {
  yield prefix;
  if (prefix.length === subject.length || ended()) return;
  for (const stimulus of subject.stimuli) yield* sequences(subject, ended, [...prefix, stimulus]);
}

export const describeStimulus = (stimulus: Stimulus) => ('tick' in stimulus ? `+${stimulus.tick} ms` : stimulus.type);
