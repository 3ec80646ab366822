/**
 * A compiled machine (src/util/compiled-machine.ts) against an XState Actor
 * of the same machine, for each machine berth runs compiled — the connection
 * and supervisor machines (runtimes nobody inspects) and the client machine
 * (`berth/client`): over every sequence of events up to a length — each
 * event the machine handles, and the clock moving on — and, for the
 * supervisor, over random longer ones too, both must be in the same state
 * with the same context after every event, run the same actions with the
 * same parameters in the same order, send the same events to the same
 * actors and stop the same ones (`sendTo`, `stopChild`) at the same points,
 * answer the same requests the same way, fail where the other fails, and
 * end with the same output. This is what keeps a compiled machine the
 * machine's.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { and, createActor, createMachine, enqueueActions, setup, SimulatedClock, type AnyStateMachine } from 'xstate';
import { clientMachine } from '../../machines/client.machine.js';
import { connectionMachine } from '../../machines/connection.machine.js';
import { supervisorMachine } from '../../machines/supervisor.machine.js';
import { CompiledMachine } from '../../src/util/compiled-machine.js';
import { clientEvents, clientInput, connectionEvents, connectionInput, supervisorEvents, supervisorInput } from './samples.js';

/** An event, or the simulated clock moving on by `ms`. */
type Stimulus = { type: string; [key: string]: unknown } | { tick: number };

/** What a run gives the events it sends: its log, and an actor ref (recording what it is sent, and its stop) by name. */
interface Run {
  readonly log: unknown[];
  ref(name: string): unknown;
}

interface Subject {
  readonly name: string;
  /** The machine with its actions recording into `log`; `throwOn` makes that action throw. */
  readonly machine: (log: unknown[], throwOn?: string) => AnyStateMachine;
  readonly input: unknown;
  readonly actions: readonly string[];
  readonly stimuli: readonly Stimulus[];
  /** How long the sequences get. */
  readonly length: number;
  /** The states (or `done`) some sequence must end in: the walk reached them all. */
  readonly ends: readonly string[];
  /** The event as this run sends it: its refs and callbacks the run's own. */
  readonly bind?: (event: { type: string; [key: string]: unknown }, run: Run) => unknown;
  /** Also this many random sequences of this length, from a fixed seed. */
  readonly random?: { readonly count: number; readonly length: number };
}

function recording(machine: AnyStateMachine, names: readonly string[]) {
  return (log: unknown[], throwOn?: string) => {
    const actions = Object.fromEntries(
      names.map((name) => [
        name,
        ({ context }: { context: unknown }, params: unknown) => {
          log.push({ name, params, context: plain(context) });
          if (name === throwOn) throw new Error(`${name} failed`);
        },
      ]),
    );
    return machine.provide({ actions } as never) as AnyStateMachine;
  };
}

/** A context as data: functions (the client's `random`, `reconnectable`) left out. */
function plain(value: unknown): unknown {
  return value === undefined ? undefined : (JSON.parse(JSON.stringify(value)) as unknown);
}

const CONNECTION_ACTIONS = ['closeSocket', 'terminateSocket', 'markLeaving', 'reportClosed', 'notifySupervisor'];
const CLIENT_ACTIONS = ['openSocket', 'closeSocket', 'terminateSocket', 'flushQueue', 'failPending', 'reportClosed'];
/** The supervisor's actions the runtime implements; its own (`respond`, `takeSession`, …) run as written, and answer through the events. */
const SUPERVISOR_ACTIONS = ['deliver', 'reportExpired', 'reportLeft'];

/** The supervisor's requests answer into the run's log, and its refs are the run's. */
function bindSupervisorEvent(event: { type: string; [key: string]: unknown }, run: Run): unknown {
  const answer = (ok: boolean) => run.log.push({ answer: event.type, ok });
  switch (event.type) {
    case 'connection.register':
      return { ...event, ref: run.ref(`connection ${String(event.id)}`), respond: answer };
    case 'session.detach':
      return { ...event, ref: run.ref(`session ${(event.record as { token: string }).token}`), respond: answer };
    case 'session.take':
      return { ...event, taken: (record?: { token: string }) => run.log.push({ taken: record?.token, by: event.user }) };
    default:
      return 'respond' in event ? { ...event, respond: answer } : event;
  }
}

