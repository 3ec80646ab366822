/**
 * What recovery needs of its runtime (`RecoveryHost`), and where sessions are
 * kept (`SessionKeeper`): the supervisor on one node, the engine across a cluster.
 */
import type { SessionRecord } from '../../../machines/sessions.js';
import type { DropReason, ServerConnection } from '../../connection/connection.js';
import type { HistoryStore, StreamPosition } from '../../history/store.js';
import type { Timers } from '../../util/timers.js';

/** Where dropped connections' sessions are kept until their clients come back. */
export interface SessionKeeper {
  /** Keeps a session for `windowMs`; `kept` answers whether it was (false: too many are kept, or shutting down). */
  keep(record: SessionRecord, windowMs: number, kept: (ok: boolean) => void): void;
  /**
   * Hands a kept session over, once, and only to its own user; `taken` gets undefined otherwise, or
   * (a keeper shared by nodes) the connection that still holds it on another node, `live`.
   * `gone`: that connection is known to be gone, and its session is taken all the same.
   */
  take(token: string, user: string | undefined, taken: (record: SessionRecord | undefined, live?: string) => void, gone?: string): void;
  /** Whether a kept session holds this stream; cheap while none is kept (`holdsAny`). */
  holds(stream: string): boolean;
  readonly holdsAny: boolean;
  /**
   * A keeper shared by nodes (the engine's) is told of every live session as it changes (it opened,
   * joined, left, was bound): a node that dies writes nothing more, and its sessions are resumable all the same.
   */
  live?(record: SessionRecord, windowMs: number): void;
  /** A live session ended deliberately: forgotten. */
  ended?(token: string, owner: string): void;
  /** Asks the node of connection `owner` to close it (a resume takes its session over); false if that node is gone. */
  replace?(owner: string): Promise<boolean>;
}

/** What the application's `resumed` event says. */
export interface ResumeOutcome {
  readonly recovered: boolean;
  readonly previous: string | undefined;
  /** In JavaScript a stream is `stream`, as `berth/client` says too; on the wire it is `s`. */
  readonly lost: ReadonlyArray<{ readonly stream: string; readonly reason: string }>;
}

/** What recovery needs of its runtime. */
export interface RecoveryHost {
  /** How long a dropped connection's session is kept. */
  readonly windowMs: number;
  /** How long a client that offered `berth.resume` has to send its `resume`. */
  readonly resumeTimeoutMs: number;
  readonly history: HistoryStore;
  readonly sessions: SessionKeeper;
  readonly timers: Timers;
  /** False once the runtime is closing: no session is kept from then on. */
  running(): boolean;
  /** Tells where a stream stands now, at once or once known; never if the history failed (reported there). */
  position(stream: string, then: (position: StreamPosition) => void): void;
  /** Sessions are kept in the engine: they outlive this node, so those of connections closed by its shutdown are kept too. */
  readonly shared: boolean;
  /** `berth_sessions_total{outcome}`. */
  outcome(outcome: string): void;
  /** The application's `resumed` event. */
  resumed(connection: ServerConnection<unknown>, outcome: ResumeOutcome): void;
  dropped(connection: ServerConnection<unknown>, reason: DropReason, count: number): void;
  /** The history store failed a read: the stream is not recovered, and the failure is reported (`ERR_HISTORY`). */
  historyFailed(stream: string, error: unknown): void;
  /** A resume failed on berth's side (a bug): reported; the connection goes on without its replay. */
  failed(error: unknown): void;
}
