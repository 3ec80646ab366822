/**
 * Pure tests of the supervisor machine with `initialTransition` / `transition`:
 * the next snapshot and the actions to run are computed, never run.
 *
 * The supervisor's `Directory` is mutated in place by its actions, so every
 * snapshot of one run shares it: each test builds its own initial snapshot.
 */
import { describe, expect, it, vi, type Mock } from 'vitest';
import {
  createActor,
  initialTransition,
  SimulatedClock,
  transition,
  type AnyActorRef,
  type ExecutableActionObject,
  type SnapshotFrom,
} from 'xstate';
import type { ConnectionOutput } from '../../machines/connection.machine.js';
import { SESSION_ACTOR_ID, sessionMachine } from '../../machines/session.machine.js';
import type { SessionRecord } from '../../machines/sessions.js';
import { Directory } from '../../machines/directory.js';
import { supervisorMachine, type SupervisorDirectory, type SupervisorEvent } from '../../machines/supervisor.machine.js';
import type { DeliveryPort, EncodedFrame, Target } from '../../machines/types.js';
import { runEvents } from '../helpers/transitions.js';

type Snapshot = SnapshotFrom<typeof supervisorMachine>;

interface FakeConnection {
  id: string;
  ref: AnyActorRef;
  port: DeliveryPort & { deliver: Mock<(frame: EncodedFrame) => void> };
}

/** A connection as the supervisor sees it: a ref (any object in a pure test) and a delivery port. */
function fake(id: string): FakeConnection {
  return {
    id,
    ref: { id: `ref-${id}` } as unknown as AnyActorRef,
    port: { deliver: vi.fn<(frame: EncodedFrame) => void>(), left: vi.fn<(rooms: readonly string[]) => void>() },
  };
}

function fresh(): Snapshot {
  const [snapshot, actions] = initialTransition(supervisorMachine, {});
  expect(actions).toEqual([]);
  return snapshot;
}

function send(snapshot: Snapshot, event: SupervisorEvent): [Snapshot, ExecutableActionObject[]] {
  return transition(supervisorMachine, snapshot, event);
}

function run(snapshot: Snapshot, events: readonly SupervisorEvent[]): [Snapshot, ExecutableActionObject[]] {
  return runEvents(supervisorMachine, snapshot, events);
}

/** Actions as `{ type, params }`, the shape the machine names them with. */
function summary(actions: readonly ExecutableActionObject[]) {
  return actions.map((action) => ({ type: action.type, params: action.params }));
}

const accepted = [{ type: 'respond', params: { ok: true } }];
/** The action that tells a connection which rooms it was taken out of. */
const left = (id: string, rooms: string[]) => [{ type: 'reportLeft', params: expect.objectContaining({ id, rooms }) }];
const refused = [{ type: 'respond', params: { ok: false } }];

const register = (c: FakeConnection, user?: string): Extract<SupervisorEvent, { type: 'connection.register' }> => ({
  type: 'connection.register',
  id: c.id,
  ref: c.ref,
  port: c.port,
  ...(user !== undefined && { user }),
});
const join = (id: string, room: string): SupervisorEvent => ({ type: 'room.join', id, room });
const leave = (id: string, room: string): SupervisorEvent => ({ type: 'room.leave', id, room });
const bind = (id: string, user: string | undefined): SupervisorEvent => ({ type: 'user.bind', id, user });
const leaving = (id: string): SupervisorEvent => ({ type: 'connection.leaving', id });
// Every connection actor has the actor id 'connection'; the output and `connection.failed` name the connection.
const done = (id: string, output: Partial<ConnectionOutput> = {}): SupervisorEvent => ({
  type: 'xstate.done.actor.connection',
  actorId: 'connection',
  output: { id, code: 1000, reason: '', cause: 'client', ...output },
});
const failed = (id: string): SupervisorEvent => ({ type: 'connection.failed', id });
const actorError: SupervisorEvent = { type: 'xstate.error.actor.connection', actorId: 'connection', error: new Error('boom') };
const shutdown: SupervisorEvent = { type: 'runtime.shutdown', code: 1001, reason: 'going away' };
const frame: EncodedFrame = { chunks: [Buffer.from([0x81, 5, 104, 101, 108, 108, 111])], byteLength: 7 };

function directoryOf(snapshot: Snapshot): SupervisorDirectory {
  return snapshot.context.directory;
}

