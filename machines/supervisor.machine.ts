import { assign, enqueueActions, setup } from 'xstate';
import type { AnyActorRef, DoneActorEvent, ErrorActorEvent } from 'xstate';
import { CONNECTION_ACTOR_ID, type ConnectionEvent, type ConnectionLeavingEvent, type ConnectionOutput } from './connection.machine.js';
import { Directory } from './directory.js';
import { SESSION_ACTOR_ID, type SessionOutput } from './session.machine.js';
import { SessionRegistry, type SessionRecord } from './sessions.js';
import type { DeliveryPort, EncodedFrame, Respond, Target } from './types.js';

export type SupervisorDirectory = Directory<DeliveryPort, AnyActorRef>;
export type SupervisorSessions = SessionRegistry<AnyActorRef>;

export interface SupervisorContext {
  readonly directory: SupervisorDirectory;
  /** Sessions of dropped `berth.v1` connections, waiting for their clients. */
  readonly sessions: SupervisorSessions;
  /** At most this many sessions are kept at once. */
  readonly maxSessions: number;
}

export interface SupervisorInput {
  /** Lets a test start from a prepared directory; the runtime always starts empty. */
  readonly directory?: SupervisorDirectory;
  /** [default 0: none kept] */
  readonly maxSessions?: number;
}

/** Every event the supervisor accepts. It handles them one at a time, in arrival order. */
export type SupervisorEvent =
  | {
      type: 'connection.register';
      id: string;
      ref: AnyActorRef;
      port: DeliveryPort;
      user?: string;
      respond?: Respond;
    }
  | { type: 'room.join'; id: string; room: string; respond?: Respond }
  | { type: 'room.leave'; id: string; room: string; respond?: Respond }
  | { type: 'user.bind'; id: string; user: string | undefined; respond?: Respond }
  | ConnectionLeavingEvent
  /** `delivered` learns how many local recipients there were, and which of them take an envelope instead of `frame`. */
  | { type: 'broadcast'; target: Target; except?: string; frame: EncodedFrame; delivered?: Delivered; envelopedOnly?: boolean }
  | { type: 'runtime.shutdown'; code: number; reason: string }
  /**
   * A dropped connection's session, with its actor (created, not started: `respond(true)` means the
   * supervisor kept it and the caller starts it; false, that too many are kept or the runtime is stopping).
   */
  | { type: 'session.detach'; record: SessionRecord; ref: AnyActorRef; respond?: Respond }
  /** A client asks for its session back: `taken` gets it, once, if it is kept and is `user`'s; else undefined. */
  | { type: 'session.take'; token: string; user: string | undefined; taken: (record: SessionRecord | undefined) => void }
  /** A connection actor failed (reported by the runtime, which saw which one). */
  | { type: 'connection.failed'; id: string }
  | DoneActorEvent<ConnectionOutput, typeof CONNECTION_ACTOR_ID>
  | ErrorActorEvent<unknown, typeof CONNECTION_ACTOR_ID>
  | DoneActorEvent<SessionOutput, typeof SESSION_ACTOR_ID>
  | ErrorActorEvent<unknown, typeof SESSION_ACTOR_ID>;

type Event<T extends SupervisorEvent['type']> = Extract<SupervisorEvent, { type: T }>;

/** What the `deliver` action is given. */
export interface Deliver {
  readonly target: Target;
  readonly except: string | undefined;
  readonly frame: EncodedFrame;
  readonly delivered: Delivered | undefined;
  /** The recipients without an envelope had it already (a durable stream's message published here): only those with one are found. */
  readonly envelopedOnly?: boolean;
}

/** Told of a broadcast's recipients: how many, and those that take an envelope (`DeliveryPort.enveloped`), which were not given the raw frame. */
export type Delivered = (recipients: number, enveloped: readonly DeliveryPort[]) => void;

const refuse = { type: 'respond', params: { ok: false } } as const;
const accept = { type: 'respond', params: { ok: true } } as const;

/**
 * The supervisor: the connection registry, rooms and users.
 *
 * Because it processes one message at a time, a `connection.leaving` is
 * handled before any later join for that connection, and a join for a
 * connection that is leaving or gone is refused — so no connection is left in
 * a room after it began to disconnect.
 */
