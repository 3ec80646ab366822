/**
 * A compiled machine (src/connection/compiled-machine.ts) against an XState
 * Actor of the same machine: over every sequence of up to five events — each
 * event the connection machine handles, and the clock passing its close
 * timeout — both must be in the same state with the same context after every
 * event, run the same actions with the same parameters in the same order, and
 * end with the same output. The runtime runs the compiled machine for every
 * connection nobody inspects, so this is what keeps it the machine's.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { createActor, SimulatedClock, type AnyStateMachine } from 'xstate';
import { connectionMachine, type ConnectionEvent, type ConnectionInput } from '../../machines/connection.machine.js';
import { supervisorMachine } from '../../machines/supervisor.machine.js';
import { CompiledMachine } from '../../src/connection/compiled-machine.js';

const input: ConnectionInput = { id: 'c', closeTimeoutMs: 300 };
const TICK = { type: 'tick' } as const;
type Stimulus = ConnectionEvent | typeof TICK;

const stimuli: Stimulus[] = [
  { type: 'socket.closed', code: 4100, reason: 'bye' },
  { type: 'socket.error', code: 1009, message: 'too big' },
  { type: 'heartbeat.missed' },
  { type: 'send.failed', message: 'EPIPE' },
  { type: 'server.close', code: 4101, reason: 'done', cause: 'server' },
  { type: 'runtime.shutdown', code: 1001, reason: 'server shutting down' },
  TICK,
];

const ACTIONS = ['closeSocket', 'terminateSocket', 'markLeaving', 'reportClosed', 'notifySupervisor'] as const;

/** The machine with every action recording its name, parameters and the context it saw; `throwOn` makes one throw. */
function recording(log: unknown[], throwOn?: string) {
  const actions = Object.fromEntries(
    ACTIONS.map((name) => [
      name,
      ({ context }: { context: unknown }, params: unknown) => {
        log.push({ name, params, context: structuredClone(context) });
        if (name === throwOn) throw new Error(`${name} failed`);
      },
    ]),
  );
  return connectionMachine.provide({ actions } as never) as AnyStateMachine;
}

function leafOf(value: unknown): string {
  if (typeof value === 'string') return value;
  const [key, inner] = Object.entries(value as Record<string, unknown>)[0]!;
  return `${key}.${leafOf(inner)}`;
}

interface Trace {
  log: unknown[];
  states: Array<{ state: string | undefined; context: unknown; status: string; output: unknown }>;
}

function runActor(sequence: readonly Stimulus[], throwOn?: string): Trace {
  const log: unknown[] = [];
  const clock = new SimulatedClock();
  const actor = createActor(recording(log, throwOn), { input, clock });
  actor.subscribe({ error: () => {} });
  actor.start();
  const states: Trace['states'] = [];
  const record = () => {
    const snapshot = actor.getSnapshot();
    const active = snapshot.status === 'active';
    states.push({
      state: active ? leafOf(snapshot.value) : undefined,
      context: active ? structuredClone(snapshot.context) : undefined,
      status: snapshot.status,
      output: snapshot.output,
    });
  };
  record();
  for (const stimulus of sequence) {
    if (stimulus === TICK) clock.increment(input.closeTimeoutMs);
    // A stopped actor ignores events (and warns of each): the compiled machine ignores them too.
    else if (actor.getSnapshot().status === 'active') actor.send(stimulus);
    record();
  }
  return { log, states };
}

function runCompiled(sequence: readonly Stimulus[], throwOn?: string): Trace {
  const log: unknown[] = [];
  const clock = new SimulatedClock();
  let status = 'active';
  let output: unknown;
  const machine = new CompiledMachine(recording(log, throwOn));
  const instance = machine.start(input, clock, {
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
      context: instance.state === undefined ? undefined : structuredClone(instance.context),
      status,
      output,
    });
  record();
  for (const stimulus of sequence) {
    if (stimulus === TICK) clock.increment(input.closeTimeoutMs);
    else instance.send(stimulus as never);
    record();
  }
  return { log, states };
}

/** Every sequence of up to `length` stimuli, not extended past the end of the machine. */
function* sequences(length: number, prefix: Stimulus[] = []): Generator<Stimulus[]> {
  yield prefix;
  if (prefix.length === length) return;
  const trace = runActor(prefix);
  if (trace.states.at(-1)!.status !== 'active') return;
  for (const stimulus of stimuli) yield* sequences(length, [...prefix, stimulus]);
}

describe('a compiled machine', () => {
  it('passes through the same states, actions and output as an XState Actor, over every sequence of up to five events', () => {
    let count = 0;
    const ends = new Set<string>();
    for (const sequence of sequences(5)) {
      const expected = runActor(sequence);
      const actual = runCompiled(sequence);
      expect(actual, sequence.map((stimulus) => stimulus.type).join(' → ')).toEqual(expected);
      ends.add(`${expected.states.at(-1)!.state ?? expected.states.at(-1)!.status}`);
      count++;
    }
    // Enough sequences to reach every state, the end included.
    expect(count).toBeGreaterThan(1000);
    expect([...ends].sort()).toEqual(['disconnecting.closing', 'done', 'open']);
  });

  it('stops where an XState Actor stops when an action throws, and takes no more events', () => {
    for (const action of ACTIONS) {
      for (const first of stimuli.slice(0, 6)) {
        const sequence = [first, TICK, { type: 'socket.closed', code: 1000, reason: '' } as const, TICK];
        expect(runCompiled(sequence, action), `${action} on ${first.type}`).toEqual(runActor(sequence, action));
      }
    }
  });

  it('runs on the XState it was checked against: the version is pinned, and installed', () => {
    const pinned = (
      JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { dependencies: Record<string, string> }
    ).dependencies.xstate;
    expect(pinned).toMatch(/^\d+\.\d+\.\d+$/);
    const installed = createRequire(import.meta.url)('xstate/package.json') as { version: string };
    expect(installed.version).toBe(pinned);
  });

  it('refuses a machine it cannot run as XState would (guards, here)', () => {
    expect(() => new CompiledMachine(supervisorMachine as AnyStateMachine)).toThrow(/cannot run guards/);
  });
});