/** Rooms that name `id`, from the directory's room index. */
function roomsNaming(snapshot: Snapshot, id: string): string[] {
  return [...directoryOf(snapshot).rooms].filter(([, members]) => [...members].some((e) => e.id === id)).map(([room]) => room);
}

function usersNaming(snapshot: Snapshot, id: string): string[] {
  return [...directoryOf(snapshot).users].filter(([, members]) => [...members].some((e) => e.id === id)).map(([user]) => user);
}

function expectUnchanged(before: Snapshot, view: ReturnType<Directory['toJSON']>, [after, actions]: [Snapshot, ExecutableActionObject[]]) {
  expect(after.value).toEqual(before.value);
  expect(after.status).toBe(before.status);
  expect(directoryOf(after).toJSON()).toEqual(view);
  expect(actions).toEqual([]);
}

const a = fake('a');
const b = fake('b');

describe('supervisor machine: start', () => {
  it('starts running and active with an empty directory', () => {
    const snapshot = fresh();
    expect(snapshot.value).toBe('running');
    expect(snapshot.status).toBe('active');
    expect(directoryOf(snapshot).toJSON()).toEqual({ connections: {}, rooms: {}, users: {} });
  });

  it('starts from a directory given as input', () => {
    const directory: SupervisorDirectory = new Directory();
    const [snapshot] = initialTransition(supervisorMachine, { directory });
    expect(directoryOf(snapshot)).toBe(directory);
  });

  it('gives every initial snapshot its own directory', () => {
    expect(directoryOf(fresh())).not.toBe(directoryOf(fresh()));
  });
});

describe('supervisor machine: running — connection.register', () => {
  it('registers a new connection and accepts it', () => {
    const [snapshot, actions] = send(fresh(), register(a));
    expect(snapshot.value).toBe('running');
    expect(summary(actions)).toEqual(accepted);
    const entry = directoryOf(snapshot).connections.get('a');
    expect(entry).toMatchObject({ id: 'a', ref: a.ref, port: a.port, user: undefined, leaving: false });
    expect([...entry!.rooms]).toEqual([]);
  });

  it('refuses a duplicate id and keeps the first registration', () => {
    const other = { ...fake('a'), ref: { id: 'other' } as unknown as AnyActorRef };
    const [snapshot, actions] = run(fresh(), [register(a), register(other, 'mallory')]);
    expect(summary(actions)).toEqual([...accepted, ...refused]);
    expect(directoryOf(snapshot).connections.get('a')!.ref).toBe(a.ref);
    expect(directoryOf(snapshot).toJSON()).toEqual({
      connections: { a: { user: undefined, rooms: [], leaving: false } },
      rooms: {},
      users: {},
    });
  });

  it('refuses to re-register an id that is still leaving (until its actor is done)', () => {
    const [snapshot, actions] = run(fresh(), [register(a), leaving('a'), register(a)]);
    expect(summary(actions)).toEqual([...accepted, ...refused]);
    expect(directoryOf(snapshot).connections.get('a')!.leaving).toBe(true);
  });

  it('accepts the same id again once the previous actor is done', () => {
    const [snapshot, actions] = run(fresh(), [register(a), leaving('a'), done('a'), register(a)]);
    expect(summary(actions)).toEqual([...accepted, ...accepted]);
    expect(directoryOf(snapshot).isActive('a')).toBe(true);
  });

  it('registers with a user, binding it at once', () => {
    const [snapshot, actions] = send(fresh(), register(a, 'alice'));
    expect(summary(actions)).toEqual(accepted);
    expect(directoryOf(snapshot).connections.get('a')!.user).toBe('alice');
    expect(usersNaming(snapshot, 'a')).toEqual(['alice']);
  });

  it('answers through the caller’s respond callback when the returned action is executed', () => {
    const respond = vi.fn();
    const [, actions] = send(fresh(), { ...register(a), respond });
    expect(actions).toHaveLength(1);
    const [action] = actions;
    expect(respond).not.toHaveBeenCalled(); // transition() is pure
    action!.exec!(action!.info, action!.params);
    expect(respond).toHaveBeenCalledExactlyOnceWith(true);
  });
});

