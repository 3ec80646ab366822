/**
 * Pure tests of the connection machine: every (state, event) pair is checked
 * with `initialTransition` / `transition`, which compute the next snapshot and
 * the actions to run without running them. No actor is started, no timer runs.

 */
import { describe, expect, it } from 'vitest';
import { getMicrosteps, initialTransition, transition, type ExecutableActionObject, type SnapshotFrom } from 'xstate';
import { connectionMachine, type ConnectionEvent, type ConnectionInput, type ConnectionOutput } from '../../machines/connection.machine.js';
import type { CloseCause } from '../../machines/types.js';
import { runEvents } from '../helpers/transitions.js';

const machine = connectionMachine;
type Snapshot = SnapshotFrom<typeof machine>;

/** Delayed transitions fire as `xstate.after.<delay>.<state id>` events (XState's `createAfterEvent`). */
const AFTER_CLOSE_TIMEOUT = 'xstate.after.closeTimeout.connection.disconnecting.closing';
type DelayedEventType = typeof AFTER_CLOSE_TIMEOUT;
type AnyEvent = ConnectionEvent | { type: DelayedEventType };

const INPUT: ConnectionInput = { id: 'c1', closeTimeoutMs: 5_000 };

/** Where every ending trigger but `socket.closed` comes to rest: waiting for the socket to close. */
const CLOSING = { disconnecting: 'closing' } as const;

interface Named {
  type: string;
  params?: unknown;
}

function start(input: ConnectionInput = INPUT): [Snapshot, ExecutableActionObject[]] {
  return initialTransition(machine, input);
}

/** `transition`, accepting the delayed events too (XState does not type them as machine events). */
function send(snapshot: Snapshot, event: AnyEvent): [Snapshot, ExecutableActionObject[]] {
  return transition(machine, snapshot, event as ConnectionEvent);
}

/** Folds `events` over `snapshot`, returning the final snapshot and every action along the way. */
function run(snapshot: Snapshot, events: readonly AnyEvent[]): [Snapshot, ExecutableActionObject[]] {
  return runEvents(machine, snapshot, events as readonly ConnectionEvent[]);
}

/** The machine's own named actions (everything but XState's `xstate.*` built-ins), with their params. */
function named(actions: readonly ExecutableActionObject[]): Named[] {
  return actions
    .filter((action) => !action.type.startsWith('xstate.'))
    .map((action) => (action.params === undefined ? { type: action.type } : { type: action.type, params: action.params }));
}

function count(actions: readonly ExecutableActionObject[], type: string): number {
  return actions.filter((action) => action.type === type).length;
}

/** Delayed events scheduled by these actions: `{ event type: delay }`. */
function scheduled(actions: readonly ExecutableActionObject[]): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  for (const action of actions) {
    if (action.type !== 'xstate.raise') continue;
    const params = action.params as { event: { type: string }; delay?: unknown };
    if (params.delay !== undefined) result[params.event.type] = params.delay;
  }
  return result;
}

/** Ids of delayed events cancelled by these actions. */
function cancelled(actions: readonly ExecutableActionObject[]): string[] {
  return actions.filter((action) => action.type === 'xstate.cancel').map((action) => (action.params as { sendId: string }).sendId);
}

/** Timers still pending after these actions ran in order: scheduled and not cancelled since. */
function pending(actions: readonly ExecutableActionObject[]): string[] {
  const timers = new Set<string>();
  for (const action of actions) {
    if (action.type === 'xstate.raise') {
      const params = action.params as { id?: string; delay?: unknown };
      if (params.delay !== undefined && params.id !== undefined) timers.add(params.id);
    } else if (action.type === 'xstate.cancel') {
      timers.delete((action.params as { sendId: string }).sendId);
    }
  }
  return [...timers].sort();
}

function expectUnchanged(before: Snapshot, [after, actions]: [Snapshot, ExecutableActionObject[]]): void {
  expect(after.value).toEqual(before.value);
  expect(after.status).toBe(before.status);
  expect(after.context).toEqual(before.context);
  expect(after.output).toEqual(before.output);
  expect(actions).toEqual([]);
}

