/**
 * What the runtime adds to the supervisor's sessions (machines/sessions.ts):
 * the tokens, which need a source of randomness the machines may not import,
 * and the session actors, which the runtime creates so that the supervisor
 * only decides whether to keep them.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createActor, type Actor, type AnyActorRef } from 'xstate';
import { SESSION_ACTOR_ID, sessionMachine } from '../../../machines/session.machine.js';

/** A new, unguessable token (144 random bits). */
export function sessionToken(): string {
  return randomBytes(18).toString('base64url');
}

/** What a session is kept by: the hash of its token, never the token itself (a credential). */
export function sessionKey(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

/**
 * A session actor, not started: the supervisor's child (the inspector shows it, its done event
 * reaches the supervisor), on the supervisor's clock, so simulated time moves its window too.
 */
export function createSessionActor(supervisor: AnyActorRef, token: string, windowMs: number): Actor<typeof sessionMachine> {
  return createActor(sessionMachine, { parent: supervisor, id: SESSION_ACTOR_ID, input: { token, windowMs } });
}
