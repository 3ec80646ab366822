/**
 * A compiled machine (src/util/compiled-machine.ts) against an XState Actor
 * of the same machine, for each machine berth runs compiled — the connection
 * machine (connections nobody inspects) and the client machine
 * (`berth/client`): over every sequence of events up to a length — each
 * event the machine handles, and the clock moving on — both must be in the
 * same state with the same context after every event, run the same actions
 * with the same parameters in the same order, fail where the other fails,
 * and end with the same output. This is what keeps a compiled machine the
 * machine's.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { createActor, SimulatedClock, type AnyStateMachine } from 'xstate';
import { clientMachine } from '../../machines/client.machine.js';
import { connectionMachine } from '../../machines/connection.machine.js';
import { supervisorMachine } from '../../machines/supervisor.machine.js';
import { CompiledMachine } from '../../src/util/compiled-machine.js';
import { clientEvents, clientInput, connectionEvents, connectionInput } from './samples.js';

/** An event, or the simulated clock moving on by `ms`. */
type Stimulus = { type: string; [key: string]: unknown } | { tick: number };

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
    else if (actor.getSnapshot().status === 'active') actor.send(stimulus as never);
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
    else instance.send(stimulus as never);
    record();
  }
  return { log, states };
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
  it('runs on the XState it was checked against: the version is pinned, and installed', () => {
    const pinned = (
      JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { dependencies: Record<string, string> }
    ).dependencies.xstate;
    expect(pinned).toMatch(/^\d+\.\d+\.\d+$/);
    const installed = createRequire(import.meta.url)('xstate/package.json') as { version: string };
    expect(installed.version).toBe(pinned);
  });

  it('refuses a machine it cannot run as XState would (the supervisor: `enqueueActions`, `sendTo`)', () => {
    expect(() => new CompiledMachine(supervisorMachine as AnyStateMachine)).toThrow(/cannot run/);
  });
});