export const supervisorMachine = setup({
  types: {} as {
    context: SupervisorContext;
    events: SupervisorEvent;
    input: SupervisorInput | undefined;
  },
  actions: {
    /** Answers the caller of a request event. */
    respond: ({ event }, params: { ok: boolean }) => {
      if ('respond' in event) event.respond?.(params.ok);
    },
    /** Writes a broadcast into every recipient's outbox and answers with the count (implemented by the runtime). */
    deliver: (_, _params: Deliver) => {},
    /** A session's window passed with nobody claiming it (implemented by the runtime, which counts it). */
    reportExpired: (_, _params: { record: SessionRecord }) => {},
    /** Tells a connection, through its port, which rooms it was taken out of; the port is in the params, so it is reached even once the entry is forgotten. */
    reportLeft: (_, { port, rooms }: { id: string; port: DeliveryPort; rooms: readonly string[] }) => port.left(rooms),
    /** Reports the rooms a connection is about to be taken out of, if it is in any (before `markLeaving` or `forget`). */
    reportRoomsLeft: enqueueActions(({ context, event, enqueue }) => {
      const id =
        event.type === `xstate.done.actor.${CONNECTION_ACTOR_ID}`
          ? (event as DoneActorEvent<ConnectionOutput>).output.id
          : (event as { id: string }).id;
      const entry = context.directory.connections.get(id);
      // Typed as never: `setup` does not know its own action names while they are being declared.
      if (entry !== undefined && !entry.leaving && entry.rooms.size > 0)
        enqueue({ type: 'reportLeft', params: { id, port: entry.port, rooms: [...entry.rooms] } } as never);
    }),
    register: assign(({ context, event }) => {
      const { id, ref, port, user } = event as Event<'connection.register'>;
      context.directory.register(id, ref, port, user);
      return {};
    }),
    join: assign(({ context, event }) => {
      const { id, room } = event as Event<'room.join'>;
      context.directory.join(id, room);
      return {};
    }),
    leave: assign(({ context, event }) => {
      const { id, room } = event as Event<'room.leave'>;
      context.directory.leave(id, room);
      return {};
    }),
    bind: assign(({ context, event }) => {
      const { id, user } = event as Event<'user.bind'>;
      context.directory.bind(id, user);
      return {};
    }),
    markLeaving: assign(({ context, event }) => {
      context.directory.markLeaving((event as Event<'connection.leaving'>).id);
      return {};
    }),
    forget: assign(({ context }, params: { id: string }) => {
      context.directory.remove(params.id);
      return {};
    }),
    keepSession: assign(({ context, event }) => {
      const { record, ref } = event as Event<'session.detach'>;
      context.sessions.keep(record, ref);
      return {};
    }),
    /** Hands a session to its client and tells its actor; the registry forgets it at once, so a second take finds nothing. */
    takeSession: enqueueActions(({ context, event, enqueue }) => {
      const { token, taken } = event as Event<'session.take'>;
      const kept = context.sessions.get(token)!;
      context.sessions.forget(token);
      enqueue.sendTo(kept.ref, { type: 'session.resume' });
      taken(kept.record);
    }),
    notTaken: ({ event }) => (event as Event<'session.take'>).taken(undefined),
    /** A session actor ended: if it expired unclaimed, forget it (a resumed one was forgotten when it was taken). */
    sessionEnded: enqueueActions(({ context, event, enqueue }) => {
      const { token, outcome } = (event as DoneActorEvent<SessionOutput>).output;
      const kept = context.sessions.get(token);
      if (outcome !== 'expired' || kept === undefined) return;
      context.sessions.forget(token);
      enqueue({ type: 'reportExpired', params: { record: kept.record } } as never);
    }),
    stopSessions: enqueueActions(({ context, enqueue }) => {
      for (const ref of context.sessions.refs()) enqueue.stopChild(ref);
      context.sessions.clear();
    }),
    shutdownConnections: enqueueActions(({ context, event, enqueue }) => {
      const { code, reason } = event as Event<'runtime.shutdown'>;
      const shutdown: ConnectionEvent = { type: 'runtime.shutdown', code, reason };
      for (const entry of context.directory.connections.values()) {
        if (!entry.leaving) enqueue.sendTo(entry.ref, shutdown);
      }
    }),
  },
  guards: {
    isNew: ({ context, event }) => !context.directory.connections.has((event as Event<'connection.register'>).id),
    isActive: ({ context, event }) => context.directory.isActive((event as { id: string }).id),
    isMember: ({ context, event }) => {
      const { id, room } = event as Event<'room.leave'>;
      return context.directory.connections.get(id)?.rooms.has(room) ?? false;
    },
    isEmpty: ({ context }) => context.directory.connections.size === 0,
    hasRoomForSession: ({ context }) => context.sessions.size < context.maxSessions,
    /** A session is only ever its own user's: another's token is as good as unknown. */
    isOwnSession: ({ context, event }) => {
      const { token, user } = event as Event<'session.take'>;
      const kept = context.sessions.get(token);
      return kept !== undefined && kept.record.user === user;
    },
  },
}).createMachine({
  id: 'supervisor',
  description: 'Owns the connection registry, rooms, users and the sessions of dropped connections; one message at a time.',
  context: ({ input }) => ({
    directory: input?.directory ?? new Directory(),
    sessions: new SessionRegistry(),
    maxSessions: input?.maxSessions ?? 0,
  }),
  initial: 'running',
  on: {
    'connection.leaving': { actions: ['reportRoomsLeft', 'markLeaving'] },
    'room.leave': [{ guard: 'isMember', actions: ['leave', accept] }, { actions: refuse }],
    broadcast: {
      actions: {
        type: 'deliver',
        params: ({ event }) => ({
          target: event.target,
          except: event.except,
          frame: event.frame,
          delivered: event.delivered,
          envelopedOnly: event.envelopedOnly,
        }),
      },
    },
    [`xstate.done.actor.${CONNECTION_ACTOR_ID}`]: {
      actions: [
        'reportRoomsLeft',
        { type: 'forget', params: ({ event }) => ({ id: (event as DoneActorEvent<ConnectionOutput>).output.id }) },
      ],
    },
    // Every connection actor has the same actor id, so this event cannot say which one failed:
    // the runtime, which observes each actor, closes its socket and sends `connection.failed`.
    // Handled here all the same: an unhandled child error would fail the supervisor.
    [`xstate.error.actor.${CONNECTION_ACTOR_ID}`]: {},
    'connection.failed': {
      actions: ['reportRoomsLeft', { type: 'forget', params: ({ event }) => ({ id: event.id }) }],
    },
    [`xstate.done.actor.${SESSION_ACTOR_ID}`]: { actions: 'sessionEnded' },
    // A session machine has nothing that can fail; handled so that a bug there cannot fail the supervisor.
    [`xstate.error.actor.${SESSION_ACTOR_ID}`]: {},
  },
  states: {
    running: {
      description: 'Admits connections; joins and user bindings of active connections take effect.',
      on: {
        'connection.register': [{ guard: 'isNew', actions: ['register', accept] }, { actions: refuse }],
        'room.join': [{ guard: 'isActive', actions: ['join', accept] }, { actions: refuse }],
        'user.bind': [{ guard: 'isActive', actions: ['bind', accept] }, { actions: refuse }],
        'session.detach': [{ guard: 'hasRoomForSession', actions: ['keepSession', accept] }, { actions: refuse }],
        'session.take': [{ guard: 'isOwnSession', actions: 'takeSession' }, { actions: 'notTaken' }],
        'runtime.shutdown': 'stopping',
      },
    },
    stopping: {
      description:
        'Every connection was told to close with 1001 and every session stopped; new registrations, joins, bindings and sessions are refused.',
      entry: ['shutdownConnections', 'stopSessions'],
      always: { guard: 'isEmpty', target: 'stopped' },
      on: {
        'connection.register': { actions: refuse },
        'room.join': { actions: refuse },
        'user.bind': { actions: refuse },
        'session.detach': { actions: refuse },
        'session.take': { actions: 'notTaken' },
      },
    },
    stopped: { type: 'final', description: 'No connection is left.' },
  },
});