const opened = (input: ConnectionInput = INPUT) => start(input)[0];
const disconnecting = () => send(opened(), { type: 'server.close', code: 4000, reason: 'kicked', cause: 'server' })[0];
const closed = () => send(opened(), { type: 'socket.closed', code: 1000, reason: 'bye' })[0];

/** `open` (one state: the heartbeat is the runtime's sweep), the input to start with and the events that lead there. */
const openStates: ReadonlyArray<[string, ConnectionInput, AnyEvent[]]> = [['open', INPUT, []]];

/** Every event the machine can receive, including the delayed ones. */
const everyEvent: readonly AnyEvent[] = [
  { type: 'socket.closed', code: 1000, reason: 'bye' },
  { type: 'socket.error', code: 1009, message: 'frame too big' },
  { type: 'heartbeat.missed' },
  { type: 'send.failed', message: 'EPIPE' },
  { type: 'server.close', code: 4000, reason: 'kicked', cause: 'server' },
  { type: 'server.close', code: 1011, reason: 'handler failed', cause: 'handler-error' },
  { type: 'server.close', code: 1008, reason: 'too fast', cause: 'rate-limit' },
  { type: 'runtime.shutdown', code: 1001, reason: 'going away' },
  { type: AFTER_CLOSE_TIMEOUT },
];

const describeEvent = (event: AnyEvent) => ('cause' in event ? `${event.type} (${event.cause})` : event.type);

describe('connection machine: start', () => {
  it('starts in open with the input copied into the context and nothing recorded yet', () => {
    const [snapshot] = start();
    expect(snapshot.value).toBe('open');
    expect(snapshot.status).toBe('active');
    expect(snapshot.context).toEqual({
      ...INPUT,
      code: undefined,
      reason: '',
      cause: undefined,
    });
  });

  it('schedules no timer and runs no named action while open: the heartbeat is the runtime’s sweep', () => {
    const [, actions] = start();
    expect(named(actions)).toEqual([]);
    expect(scheduled(actions)).toEqual({});
    expect(pending(actions)).toEqual([]);
  });
});

describe('connection machine: heartbeat', () => {
  it('a missed pong disconnects with cause heartbeat, code 1006, and terminates the socket', () => {
    const [snapshot, actions] = send(opened(), { type: 'heartbeat.missed' });
    expect(snapshot.value).toEqual(CLOSING);
    expect(snapshot.status).toBe('active');
    expect(snapshot.context).toMatchObject({ code: 1006, reason: '', cause: 'heartbeat' });
    expect(named(actions)).toEqual([{ type: 'terminateSocket' }, { type: 'markLeaving' }, { type: 'notifySupervisor' }]);
    expect(scheduled(actions)).toEqual({ [AFTER_CLOSE_TIMEOUT]: 5_000 });
  });

  it('ignores the close timeout while open', () => {
    const before = opened();
    expectUnchanged(before, send(before, { type: AFTER_CLOSE_TIMEOUT }));
  });
});

interface EndingCase {
  name: string;
  event: ConnectionEvent;
  code: number;
  reason: string;
  cause: CloseCause;
  /** What the trigger itself does to the socket, before the entry actions of `disconnecting` and `closing`. */
  socketAction: Named[];
}

const endingCases: EndingCase[] = [
  {
    name: 'socket.error',
    event: { type: 'socket.error', code: 1009, message: 'frame too big' },
    code: 1009,
    reason: '',
    cause: 'socket-error',
    // The transport already answered the peer; the socket closes by itself.
    socketAction: [],
  },
  {
    name: 'heartbeat.missed',
    event: { type: 'heartbeat.missed' },
    code: 1006,
    reason: '',
    cause: 'heartbeat',
    socketAction: [{ type: 'terminateSocket' }],
  },
  {
    name: 'send.failed',
    event: { type: 'send.failed', message: 'EPIPE' },
    code: 1006,
    reason: '',
    cause: 'send-failed',
    socketAction: [{ type: 'terminateSocket' }],
  },
  {
    name: 'server.close (server)',
    event: { type: 'server.close', code: 4000, reason: 'kicked', cause: 'server' },
    code: 4000,
    reason: 'kicked',
    cause: 'server',
    socketAction: [{ type: 'closeSocket', params: { code: 4000, reason: 'kicked' } }],
  },
  {
    name: 'server.close (handler-error)',
    event: { type: 'server.close', code: 1011, reason: 'handler failed', cause: 'handler-error' },
    code: 1011,
    reason: 'handler failed',
    cause: 'handler-error',
    socketAction: [{ type: 'closeSocket', params: { code: 1011, reason: 'handler failed' } }],
  },
  {
    name: 'server.close (rate-limit)',
    event: { type: 'server.close', code: 1008, reason: 'too fast', cause: 'rate-limit' },
    code: 1008,
    reason: 'too fast',
    cause: 'rate-limit',
    socketAction: [{ type: 'closeSocket', params: { code: 1008, reason: 'too fast' } }],
  },
  {
    name: 'runtime.shutdown',
    event: { type: 'runtime.shutdown', code: 1001, reason: 'going away' },
    code: 1001,
    reason: 'going away',
    cause: 'shutdown',
    socketAction: [{ type: 'closeSocket', params: { code: 1001, reason: 'going away' } }],
  },
];

