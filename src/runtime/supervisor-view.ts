import type { Subscription } from 'xstate';

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