const subjects: Subject[] = [
  {
    name: 'connection',
    machine: recording(connectionMachine as AnyStateMachine, CONNECTION_ACTIONS),
    input: connectionInput,
    actions: CONNECTION_ACTIONS,
    stimuli: [...connectionEvents, { tick: 300 }],
    length: 5,
    ends: ['disconnecting.closing', 'done', 'open'],
  },
  {
    name: 'client',
    machine: recording(clientMachine as AnyStateMachine, CLIENT_ACTIONS),
    input: clientInput,
    actions: CLIENT_ACTIONS,
    stimuli: [...clientEvents, { tick: 300 }, { tick: 1000 }],
    length: 4,
    ends: ['closing', 'done', 'live.connecting', 'live.open', 'live.resuming', 'reconnecting'],
  },
  {
    name: 'supervisor',
    machine: recording(supervisorMachine as AnyStateMachine, SUPERVISOR_ACTIONS),
    input: supervisorInput,
    actions: SUPERVISOR_ACTIONS,
    stimuli: supervisorEvents as unknown as Stimulus[],
    length: 3,
    ends: ['done', 'running', 'stopping'],
    bind: bindSupervisorEvent,
    random: { count: 3000, length: 10 },
  },
];

function leafOf(value: unknown): string {
  if (typeof value === 'string') return value;
  const [key, inner] = Object.entries(value as Record<string, unknown>)[0]!;
  return `${key}.${leafOf(inner)}`;
}

interface Trace {
  log: unknown[];
  states: Array<{ state: string | undefined; context: unknown; status: string; output: unknown }>;
}