describe('supervisor machine: running — room.join', () => {
  it('adds an active connection to the room and accepts', () => {
    const [snapshot, actions] = run(fresh(), [register(a), join('a', 'lobby')]);
    expect(summary(actions)).toEqual([...accepted, ...accepted]);
    expect(roomsNaming(snapshot, 'a')).toEqual(['lobby']);
    expect([...directoryOf(snapshot).connections.get('a')!.rooms]).toEqual(['lobby']);
  });

  it('accepts joining a room the connection is already in, keeping one membership', () => {
    const [snapshot, actions] = run(fresh(), [register(a), join('a', 'lobby'), join('a', 'lobby')]);
    expect(summary(actions)).toEqual([...accepted, ...accepted, ...accepted]);
    expect(directoryOf(snapshot).toJSON().rooms).toEqual({ lobby: ['a'] });
  });

  it('refuses a join from a leaving connection and does not make it a member', () => {
    const [snapshot, actions] = run(fresh(), [register(a), leaving('a'), join('a', 'lobby')]);
    expect(summary(actions)).toEqual([...accepted, ...refused]);
    expect(roomsNaming(snapshot, 'a')).toEqual([]);
    expect(directoryOf(snapshot).rooms.has('lobby')).toBe(false);
  });

  it('refuses a join from an unknown connection and creates no room', () => {
    const [snapshot, actions] = send(fresh(), join('ghost', 'lobby'));
    expect(summary(actions)).toEqual(refused);
    expect(directoryOf(snapshot).rooms.size).toBe(0);
  });
});

describe('supervisor machine: room.leave', () => {
  it('removes a member and accepts; the emptied room is forgotten', () => {
    const [snapshot, actions] = run(fresh(), [register(a), join('a', 'lobby'), leave('a', 'lobby')]);
    expect(summary(actions).at(-1)).toEqual(accepted[0]);
    expect(roomsNaming(snapshot, 'a')).toEqual([]);
    expect(directoryOf(snapshot).rooms.has('lobby')).toBe(false);
  });

  it('keeps the other members of the room', () => {
    const [snapshot] = run(fresh(), [register(a), register(b), join('a', 'lobby'), join('b', 'lobby'), leave('a', 'lobby')]);
    expect(directoryOf(snapshot).toJSON().rooms).toEqual({ lobby: ['b'] });
  });

  it('refuses when the connection is not a member of the room', () => {
    const [snapshot, actions] = run(fresh(), [register(a), join('a', 'lobby'), leave('a', 'kitchen')]);
    expect(summary(actions).at(-1)).toEqual(refused[0]);
    expect(roomsNaming(snapshot, 'a')).toEqual(['lobby']);
  });

  it('refuses for an unknown connection and for a leaving one', () => {
    const [, unknown] = send(fresh(), leave('ghost', 'lobby'));
    expect(summary(unknown)).toEqual(refused);
    const [, actions] = run(fresh(), [register(a), join('a', 'lobby'), leaving('a'), leave('a', 'lobby')]);
    expect(summary(actions).at(-1)).toEqual(refused[0]);
  });
});

describe('supervisor machine: running — user.bind', () => {
  it('binds a user to an active connection and accepts', () => {
    const [snapshot, actions] = run(fresh(), [register(a), bind('a', 'alice')]);
    expect(summary(actions)).toEqual([...accepted, ...accepted]);
    expect(directoryOf(snapshot).toJSON().users).toEqual({ alice: ['a'] });
    expect(directoryOf(snapshot).connections.get('a')!.user).toBe('alice');
  });

  it('moves the mapping on a rebind, forgetting the emptied old user', () => {
    const [snapshot, actions] = run(fresh(), [register(a, 'alice'), bind('a', 'bob')]);
    expect(summary(actions)).toEqual([...accepted, ...accepted]);
    expect(directoryOf(snapshot).toJSON().users).toEqual({ bob: ['a'] });
  });

  it('unbinds with undefined', () => {
    const [snapshot, actions] = run(fresh(), [register(a, 'alice'), bind('a', undefined)]);
    expect(summary(actions)).toEqual([...accepted, ...accepted]);
    expect(directoryOf(snapshot).users.size).toBe(0);
    expect(directoryOf(snapshot).connections.get('a')!.user).toBeUndefined();
  });

  it('keeps several connections of one user', () => {
    const [snapshot] = run(fresh(), [register(a, 'alice'), register(b), bind('b', 'alice')]);
    expect(directoryOf(snapshot).toJSON().users).toEqual({ alice: ['a', 'b'] });
  });

  it('refuses a bind from a leaving connection and binds nothing', () => {
    const [snapshot, actions] = run(fresh(), [register(a), leaving('a'), bind('a', 'alice')]);
    expect(summary(actions)).toEqual([...accepted, ...refused]);
    expect(directoryOf(snapshot).users.size).toBe(0);
  });

  it('refuses a bind from an unknown connection', () => {
    const [snapshot, actions] = send(fresh(), bind('ghost', 'alice'));
    expect(summary(actions)).toEqual(refused);
    expect(directoryOf(snapshot).users.size).toBe(0);
  });
});

