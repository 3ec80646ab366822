import { assign, setup } from 'xstate';

/** Reconnect backoff: full jitter, doubling from `initialMs` up to `maxMs`. */
export interface Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
}

export interface ClientInput {
  readonly backoff: Backoff;
  /** How long `closing` waits for the server's close before the socket is dropped. */
  readonly closeTimeoutMs: number;
  /** How long `connecting` waits for the welcome before it drops the socket and tries again. */
  readonly connectTimeoutMs: number;
  /** Whether a close with this code is worth reconnecting after (the close-code catalog's answer). */
  readonly reconnectable: (code: number) => boolean;
  /** In [0, 1): the jitter; a test passes a fixed one. */
  readonly random: () => number;
}

export interface ClientContext extends ClientInput {
  /** Reconnects tried since the last time the client was open. */
  attempt: number;
  /** The wait before the next reconnect. */
  delayMs: number;
  /** The close that ended the last connection. */
  code: number | undefined;
  reason: string;
}

/** Every event a client actor accepts. */
export type ClientEvent =
  /** The server's `welcome` arrived: the connection is usable (a paced refusal opens, then closes, without one). */
  | { type: 'server.welcome' }
  /** The server's `welcome` arrived and the client asked to resume: usable once the replay is in (`server.welcome`). */
  | { type: 'server.resuming' }
  /** The socket closed, with the server's code and reason (1006 and '' when it dropped). */
  | { type: 'socket.closed'; code: number; reason: string }
  /** The application closes the client. */
  | { type: 'client.close'; code: number; reason: string };

/** Codes after which the server asks for a quick return rather than a backoff: going away, restarting. */
const SOON = new Set([1001, 1012]);

/** `retry-after=<seconds>` in a close reason: how long the server asked the client to stay away. */
function retryAfterMs(reason: string): number | undefined {
  const match = /^retry-after=(\d{1,6})$/.exec(reason);
  return match === null ? undefined : Number(match[1]) * 1000;
}

/**
 * The next wait, with full jitter so that clients dropped together do not
 * come back together: a server's `retry-after` is a floor (spread over up to
 * twice it); after 1001 or 1012 at most `initialMs`; otherwise anywhere up to
 * `initialMs · 2^attempt`, capped at `maxMs`.
 */
export function reconnectDelay(context: Pick<ClientContext, 'backoff' | 'random' | 'attempt'>, code: number, reason: string): number {
  const { backoff, random, attempt } = context;
  const asked = retryAfterMs(reason);
  if (asked !== undefined) return asked + Math.floor(random() * asked);
  if (SOON.has(code)) return Math.floor(random() * backoff.initialMs);
  return Math.floor(random() * Math.min(backoff.maxMs, backoff.initialMs * 2 ** attempt));
}

/** The leaf a client machine's state value (or state path) names: `connecting`, `open`, `reconnecting`, `closing` or `closed`. */
export function clientStateOf(value: unknown): 'connecting' | 'open' | 'reconnecting' | 'closing' | 'closed' {
  // A state value (`'reconnecting'`, `{ live: 'connecting' }`) or a state's path (`'live.connecting'`).
  const leaf =
    typeof value === 'string'
      ? value.slice(value.lastIndexOf('.') + 1)
      : (Object.values(value as Record<string, string>)[0] ?? 'connecting');
  // Resuming is still connecting, for the application: not usable yet.
  return (leaf === 'resuming' ? 'connecting' : leaf) as ReturnType<typeof clientStateOf>;
}

/**
 * A `berth/client` connection over its whole life: `connecting` until the
 * server's welcome, `open`, `reconnecting` after a close worth coming back
 * from (with backoff), `closing` when the application closes it, `closed`.
 */
export const clientMachine = setup({
  types: {} as {
    context: ClientContext;
    events: ClientEvent;
    input: ClientInput;
  },
  actions: {
    /** Opens a new socket to the server. */
    openSocket: () => {},
    /** Starts the closing handshake with the application's code and reason. */
    closeSocket: (_, _params: { code: number; reason: string }) => {},
    /** Drops the socket without waiting for the server. */
    terminateSocket: () => {},
    /** The connection is usable: what waited in the outgoing queue goes out. */
    flushQueue: () => {},
    /** Requests waiting for a reply will get none over this connection. */
    failPending: () => {},
    /** Reports the end, once. */
    reportClosed: (_, _params: { code: number; reason: string }) => {},
  },
  guards: {
    reconnectable: ({ context, event }) => context.reconnectable((event as Extract<ClientEvent, { type: 'socket.closed' }>).code),
  },
  delays: {
    reconnectDelay: ({ context }) => context.delayMs,
    closeTimeout: ({ context }) => context.closeTimeoutMs,
    connectTimeout: ({ context }) => context.connectTimeoutMs,
  },
}).createMachine({
  id: 'client',
  description: 'One berth/client: connects, stays open, reconnects with backoff after a close worth coming back from.',
  context: ({ input }) => ({ ...input, attempt: 0, delayMs: 0, code: undefined, reason: '' }),
  initial: 'live',
  states: {
    live: {
      description: 'A socket is ours: opening, or open. However it closes, the same rules decide what comes next.',
      initial: 'connecting',
      states: {
        connecting: {
          description: 'A socket is opening; usable once the welcome comes.',
          entry: 'openSocket',
          on: { 'server.welcome': 'open', 'server.resuming': 'resuming' },
          // A handshake the network or a full accept queue lost would otherwise wait for TCP to give up (minutes).
          after: { connectTimeout: { target: '#client.reconnecting', actions: ['terminateSocket', 'failPending'] } },
        },
        resuming: {
          description: 'Welcomed; the replay of what it missed is coming, however long it takes. Usable once it is in.',
          on: { 'server.welcome': 'open' },
        },
        open: {
          description: 'Messages flow both ways; the outgoing queue is flushed on entry.',
          entry: [assign({ attempt: 0 }), 'flushQueue'],
        },
      },
      on: {
        'socket.closed': [
          { guard: 'reconnectable', target: 'reconnecting', actions: 'failPending' },
          { target: 'closed', actions: assign(({ event }) => ({ code: event.code, reason: event.reason })) },
        ],
        'client.close': {
          target: 'closing',
          actions: { type: 'closeSocket', params: ({ event }) => ({ code: event.code, reason: event.reason }) },
        },
      },
    },
    reconnecting: {
      description: 'Waiting out the backoff; sends queue, bounded.',
      entry: assign(({ context, event }) => {
        // A socket that closed says how; one given up on while connecting did not close at all (1006).
        const { code, reason } = event.type === 'socket.closed' ? event : { code: 1006, reason: '' };
        return { code, reason, delayMs: reconnectDelay(context, code, reason), attempt: context.attempt + 1 };
      }),
      after: { reconnectDelay: 'live' },
      on: {
        'client.close': { target: 'closed', actions: assign(({ event }) => ({ code: event.code, reason: event.reason })) },
      },
    },
    closing: {
      description: 'The application closed it; waiting for the server to close too.',
      on: {
        'socket.closed': { target: 'closed', actions: assign(({ event }) => ({ code: event.code, reason: event.reason })) },
      },
      after: { closeTimeout: { target: 'closed', actions: 'terminateSocket' } },
    },
    closed: {
      type: 'final',
      description: 'Gone for good; the close was reported once.',
      entry: ['failPending', { type: 'reportClosed', params: ({ context }) => ({ code: context.code ?? 1006, reason: context.reason }) }],
    },
  },
});

export type ClientMachine = typeof clientMachine;