function runActor(subject: Subject, sequence: readonly Stimulus[], throwOn?: string): Trace {
  const log: unknown[] = [];
  const clock = new SimulatedClock();
  const actor = createActor(subject.machine(log, throwOn), { input: subject.input, clock });
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
    const active = snapshot.status === 'active';
    states.push({
      state: active ? leafOf(snapshot.value) : undefined,
      context: active ? plain(snapshot.context) : undefined,
      status: snapshot.status,
      output: snapshot.output,
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

function runCompiled(subject: Subject, sequence: readonly Stimulus[], throwOn?: string): Trace {
  const log: unknown[] = [];
  const clock = new SimulatedClock();
  let status = 'active';
  let output: unknown;
  const machine = new CompiledMachine(subject.machine(log, throwOn));
  const instance = machine.start(subject.input, clock, {
    done: (value) => {
      status = 'done';
      output = value;
    },
    failed: () => {
      status = 'error';
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
  const record = () =>
    states.push({
      state: instance.state,
      context: instance.state === undefined ? undefined : plain(instance.context),
      status,
      output,
    });
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
function randomSequences(subject: Subject, count: number, length: number): Stimulus[][] {
  let seed = 20261201;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  return Array.from({ length: count }, () => Array.from({ length }, () => subject.stimuli[Math.floor(next() * subject.stimuli.length)]!));
}

/** Every sequence of up to `length` stimuli, not extended past the end of the machine. */
function* sequences(subject: Subject, prefix: Stimulus[] = []): Generator<Stimulus[]> {
  yield prefix;
  if (prefix.length === subject.length) return;
  if (runActor(subject, prefix).states.at(-1)!.status !== 'active') return;
  for (const stimulus of subject.stimuli) yield* sequences(subject, [...prefix, stimulus]);
}

const describeStimulus = (stimulus: Stimulus) => ('tick' in stimulus ? `+${stimulus.tick} ms` : stimulus.type);

describe.each(subjects)('the $name machine, compiled', (subject) => {
  it('passes through the same states, actions and output as an XState Actor, over every sequence of events', () => {
    let count = 0;
    const ends = new Set<string>();
    for (const sequence of sequences(subject)) {
      const expected = runActor(subject, sequence);
      expect(runCompiled(subject, sequence), sequence.map(describeStimulus).join(' → ')).toEqual(expected);
      const last = expected.states.at(-1)!;
      ends.add(last.state ?? last.status);
      count++;
    }
    expect(count).toBeGreaterThan(1000);
    expect([...ends].sort()).toEqual(subject.ends);
  });

  it('stops where an XState Actor stops when an action throws, and takes no more events', () => {
    const events = subject.stimuli.filter((stimulus) => !('tick' in stimulus));
    const ticks = subject.stimuli.filter((stimulus) => 'tick' in stimulus);
    for (const action of subject.actions) {
      for (const first of events) {
        for (const second of events) {
          const sequence = [first, ...ticks, second, ...ticks];
          expect(runCompiled(subject, sequence, action), `${action}: ${sequence.map(describeStimulus).join(' → ')}`).toEqual(
            runActor(subject, sequence, action),
          );
        }
      }
    }
  });
});

describe('a compiled machine', () => {
  it('the supervisor machine, compiled, also over random longer sequences, with and without an action that throws', () => {
    const subject = subjects.find(({ name }) => name === 'supervisor')!;
    const { count, length } = subject.random!;
    const sequences = randomSequences(subject, count, length);
    let sent = 0;
    for (const [i, sequence] of sequences.entries()) {
      // A third of them with one of the actions throwing.
      const throwOn = i % 3 === 0 ? subject.actions[(i / 3) % subject.actions.length] : undefined;
      const expected = runActor(subject, sequence, throwOn);
      expect(runCompiled(subject, sequence, throwOn), `${throwOn ?? ''}: ${sequence.map(describeStimulus).join(' → ')}`).toEqual(expected);
      sent += expected.log.filter((entry) => typeof entry === 'object' && entry !== null && ('to' in entry || 'stopped' in entry)).length;
    }
    // The walk sent events to actors and stopped some: `sendTo` and `stopChild` were compared, not just skipped.
    expect(sent).toBeGreaterThan(100);
  });

  it('runs on the XState it was checked against: the version is pinned, and installed', () => {
    const pinned = (
      JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { dependencies: Record<string, string> }
    ).dependencies.xstate;
    expect(pinned).toMatch(/^\d+\.\d+\.\d+$/);
    const installed = createRequire(import.meta.url)('xstate/package.json') as { version: string };
    expect(installed.version).toBe(pinned);
  });

  it('refuses a machine it cannot run as XState would: parallel states, built-in guards, invoked actors, wildcards', () => {
    const machines = [
      createMachine({ type: 'parallel', states: { a: {}, b: {} } }),
      createMachine({ on: { go: { guard: and([() => true, () => true]) } } }),
      createMachine({ invoke: { src: createMachine({}) } }),
      createMachine({ on: { 'socket.*': {} } }),
    ];
    for (const machine of machines) expect(() => new CompiledMachine(machine as AnyStateMachine)).toThrow(/cannot run/);
  });

  it('fails the instance when an `enqueueActions` enqueues what it cannot run (known only when it runs)', () => {
    const machine = setup({
      actions: { later: enqueueActions(({ enqueue }) => enqueue.raise({ type: 'again' })) },
    }).createMachine({ on: { go: { actions: 'later' } } });
    const failures: unknown[] = [];
    const instance = new CompiledMachine(machine as AnyStateMachine).start(undefined, new SimulatedClock(), {
      done: () => {},
      failed: (error) => failures.push(error),
    });
    expect(instance.ended).toBe(false);
    instance.send({ type: 'go' } as never);
    expect(instance.ended).toBe(true);
    expect(String(failures[0])).toMatch(/cannot run `enqueue.raise`/);
  });
});
