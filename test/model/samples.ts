/**
 * One sample of every event each machine handles, and the inputs the model
 * tests run them with: shared by the model-based tests of each machine and
 * by the interpreter's side-by-side test (test/interpreter/machine.test.ts),
 * so that both walk the same events.
 */
import { createActor, createMachine } from 'xstate';
import type { ClientEvent, ClientInput } from '../../machines/client.machine.js';
import type { ConnectionEvent, ConnectionInput } from '../../machines/connection.machine.js';
import type { SessionEvent, SessionInput } from '../../machines/session.machine.js';
import type { SupervisorEvent, SupervisorInput } from '../../machines/supervisor.machine.js';

export const connectionInput: ConnectionInput = { id: 'c', closeTimeoutMs: 300 };

/** Every event of the connection machine but its delayed one. */
export const connectionEvents: readonly ConnectionEvent[] = [
  { type: 'socket.closed', code: 4100, reason: 'bye' },
  { type: 'socket.error', code: 1009, message: 'too big' },
  { type: 'heartbeat.missed' },
  { type: 'send.failed', message: 'EPIPE' },
  { type: 'server.close', code: 4101, reason: 'done', cause: 'server' },
  { type: 'runtime.shutdown', code: 1001, reason: 'server shutting down' },
];

export const clientInput: ClientInput = {
  backoff: { initialMs: 100, maxMs: 1000 },
  closeTimeoutMs: 300,
  connectTimeoutMs: 700,
  // 1000 and the application's 4100 mean "do not come back"; the rest do.
  reconnectable: (code) => code !== 1000 && code !== 4100,
  random: () => 0.5,
};

/** Every event of the client machine but its delayed ones. */
export const clientEvents: readonly ClientEvent[] = [
  { type: 'server.welcome' },
  { type: 'server.resuming' },
  { type: 'socket.closed', code: 1006, reason: '' },
  { type: 'socket.closed', code: 4100, reason: 'kicked' },
  { type: 'socket.closed', code: 1013, reason: 'retry-after=2' },
  { type: 'client.close', code: 1000, reason: 'bye' },
];

export const sessionInput: SessionInput = { token: 't', windowMs: 1000 };

/** Every event of the session machine but its delayed one. */
export const sessionEvents: readonly SessionEvent[] = [{ type: 'session.resume' }];

/** Room for one session: a second detach is refused. */
export const supervisorInput: SupervisorInput = { maxSessions: 1 };

/** An actor ref for the events that carry one; a test that sends to or stops it gives its own. */
const peer = createActor(createMachine({})).start();
const port = { deliver() {}, left() {} } as never;
const frame = { chunks: [], byteLength: 0 } as never;
const record = { token: 't', previous: 'a', user: 'u', rooms: ['r'], streams: new Map([['room:r', { offset: 3, epoch: 'e' }]]) };

/** Every event of the supervisor machine, about one connection (`a`) and one session (`t`). */
export const supervisorEvents: readonly SupervisorEvent[] = [
  { type: 'connection.register', id: 'a', ref: peer, port, respond: () => {} },
  { type: 'room.join', id: 'a', room: 'r', respond: () => {} },
  { type: 'room.leave', id: 'a', room: 'r', respond: () => {} },
  { type: 'user.bind', id: 'a', user: 'u', respond: () => {} },
  { type: 'connection.leaving', id: 'a' },
  {
    type: 'xstate.done.actor.connection',
    output: { id: 'a', code: 1000, reason: '', cause: 'client' },
    actorId: 'connection',
  } as SupervisorEvent,
  { type: 'xstate.error.actor.connection', error: new Error('boom'), actorId: 'connection' } as SupervisorEvent,
  { type: 'connection.failed', id: 'a' },
  { type: 'broadcast', target: { kind: 'all' }, frame },
  { type: 'broadcast', target: { kind: 'room', room: 'r' }, except: 'a', frame },
  { type: 'runtime.shutdown', code: 1001, reason: 'bye' },
  { type: 'session.detach', record, ref: peer, respond: () => {} },
  { type: 'session.take', token: 't', user: 'u', taken: () => {} },
  // Somebody else presenting the token.
  { type: 'session.take', token: 't', user: 'v', taken: () => {} },
  { type: 'xstate.done.actor.session', output: { token: 't', outcome: 'expired' }, actorId: 'session' } as SupervisorEvent,
  { type: 'xstate.done.actor.session', output: { token: 't', outcome: 'resumed' }, actorId: 'session' } as SupervisorEvent,
  { type: 'xstate.error.actor.session', error: new Error('boom'), actorId: 'session' } as SupervisorEvent,
];