describe('supervisor machine: connection.leaving', () => {
  it('takes the connection out of every room and user, keeping it registered as leaving', () => {
    const [before] = run(fresh(), [register(a, 'alice'), register(b, 'bob'), join('a', 'lobby'), join('a', 'kitchen'), join('b', 'lobby')]);
    const [snapshot, actions] = send(before, leaving('a'));
    expect(snapshot.value).toBe('running');
    expect(summary(actions)).toEqual(left('a', ['lobby', 'kitchen']));
    expect(roomsNaming(snapshot, 'a')).toEqual([]);
    expect(usersNaming(snapshot, 'a')).toEqual([]);
    const view = directoryOf(snapshot).toJSON();
    expect(view.rooms).toEqual({ lobby: ['b'] });
    expect(view.users).toEqual({ bob: ['b'] });
    expect(view.connections.a).toMatchObject({ rooms: [], leaving: true });
    expect(directoryOf(snapshot).isActive('a')).toBe(false);
  });

  it('is idempotent, and a no-op for an unknown connection', () => {
    const [before] = run(fresh(), [register(a), join('a', 'lobby'), leaving('a')]);
    const view = directoryOf(before).toJSON();
    expectUnchanged(before, view, send(before, leaving('a')));
    expectUnchanged(before, view, send(before, leaving('ghost')));
  });
});

describe('supervisor machine: connection actors ending', () => {
  it('forgets a connection entirely on xstate.done.actor.connection, by the output id', () => {
    const [before] = run(fresh(), [register(a, 'alice'), register(b), join('a', 'lobby'), leaving('a')]);
    const [snapshot, actions] = send(before, done('a', { code: 4000, reason: 'kicked', cause: 'server' }));
    expect(snapshot.value).toBe('running');
    expect(snapshot.status).toBe('active');
    expect(actions).toEqual([]);
    expect(directoryOf(snapshot).toJSON()).toEqual({
      connections: { b: { user: undefined, rooms: [], leaving: false } },
      rooms: {},
      users: {},
    });
  });

  it('forgets a connection that is done without a connection.leaving first', () => {
    const [snapshot] = run(fresh(), [register(a, 'alice'), join('a', 'lobby'), done('a')]);
    expect(directoryOf(snapshot).toJSON()).toEqual({ connections: {}, rooms: {}, users: {} });
  });

  it('handles a connection actor error without failing, and changes nothing by it', () => {
    const [before] = run(fresh(), [register(a), register(b)]);
    const view = directoryOf(before).toJSON();
    const [snapshot, actions] = send(before, actorError);
    expect(snapshot.status).toBe('active');
    expect(actions).toEqual([]);
    expect(directoryOf(snapshot).toJSON()).toEqual(view);
  });

  it('forgets a failed connection actor on connection.failed and stays active', () => {
    const [before] = run(fresh(), [register(a, 'alice'), register(b), join('a', 'lobby'), join('b', 'lobby')]);
    const [snapshot, actions] = send(before, failed('a'));
    expect(snapshot.value).toBe('running');
    expect(snapshot.status).toBe('active');
    expect(snapshot.error).toBeUndefined();
    expect(summary(actions)).toEqual(left('a', ['lobby']));
    expect(directoryOf(snapshot).connections.has('a')).toBe(false);
    expect(directoryOf(snapshot).toJSON().rooms).toEqual({ lobby: ['b'] });
    expect(directoryOf(snapshot).users.size).toBe(0);
    // It keeps working afterwards.
    const [, next] = send(snapshot, join('b', 'kitchen'));
    expect(summary(next)).toEqual(accepted);
  });

  it('ignores done/error events for unknown actors', () => {
    const [before] = run(fresh(), [register(a)]);
    const view = directoryOf(before).toJSON();
    expectUnchanged(before, view, send(before, done('ghost')));
    expectUnchanged(before, view, send(before, failed('ghost')));
  });
});