describe('connection machine: ending triggers from open', () => {
  describe.each(openStates)('from %s', (_, input, prefix) => {
    /** Replays from the very start, so that every timer ever scheduled is accounted for. */
    const fromStart = (event: ConnectionEvent) => {
      const [begin, startActions] = start(input);
      const [before, prefixActions] = run(begin, prefix);
      const [snapshot, actions] = send(before, event);
      return { snapshot, actions, history: [...startActions, ...prefixActions, ...actions] };
    };

    it.each(endingCases)('$name → disconnecting.closing, recording its code/reason/cause, leaving and notifying once', (c) => {
      const { snapshot, actions, history } = fromStart(c.event);
      expect(snapshot.value).toEqual(CLOSING);
      expect(snapshot.status).toBe('active');
      expect(snapshot.context).toMatchObject({ code: c.code, reason: c.reason, cause: c.cause });
      expect(named(actions)).toEqual([...c.socketAction, { type: 'markLeaving' }, { type: 'notifySupervisor' }]);
      // Only the close timeout is armed.
      expect(scheduled(actions)).toEqual({ [AFTER_CLOSE_TIMEOUT]: 5_000 });
      expect(pending(history)).toEqual([AFTER_CLOSE_TIMEOUT]);
    });

    it('socket.closed → disconnecting.socketGone → closed in one macrostep, leaving and reporting the peer code once, not notifying', () => {
      const { snapshot, actions, history } = fromStart({ type: 'socket.closed', code: 1000, reason: 'bye' });
      const output: ConnectionOutput = { id: 'c1', code: 1000, reason: 'bye', cause: 'client' };
      expect(snapshot.value).toBe('closed');
      expect(snapshot.status).toBe('done');
      expect(snapshot.output).toEqual(output);
      expect(snapshot.context).toMatchObject({ code: 1000, reason: 'bye', cause: 'client' });
      // Nothing is closed or terminated: the socket is gone already. The supervisor is not notified:
      // it cleans up from the connection's done event.
      expect(named(actions)).toEqual([{ type: 'markLeaving' }, { type: 'reportClosed', params: output }]);
      // `closing` is never entered, so the close timeout is never armed.
      expect(scheduled(actions)).toEqual({});
      expect(pending(history)).toEqual([]);
    });

    it('socket.closed passes through disconnecting.socketGone (markLeaving) before closed (reportClosed)', () => {
      const [begin] = start(input);
      const [before] = run(begin, prefix);
      const steps = getMicrosteps(machine, before, { type: 'socket.closed', code: 1000, reason: 'bye' });
      expect(steps.map(([step, stepActions]) => [step.value, step.status, named(stepActions)])).toEqual([
        [{ disconnecting: 'socketGone' }, 'active', [{ type: 'markLeaving' }]],
        ['closed', 'done', [{ type: 'reportClosed', params: { id: 'c1', code: 1000, reason: 'bye', cause: 'client' } }]],
      ]);
    });
  });

  it('records the peer code 1006 of a dropped TCP connection as cause client', () => {
    const [snapshot] = send(opened(), { type: 'socket.closed', code: 1006, reason: '' });
    expect(snapshot.output).toEqual({ id: 'c1', code: 1006, reason: '', cause: 'client' });
  });
});

