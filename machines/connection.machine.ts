import { assign, setup } from 'xstate';
import type { CloseCause } from './types.js';

/** Heartbeat timing: the runtime's sweep pings every connection each `intervalMs` and waits `timeoutMs` for its pong. */
export interface HeartbeatTiming {
  readonly intervalMs: number;
  readonly timeoutMs: number;
}

export interface ConnectionInput {
  readonly id: string;
  /** How long `disconnecting` waits for the peer's close frame before terminating the socket. */
  readonly closeTimeoutMs: number;
}

export interface ConnectionContext extends ConnectionInput {
  /** The close code that ended the connection: the peer's, the server's, or 1006 when no frame was exchanged. */
  code: number | undefined;
  reason: string;
  cause: CloseCause | undefined;
}

/** What the connection reports when it reaches `closed`. */
export interface ConnectionOutput {
  readonly id: string;
  readonly code: number;
  readonly reason: string;
  readonly cause: CloseCause;
}

/** Every event a connection actor accepts. */
export type ConnectionEvent =
  /** The socket is closed: after the peer's close frame (its code and reason) or a dropped TCP connection (1006). */
  | { type: 'socket.closed'; code: number; reason: string }
  /** The transport failed; `code` is the close code sent to the peer (1002, 1007, 1009 …) or 1006. */
  | { type: 'socket.error'; code: number; message: string }
  /** The runtime's heartbeat sweep pinged the connection and no pong came within the timeout. */
  | { type: 'heartbeat.missed' }
  /** A write to the socket failed. */
  | { type: 'send.failed'; message: string }
  /** The server closes the connection: the application, a failing handler, a rate limit, a slow reader, or a resume elsewhere. */
  | { type: 'server.close'; code: number; reason: string; cause: 'server' | 'handler-error' | 'rate-limit' | 'slow-consumer' | 'replaced' }
  | { type: 'runtime.shutdown'; code: number; reason: string };

/** The event a connection sends its supervisor when it begins to disconnect. */
export interface ConnectionLeavingEvent {
  type: 'connection.leaving';
  id: string;
}

/**
 * The actor id every connection actor is created with; the connection id is
 * in its context. One id for all keeps the supervisor's event types bounded:
 * XState memoizes transition candidates per event type for good, so a
 * `xstate.done.actor.<unique id>` per connection would grow the heap by
 * ~375 bytes for every connection ever opened.
 */
export const CONNECTION_ACTOR_ID = 'connection';

/** No close frame was exchanged (RFC 6455 §7.1.5); never sent on the wire. */
const ABNORMAL_CLOSURE = 1006;

/**
 * One WebSocket connection: `open` → `disconnecting` → `closed`.
 *
 * Every way a connection ends enters `disconnecting` exactly once, and only
 * the first trigger counts: its entry tells the supervisor to take the
 * connection out of every room and user, and `closed` (final) reports the
 * close once. Side effects are named here and implemented by the runtime
 * with `provide`.
 */
export const connectionMachine = setup({
  types: {} as {
    context: ConnectionContext;
    events: ConnectionEvent;
    input: ConnectionInput;
    output: ConnectionOutput;
  },
  actions: {
    /** Starts the closing handshake: queued frames go out first, then the close frame. */
    closeSocket: (_, _params: { code: number; reason: string }) => {},
    /** Destroys the socket at once, without a closing handshake. */
    terminateSocket: () => {},
    /** The connection stopped being usable: no sends, joins or user bindings from now on. */
    markLeaving: () => {},
    /** Reports the close, once. */
    reportClosed: (_, _params: ConnectionOutput) => {},
    /**
     * Tells the supervisor (a `connection.leaving` event) to take the
     * connection out of every room and user. A named action rather than
     * `sendParent`, so `transition()` can run the machine without a parent.
     */
    notifySupervisor: () => {},
  },
  delays: {
    closeTimeout: ({ context }) => context.closeTimeoutMs,
  },
}).createMachine({
  id: 'connection',
  description: 'One WebSocket connection; cleanup runs once, on the way through disconnecting.',
  // Spelled out rather than spread: one object shape for every connection.
  context: ({ input }) => ({
    id: input.id,
    closeTimeoutMs: input.closeTimeoutMs,
    code: undefined,
    reason: '',
    cause: undefined,
  }),
  initial: 'open',
  states: {
    open: {
      description:
        'Sends, joins and user bindings take effect. The runtime’s heartbeat sweep pings it and handles its pongs; only a missed pong comes here.',
      on: {
        'heartbeat.missed': {
          target: 'disconnecting',
          actions: [assign({ code: ABNORMAL_CLOSURE, reason: '', cause: 'heartbeat' as const }), 'terminateSocket'],
        },
        'socket.closed': {
          target: 'disconnecting.socketGone',
          actions: assign(({ event }) => ({ code: event.code, reason: event.reason, cause: 'client' as const })),
        },
        'socket.error': {
          target: 'disconnecting',
          // The transport has already answered the peer with `code`; the socket closes by itself.
          actions: assign(({ event }) => ({ code: event.code, reason: '', cause: 'socket-error' as const })),
        },
        'send.failed': {
          target: 'disconnecting',
          actions: [assign({ code: ABNORMAL_CLOSURE, reason: '', cause: 'send-failed' as const }), 'terminateSocket'],
        },
        'server.close': {
          target: 'disconnecting',
          actions: [
            assign(({ event }) => ({ code: event.code, reason: event.reason, cause: event.cause })),
            { type: 'closeSocket', params: ({ event }) => ({ code: event.code, reason: event.reason }) },
          ],
        },
        'runtime.shutdown': {
          target: 'disconnecting',
          actions: [
            assign(({ event }) => ({ code: event.code, reason: event.reason, cause: 'shutdown' as const })),
            { type: 'closeSocket', params: ({ event }) => ({ code: event.code, reason: event.reason }) },
          ],
        },
      },
    },
    disconnecting: {
      description: 'No sends, joins or user bindings take effect any more.',
      entry: 'markLeaving',
      initial: 'closing',
      states: {
        closing: {
          description: 'Out of every room and user; the socket has closeTimeout to finish closing.',
          entry: 'notifySupervisor',
          on: {
            'socket.closed': '#connection.closed',
            // A write failing during the closing handshake means it will not finish.
            'send.failed': { actions: 'terminateSocket' },
          },
          after: { closeTimeout: { actions: 'terminateSocket' } },
        },
        socketGone: {
          description:
            'The socket closed first: nothing to wait for. The supervisor takes the connection out of its rooms and users when it is done.',
          always: '#connection.closed',
        },
      },
    },
    closed: {
      type: 'final',
      description: 'Gone; the close was reported once.',
      entry: {
        type: 'reportClosed',
        params: ({ context }) => outputOf(context),
      },
    },
  },
  output: ({ context }) => outputOf(context),
});

function outputOf(context: ConnectionContext): ConnectionOutput {
  return {
    id: context.id,
    code: context.code ?? ABNORMAL_CLOSURE,
    reason: context.reason,
    cause: context.cause ?? 'client',
  };
}

export type ConnectionMachine = typeof connectionMachine;