describe('supervisor machine: broadcast', () => {
  const targets: Array<[string, Target, string | undefined]> = [
    ['a room', { kind: 'room', room: 'lobby' }, undefined],
    ['a user', { kind: 'user', user: 'alice' }, 'a'],
    ['everyone', { kind: 'all' }, 'b'],
  ];

  it.each(targets)('to %s returns one deliver action with { target, except, frame } and changes nothing', (_, target, except) => {
    const [before] = run(fresh(), [register(a, 'alice'), register(b), join('a', 'lobby')]);
    const view = directoryOf(before).toJSON();
    const [snapshot, actions] = send(before, { type: 'broadcast', target, ...(except !== undefined && { except }), frame });
    expect(summary(actions)).toEqual([{ type: 'deliver', params: { target, except, frame } }]);
    expect(snapshot.value).toBe('running');
    expect(directoryOf(snapshot).toJSON()).toEqual(view);
    // Pure: nothing was written to any port.
    expect(a.port.deliver).not.toHaveBeenCalled();
    expect(b.port.deliver).not.toHaveBeenCalled();
  });
});

describe('supervisor machine: shutdown', () => {
  it('goes straight to stopped (done) when no connection is registered', () => {
    const [snapshot, actions] = send(fresh(), shutdown);
    expect(snapshot.value).toBe('stopped');
    expect(snapshot.status).toBe('done');
    expect(actions).toEqual([]);
  });

  it('moves to stopping and sends runtime.shutdown with the code and reason to every registered connection', () => {
    const c = fake('c');
    const [before] = run(fresh(), [register(a), register(b), register(c), leaving('c')]);
    const [snapshot, actions] = send(before, shutdown);
    expect(snapshot.value).toBe('stopping');
    expect(snapshot.status).toBe('active');
    const event = { type: 'runtime.shutdown', code: 1001, reason: 'going away' };
    // A connection that is already leaving is not told again.
    expect(actions.map((action) => action.type)).toEqual(['xstate.sendTo', 'xstate.sendTo']);
    expect(actions.map((action) => action.params)).toEqual([
      expect.objectContaining({ to: a.ref, event }),
      expect.objectContaining({ to: b.ref, event }),
    ]);
    // The registry is untouched until the connections are done.
    expect(directoryOf(snapshot).connections.size).toBe(3);
  });

  function stopping(): Snapshot {
    const [snapshot] = run(fresh(), [register(a, 'alice'), register(b), join('a', 'lobby'), join('b', 'lobby'), shutdown]);
    expect(snapshot.value).toBe('stopping');
    return snapshot;
  }

  it.each<[string, SupervisorEvent]>([
    ['connection.register', register(fake('late'))],
    ['room.join', join('a', 'kitchen')],
    ['user.bind', bind('b', 'bob')],
  ])('refuses %s in stopping and changes nothing', (_, event) => {
    const before = stopping();
    const view = directoryOf(before).toJSON();
    const [snapshot, actions] = send(before, event);
    expect(snapshot.value).toBe('stopping');
    expect(summary(actions)).toEqual(refused);
    expect(directoryOf(snapshot).toJSON()).toEqual(view);
  });

  it('still handles room.leave, connection.leaving and broadcast in stopping', () => {
    const [snapshot, actions] = run(stopping(), [leave('b', 'lobby'), leaving('a'), { type: 'broadcast', target: { kind: 'all' }, frame }]);
    expect(snapshot.value).toBe('stopping');
    expect(summary(actions)).toEqual([
      ...accepted,
      ...left('a', ['lobby']),
      { type: 'deliver', params: { target: { kind: 'all' }, except: undefined, frame, delivered: undefined } },
    ]);
    expect(directoryOf(snapshot).toJSON().rooms).toEqual({});
    expect(directoryOf(snapshot).toJSON().users).toEqual({});
  });

  it('ignores a second runtime.shutdown in stopping (no second round of sends)', () => {
    const before = stopping();
    expectUnchanged(before, directoryOf(before).toJSON(), send(before, shutdown));
  });

  it('stays stopping while a connection remains, and stops (done) when the last actor is done', () => {
    const [middle, first] = send(stopping(), done('a'));
    expect(middle.value).toBe('stopping');
    expect(summary(first)).toEqual(left('a', ['lobby']));
    const [snapshot, last] = send(middle, done('b'));
    expect(snapshot.value).toBe('stopped');
    expect(snapshot.status).toBe('done');
    expect(summary(last)).toEqual(left('b', ['lobby']));
    expect(directoryOf(snapshot).connections.size).toBe(0);
  });

  it('stops when the last connection actor fails instead of finishing', () => {
    const [snapshot] = run(stopping(), [done('a'), failed('b')]);
    expect(snapshot.value).toBe('stopped');
    expect(snapshot.status).toBe('done');
  });

  const everyEvent: Array<[string, SupervisorEvent]> = [
    ['connection.register', register(fake('late'))],
    ['room.join', join('a', 'lobby')],
    ['room.leave', leave('a', 'lobby')],
    ['user.bind', bind('a', 'alice')],
    ['connection.leaving', leaving('a')],
    ['broadcast', { type: 'broadcast', target: { kind: 'all' }, frame }],
    ['runtime.shutdown', shutdown],
    ['xstate.done.actor.connection (a)', done('a')],
    ['connection.failed (a)', failed('a')],
  ];

  it.each(everyEvent)('%s once stopped (final) changes no state and accepts or sends nothing', (_, event) => {
    const [before] = send(fresh(), shutdown);
    const view = directoryOf(before).toJSON();
    const [snapshot, actions] = send(before, event);
    expect(snapshot.value).toBe('stopped');
    expect(snapshot.status).toBe('done');
    expect(directoryOf(snapshot).toJSON()).toEqual(view);
    expect(summary(actions)).not.toContainEqual(accepted[0]);
    expect(actions.map((action) => action.type)).not.toContain('xstate.sendTo');
  });

  it.each(everyEvent.filter(([name]) => name !== 'room.leave' && name !== 'broadcast'))(
    '%s once stopped returns no action at all',
    (_, event) => {
      const [before] = send(fresh(), shutdown);
      expectUnchanged(before, directoryOf(before).toJSON(), send(before, event));
    },
  );

  it('still computes the root-level room.leave and broadcast handlers on the final snapshot (XState’s transition() does not check status)', () => {
    // A real actor drops every event once it is done, so this never runs in the
    // runtime; but `transition()` on a `stopped` snapshot is not a no-op.
    const [before] = send(fresh(), shutdown);
    const [, leaveActions] = send(before, leave('a', 'lobby'));
    expect(summary(leaveActions)).toEqual(refused);
    const [, broadcastActions] = send(before, { type: 'broadcast', target: { kind: 'all' }, frame });
    expect(summary(broadcastActions)).toEqual([{ type: 'deliver', params: { target: { kind: 'all' }, except: undefined, frame } }]);
  });
});