describe('connection machine: disconnecting.closing', () => {
  it('socket.closed → closed (final), reporting the recorded close once, with the output', () => {
    const [snapshot, actions] = send(disconnecting(), { type: 'socket.closed', code: 1000, reason: 'peer echo' });
    const output: ConnectionOutput = { id: 'c1', code: 4000, reason: 'kicked', cause: 'server' };
    expect(snapshot.value).toBe('closed');
    expect(snapshot.status).toBe('done');
    expect(snapshot.output).toEqual(output);
    expect(snapshot.context).toMatchObject({ code: 4000, reason: 'kicked', cause: 'server' });
    expect(named(actions)).toEqual([{ type: 'reportClosed', params: output }]);
    expect(cancelled(actions)).toEqual([AFTER_CLOSE_TIMEOUT]);
  });

  it('terminates the socket on the close timeout and stays in disconnecting.closing with the context unchanged', () => {
    const before = disconnecting();
    const [snapshot, actions] = send(before, { type: AFTER_CLOSE_TIMEOUT });
    expect(snapshot.value).toEqual(CLOSING);
    expect(snapshot.status).toBe('active');
    expect(snapshot.context).toEqual(before.context);
    expect(named(actions)).toEqual([{ type: 'terminateSocket' }]);
    // A targetless transition: neither `disconnecting` nor `closing` is re-entered, so no second leave/notify and no new timer.
    expect(scheduled(actions)).toEqual({});
    expect(cancelled(actions)).toEqual([]);
  });

  it('reaches closed when the socket closes after the close timeout terminated it', () => {
    const [snapshot, actions] = run(disconnecting(), [{ type: AFTER_CLOSE_TIMEOUT }, { type: 'socket.closed', code: 1006, reason: '' }]);
    expect(snapshot.status).toBe('done');
    expect(snapshot.output).toEqual({ id: 'c1', code: 4000, reason: 'kicked', cause: 'server' });
    expect(named(actions)).toEqual([
      { type: 'terminateSocket' },
      { type: 'reportClosed', params: { id: 'c1', code: 4000, reason: 'kicked', cause: 'server' } },
    ]);
  });

  it.each(
    everyEvent
      .filter((event) => event.type !== 'socket.closed' && event.type !== AFTER_CLOSE_TIMEOUT && event.type !== 'send.failed')
      .map((event) => [describeEvent(event), event] as const),
  )('ignores %s in disconnecting.closing', (_, event) => {
    const before = disconnecting();
    expectUnchanged(before, send(before, event));
  });

  it('terminates the socket on send.failed in disconnecting.closing, recording nothing new', () => {
    const before = disconnecting();
    const [snapshot, actions] = send(before, { type: 'send.failed', message: 'EPIPE' });
    expect(snapshot.value).toEqual(CLOSING);
    expect(snapshot.context).toEqual(before.context);
    expect(named(actions)).toEqual([{ type: 'terminateSocket' }]);
  });
});

describe('connection machine: closed', () => {
  it.each(everyEvent.map((event) => [describeEvent(event), event] as const))('ignores %s once closed (final, status done)', (_, event) => {
    const before = closed();
    expect(before.status).toBe('done');
    expectUnchanged(before, send(before, event));
  });

  it('falls back to code 1006 and cause client in the output if nothing was recorded', () => {
    // Only reachable by hand: every real path records a code and cause first.
    const before = disconnecting();
    const bare = machine.resolveState({
      value: CLOSING,
      context: { ...before.context, code: undefined, reason: '', cause: undefined },
    });
    const [snapshot] = send(bare, { type: 'socket.closed', code: 1000, reason: '' });
    expect(snapshot.output).toEqual({ id: 'c1', code: 1006, reason: '', cause: 'client' });
  });
});

interface Trigger {
  name: string;
  /** Events that bring a fresh connection to where the trigger can fire. */
  prefix: AnyEvent[];
  /** The trigger, as the first (variant 0) or a later (variant 1) ending event. */
  event: (variant: 0 | 1) => AnyEvent;
  /** What the first trigger records. */
  recorded: { code: number; reason: string; cause: CloseCause };
}

