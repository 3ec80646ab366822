/**
 * A compiled machine (src/interpreter/) against an XState Actor of the same
 * machine, for each machine berth runs compiled — the connection, supervisor
 * and session machines (runtimes nobody inspects) and the client machine
 * (`berth/client`) — and for one that uses what they do not: over every
 * sequence of events up to a length — each event the machine handles, and
 * the clock moving on — and, for the supervisor, over random longer ones
 * too, both must be in the same state with the same context after every
 * event, run the same actions with the same parameters in the same order,
 * send the same events to the same actors and stop the same ones (`sendTo`,
 * `stopChild`) at the same points, answer the same requests the same way,
 * fail where the other fails, and end in the same final state with the same
 * output. This is what keeps a compiled machine the machine's.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { assign, setup, type AnyStateMachine } from 'xstate';
import { clientMachine } from '../../machines/client.machine.js';
import { connectionMachine } from '../../machines/connection.machine.js';
import { sessionMachine } from '../../machines/session.machine.js';
import { supervisorMachine } from '../../machines/supervisor.machine.js';
import {
  clientEvents,
  clientInput,
  connectionEvents,
  connectionInput,
  sessionEvents,
  sessionInput,
  supervisorEvents,
  supervisorInput,
} from '../model/samples.js';
import {
  describeStimulus,
  randomSequences,
  recording,
  runActor,
  runCompiled,
  sequences,
  type Run,
  type Stimulus,
  type Subject,
  type Trace,
} from './side-by-side.js';

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

/**
 * What none of the project's machines uses but a compiled machine runs as XState does: the machine's own
 * `entry`, `exit` and `after`; the start event (`xstate.init`) carrying the input, to entry actions and
 * eventless guards; every state's exit actions as the machine finishes; a final state's `output`, and the
 * machine's output given the done-state event; a child's error that no transition takes, which fails it.
 */
const featuresMachine = setup({
  types: {} as { context: { n: number; exits: number }; input: { start: number } },
  actions: { note: (_, _params: unknown) => {}, finalExit: () => {}, machineExit: () => {} },
}).createMachine({
  id: 'features',
  context: ({ input }) => ({ n: input.start, exits: 0 }),
  entry: [
    { type: 'note', params: ({ event }: { event: unknown }) => ({ entered: 'machine', event }) },
    assign({ n: ({ context }) => context.n + 10 }),
  ],
  exit: ['machineExit', assign({ exits: ({ context }) => context.exits + 1 })],
  after: { 500: { actions: assign({ n: ({ context }) => context.n + 100 }) } },
  on: { bump: { actions: assign({ n: ({ context }) => context.n + 1 }) }, quit: '.quit' },
  initial: 'a',
  states: {
    a: {
      entry: { type: 'note', params: ({ event }: { event: unknown }) => ({ entered: 'a', event }) },
      always: { guard: ({ event }) => (event as { input?: { start: number } }).input?.start === 7, target: 'b' },
      on: { go: 'b' },
    },
    b: {
      on: {
        finish: 'finished',
        'xstate.error.actor.guarded': { guard: ({ context }) => context.n > 100, target: 'a' },
      },
    },
    finished: {
      type: 'final',
      exit: ['finalExit', assign({ exits: ({ context }) => context.exits + 10 })],
      output: ({ context, event }) => ({ n: context.n, by: event.type }),
    },
    quit: { type: 'final' },
  },
  output: ({ context, event }) => ({ n: context.n, exits: context.exits, event }),
});
const FEATURES_ACTIONS = ['note', 'finalExit', 'machineExit'];

const subjects: Subject[] = [
  {
    name: 'connection',
    machine: recording(connectionMachine as AnyStateMachine, CONNECTION_ACTIONS),
    input: connectionInput,
    actions: CONNECTION_ACTIONS,
    stimuli: [...connectionEvents, { tick: 300 }],
    length: 5,
    atLeast: 1000,
    ends: ['closed (done)', 'disconnecting.closing', 'open'],
  },
  {
    name: 'client',
    machine: recording(clientMachine as AnyStateMachine, CLIENT_ACTIONS),
    input: clientInput,
    actions: CLIENT_ACTIONS,
    stimuli: [...clientEvents, { tick: 300 }, { tick: 1000 }],
    length: 4,
    atLeast: 1000,
    ends: ['closed (done)', 'closing', 'live.connecting', 'live.open', 'live.resuming', 'reconnecting'],
  },
  {
    name: 'supervisor',
    machine: recording(supervisorMachine as AnyStateMachine, SUPERVISOR_ACTIONS),
    input: supervisorInput,
    actions: SUPERVISOR_ACTIONS,
    stimuli: supervisorEvents as unknown as Stimulus[],
    length: 3,
    atLeast: 1000,
    ends: ['running', 'stopped (done)', 'stopping'],
    bind: bindSupervisorEvent,
    random: { count: 3000, length: 10 },
  },
  {
    name: 'session',
    machine: recording(sessionMachine as AnyStateMachine, []),
    input: sessionInput,
    actions: [],
    // Steps short of the window (1000 ms), which add up to it or past it.
    stimuli: [...sessionEvents, { tick: 250 }, { tick: 600 }],
    length: 6,
    atLeast: 20,
    ends: ['detached', 'expired (done)', 'resumed (done)'],
  },
  {
    name: 'features',
    machine: recording(featuresMachine as AnyStateMachine, FEATURES_ACTIONS),
    input: { start: 7 },
    actions: FEATURES_ACTIONS,
    stimuli: [
      { type: 'go' },
      { type: 'finish' },
      { type: 'quit' },
      { type: 'bump' },
      { type: 'xstate.error.actor.child', error: 'the child failed' },
      { type: 'xstate.error.actor.guarded', error: 'the guarded child failed' },
      { tick: 500 },
    ],
    length: 5,
    atLeast: 1000,
    ends: ['a', 'b', 'error', 'finished (done)', 'quit (done)'],
  },
];

describe.each(subjects)('the $name machine, compiled', (subject) => {
  it('passes through the same states, actions and output as an XState Actor, over every sequence of events', () => {
    let count = 0;
    const ends = new Set<string>();
    let expected: Trace | undefined;
    for (const sequence of sequences(subject, () => expected!.states.at(-1)!.status !== 'active')) {
      expected = runActor(subject, sequence);
      expect(runCompiled(subject, sequence), sequence.map(describeStimulus).join(' → ')).toEqual(expected);
      const last = expected.states.at(-1)!;
      ends.add(last.status === 'active' ? last.state! : last.status === 'done' ? `${last.state!} (done)` : last.status);
      count++;
    }
    expect(count).toBeGreaterThanOrEqual(subject.atLeast);
    expect([...ends].sort()).toEqual(subject.ends);
  });
});

describe.each(subjects.filter(({ actions }) => actions.length > 0))('the $name machine, compiled, when an action throws', (subject) => {
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
});
