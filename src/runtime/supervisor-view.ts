import type { Actor, Subscription } from 'xstate';
import type { SupervisorMachine } from '../connection/actors.js';

/** Where the supervisor is, as an application may see it. */
export interface SupervisorSnapshot {
  /** `active` while it runs; `done` once shut down with no connection left; `error` after a bug in berth. */
  readonly status: 'active' | 'done' | 'error' | 'stopped';
  /** Its state: `running`, `stopping` (shutting down) or `stopped`. */
  readonly value: 'running' | 'stopping' | 'stopped';
}

/**
 * A read-only view of the supervisor actor: watch it, never drive it. Every
 * change of who is where goes through the connection handles, which also keep
 * the cluster's presence in step; `runtime.snapshot()` gives its registry as
 * plain data, and the `inspect` option shows the live actors.
 */
export interface SupervisorView {
  /** The supervisor's actor id (`supervisor`). */
  readonly id: string;
  /** Its session id: the `rootId` of every inspection event of this runtime. */
  readonly sessionId: string;
  getSnapshot(): SupervisorSnapshot;
  /** Calls `listener` after every event the supervisor processed; `complete` once it has stopped. */
  subscribe(listener: (snapshot: SupervisorSnapshot) => void, complete?: () => void): Subscription;
}

export function viewOf(actor: Actor<SupervisorMachine>): SupervisorView {
  const read = (): SupervisorSnapshot => {
    const { status, value } = actor.getSnapshot();
    return { status, value: value as SupervisorSnapshot['value'] };
  };
  return Object.freeze({
    id: actor.id,
    sessionId: actor.sessionId,
    getSnapshot: read,
    subscribe: (listener: (snapshot: SupervisorSnapshot) => void, complete?: () => void) =>
      actor.subscribe({ next: () => listener(read()), error: () => {}, ...(complete && { complete }) }),
  });
}