/** All orderings of `items`. */
function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  return items.flatMap((item, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]));
}

describe('supervisor machine: the join race (no ghost member)', () => {
  const raceEvents = { join: join('a', 'lobby'), leaving: leaving('a'), done: done('a') } as const;
  type Name = keyof typeof raceEvents;
  const orders = permutations<Name>(['join', 'leaving', 'done']);

  it('covers all six orders', () => {
    expect(orders).toHaveLength(6);
  });

  it.each(orders.map((order) => [order.join(' → '), order] as const))('%s: no room names the connection afterwards', (_, order) => {
    // `b` keeps the room alive, so a ghost `a` could not hide behind the room being deleted.
    const [before] = run(fresh(), [register(a), register(b), join('b', 'lobby'), join('a', 'kitchen')]);
    let snapshot = before;
    let joinAnswer: unknown;
    for (const name of order) {
      const [next, actions] = send(snapshot, raceEvents[name]);
      snapshot = next;
      if (name === 'join') joinAnswer = summary(actions);
    }
    // The join takes effect only while the connection is active: before both leaving and done.
    const joinedFirst = order.indexOf('join') === 0;
    expect(joinAnswer).toEqual(joinedFirst ? accepted : refused);

    expect(roomsNaming(snapshot, 'a')).toEqual([]);
    expect(directoryOf(snapshot).toJSON().rooms).toEqual({ lobby: ['b'] });
    // Once its actor is done the connection is forgotten, whatever the order.
    expect(directoryOf(snapshot).connections.has('a')).toBe(false);
  });

  it.each(orders.map((order) => [order.join(' → '), order] as const))(
    '%s (with user.bind instead of room.join): no user names the connection afterwards',
    (_, order) => {
      const events = { join: bind('a', 'alice'), leaving: leaving('a'), done: done('a') };
      const [before] = run(fresh(), [register(a), register(b, 'alice')]);
      const [snapshot] = run(
        before,
        order.map((name) => events[name]),
      );
      expect(usersNaming(snapshot, 'a')).toEqual([]);
      expect(directoryOf(snapshot).toJSON().users).toEqual({ alice: ['b'] });
    },
  );
});