const triggers: Trigger[] = [
  {
    name: 'socket.closed',
    prefix: [],
    event: (v) => ({ type: 'socket.closed', code: v ? 1001 : 1000, reason: v ? 'later' : 'bye' }),
    recorded: { code: 1000, reason: 'bye', cause: 'client' },
  },
  {
    name: 'socket.error',
    prefix: [],
    event: (v) => ({ type: 'socket.error', code: v ? 1007 : 1009, message: 'bad frame' }),
    recorded: { code: 1009, reason: '', cause: 'socket-error' },
  },
  {
    name: 'send.failed',
    prefix: [],
    event: () => ({ type: 'send.failed', message: 'EPIPE' }),
    recorded: { code: 1006, reason: '', cause: 'send-failed' },
  },
  {
    name: 'server.close (server)',
    prefix: [],
    event: (v) => ({ type: 'server.close', code: v ? 4001 : 4000, reason: v ? 'later' : 'kicked', cause: 'server' }),
    recorded: { code: 4000, reason: 'kicked', cause: 'server' },
  },
  {
    name: 'server.close (handler-error)',
    prefix: [],
    event: (v) => ({ type: 'server.close', code: 1011, reason: v ? 'later' : 'handler failed', cause: 'handler-error' }),
    recorded: { code: 1011, reason: 'handler failed', cause: 'handler-error' },
  },
  {
    name: 'server.close (rate-limit)',
    prefix: [],
    event: (v) => ({ type: 'server.close', code: 1008, reason: v ? 'later' : 'too fast', cause: 'rate-limit' }),
    recorded: { code: 1008, reason: 'too fast', cause: 'rate-limit' },
  },
  {
    name: 'runtime.shutdown',
    prefix: [],
    event: (v) => ({ type: 'runtime.shutdown', code: 1001, reason: v ? 'later' : 'going away' }),
    recorded: { code: 1001, reason: 'going away', cause: 'shutdown' },
  },
  {
    name: 'heartbeat.missed',
    prefix: [],
    event: () => ({ type: 'heartbeat.missed' }),
    recorded: { code: 1006, reason: '', cause: 'heartbeat' },
  },
];

const pairs = triggers.flatMap((first) => triggers.map((second) => [first, second] as const));

describe('connection machine: two ending triggers, in both orders', () => {
  it.each(pairs.map(([first, second]) => [first.name, second.name, first, second] as const))(
    '%s then %s: the first trigger is recorded, leaving/report happen exactly once, notify once unless the socket closed first',
    (_, __, first, second) => {
      const [begin, startActions] = start();
      const [afterFirst, firstActions] = run(begin, [...first.prefix, first.event(0)]);
      const [afterSecond, secondActions] = send(afterFirst, second.event(1));

      // The second trigger changes nothing recorded and does nothing to the socket.
      expect(afterSecond.context).toMatchObject(first.recorded);
      const secondNamed = named(secondActions);
      const closing = afterFirst.matches(CLOSING);
      // Every first trigger but socket.closed rests in disconnecting.closing; socket.closed goes straight through to closed.
      expect(closing).toBe(first.name !== 'socket.closed');
      if (closing && second.name === 'socket.closed') {
        expect(afterSecond.value).toBe('closed');
        expect(secondNamed).toEqual([{ type: 'reportClosed', params: { id: 'c1', ...first.recorded } }]);
      } else if (closing && second.name === 'send.failed') {
        // A write failing while closing destroys the socket; nothing else changes.
        expect(afterSecond.context).toEqual(afterFirst.context);
        expect(secondNamed).toEqual([{ type: 'terminateSocket' }]);
      } else {
        expectUnchanged(afterFirst, [afterSecond, secondActions]);
      }

      // Finish with the socket closing, unless it is closed already.
      const [end, endActions] =
        afterSecond.status === 'done' ? [afterSecond, []] : send(afterSecond, { type: 'socket.closed', code: 1005, reason: '' });
      expect(end.value).toBe('closed');
      expect(end.status).toBe('done');
      expect(end.output).toEqual({ id: 'c1', ...first.recorded });

      const all = [...startActions, ...firstActions, ...secondActions, ...endActions];
      expect(count(all, 'reportClosed')).toBe(1);
      expect(count(all, 'markLeaving')).toBe(1);
      // When the socket closed first, the supervisor cleans up from the done event instead.
      expect(count(all, 'notifySupervisor')).toBe(first.name === 'socket.closed' ? 0 : 1);
      expect(pending(all)).toEqual([]);
    },
  );
});
