import { assign, setup } from 'xstate';

/** The actor id of every session actor (the supervisor tells them apart by the token in their output). */
export const SESSION_ACTOR_ID = 'session';

export interface SessionInput {
  /** The hash of the session's token (the runtime's `sessionKey`), never the token: a snapshot or inspector sees only this. */
  readonly token: string;
  /** How long a detached session waits for its client. */
  readonly windowMs: number;
}

/** Every event a session actor accepts. */
export type SessionEvent =
  /** Its client came back with the token, on a new connection. */
  { type: 'session.resume' };

/** What a session reports when it ends: resumed, or expired unclaimed. */
export interface SessionOutput {
  readonly token: string;
  readonly outcome: 'resumed' | 'expired';
}

/**
 * A detached session: what a dropped `berth.v1` connection leaves behind for
 * `windowMs`. It ends once, either way: resumed by its client, or expired.
 */
export const sessionMachine = setup({
  types: {} as {
    context: SessionInput & { outcome: SessionOutput['outcome'] | undefined };
    events: SessionEvent;
    input: SessionInput;
    output: SessionOutput;
  },
  delays: {
    recoveryWindow: ({ context }) => context.windowMs,
  },
}).createMachine({
  id: 'session',
  description: 'A dropped berth.v1 connection’s session, kept for the recovery window.',
  context: ({ input }) => ({ token: input.token, windowMs: input.windowMs, outcome: undefined }),
  initial: 'detached',
  states: {
    detached: {
      description: 'Waiting for its client to come back with the token.',
      on: { 'session.resume': { target: 'resumed', actions: assign({ outcome: 'resumed' as const }) } },
      after: { recoveryWindow: { target: 'expired', actions: assign({ outcome: 'expired' as const }) } },
    },
    resumed: { type: 'final', description: 'Its client came back in time.' },
    expired: { type: 'final', description: 'The window passed; the session is gone.' },
  },
  output: ({ context }) => ({ token: context.token, outcome: context.outcome ?? 'expired' }),
});

export type SessionMachine = typeof sessionMachine;