describe('supervisor machine: sessions of dropped connections', () => {
  const record = (token: string, user: string | undefined) => ({
    token,
    previous: `conn-of-${user ?? 'nobody'}`,
    user,
    rooms: ['lobby'],
    streams: new Map([['room:lobby', { offset: 4, epoch: 'e1' }]]),
  });

  /** A running supervisor with room for two sessions, on simulated time; sessions are real session actors. */
  function supervisorWithSessions() {
    const clock = new SimulatedClock();
    const expired: string[] = [];
    const supervisor = createActor(
      supervisorMachine.provide({ actions: { reportExpired: (_, { record }) => void expired.push(record.token) } }),
      { input: { maxSessions: 2 }, clock },
    ).start();
    const detach = (token: string, user: string | undefined): boolean => {
      const ref = createActor(sessionMachine, { parent: supervisor, id: SESSION_ACTOR_ID, input: { token, windowMs: 1000 } });
      let kept = false;
      supervisor.send({ type: 'session.detach', record: record(token, user), ref, respond: (ok) => (kept = ok) });
      if (kept) ref.start();
      return kept;
    };
    const take = (token: string, user: string | undefined) => {
      let got: SessionRecord | undefined;
      supervisor.send({ type: 'session.take', token, user, taken: (r) => (got = r) });
      return got;
    };
    const sessions = () => supervisor.getSnapshot().context.sessions;
    return { supervisor, clock, expired, detach, take, sessions };
  }

  it('hands a session to its own user once; a stranger neither gets it nor uses it up', () => {
    const { detach, take, sessions } = supervisorWithSessions();
    expect(detach('t1', 'ada')).toBe(true);
    expect(sessions().interested('room:lobby')).toBe(true);
    expect(take('t1', 'eve')).toBeUndefined();
    expect(take('t1', undefined)).toBeUndefined();
    expect(take('t1', 'ada')).toMatchObject({ token: 't1', previous: 'conn-of-ada', rooms: ['lobby'] });
    expect(take('t1', 'ada')).toBeUndefined();
    expect(sessions().size).toBe(0);
    expect(sessions().interested('room:lobby')).toBe(false);
  });

  it('refuses a session past maxSessions, and never shows a token in its plain-data view', () => {
    const { detach, sessions } = supervisorWithSessions();
    expect([detach('secret-1', 'ada'), detach('secret-2', 'bob'), detach('secret-3', 'cy')]).toEqual([true, true, false]);
    expect(sessions().toJSON().sessions).toHaveLength(2);
    expect(JSON.stringify(sessions().toJSON())).not.toContain('secret');
    expect(sessions().toJSON().interest).toEqual({ 'room:lobby': 2 });
  });

  it('forgets a session whose window passed, and reports it expired once; a take after that finds nothing', () => {
    const { clock, expired, detach, take, sessions } = supervisorWithSessions();
    detach('t1', 'ada');
    detach('t2', 'bob');
    expect(take('t2', 'bob')).toBeDefined();
    clock.increment(999);
    expect(sessions().size).toBe(1);
    clock.increment(1);
    expect(expired).toEqual(['t1']);
    expect(sessions().size).toBe(0);
    expect(take('t1', 'ada')).toBeUndefined();
  });

  it('stops every session on shutdown and takes no new one', () => {
    const { supervisor, expired, detach, take, sessions, clock } = supervisorWithSessions();
    detach('t1', 'ada');
    const session = sessions().get('t1')!.ref;
    supervisor.send({ type: 'runtime.shutdown', code: 1001, reason: 'bye' });
    expect(supervisor.getSnapshot().value).toBe('stopped');
    expect(sessions().size).toBe(0);
    expect(session.getSnapshot().status).toBe('stopped');
    expect(detach('t2', 'bob')).toBe(false);
    expect(take('t1', 'ada')).toBeUndefined();
    clock.increment(5000);
    expect(expired).toEqual([]);
  });
});
