/**
 * The history-store contract: bounded, per-stream history with offsets and
 * epochs, which a reconnecting client resumes from. `append` and `position`
 * may answer at once or with a promise, and `read` always with a promise, so
 * that a store kept elsewhere fits it unchanged; the in-memory store is the
 * reference, and answers `append` at once: a message it numbers is queued to
 * its recipients in the same call, behind nothing.
 */

/** Where a stream stands: the offset of its last message, and the epoch of its history. */
export interface StreamPosition {
  /** 0 before the first message of the epoch; grows by one per message. */
  readonly offset: number;
  /** Changes whenever the stream's history is lost (a restart, an evicted or expired stream). */
  readonly epoch: string;
}

/** A message as the store keeps it. */
export interface HistoryMessage {
  readonly offset: number;
  /** The payload as the application sent it (text as a string or as its UTF-8 bytes). */
  readonly data: string | Uint8Array;
  readonly binary: boolean;
  /**
   * The connection the message was not for (a broadcast's `except`): a replay to that connection, or
   * to a session that resumed it, gives it as a `skip`, as live delivery did.
   */
  readonly except?: string;
}

/** Why a read cannot give every message after a position. */
export type HistoryLoss =
  /** The stream's history was lost since that position was handed out: its epoch is not the one asked for. */
  | 'epoch-changed'
  /** Messages after that position have already been trimmed (by count, bytes or age). */
  | 'trimmed'
  /** The position is past the stream's last offset: it was never handed out by this store. */
  | 'ahead';

/** The answer to a read: every message after the position, in order, or why not (and where the stream is now). */
export type HistoryRead =
  | { readonly recovered: true; readonly position: StreamPosition; readonly messages: readonly HistoryMessage[] }
  | { readonly recovered: false; readonly position: StreamPosition; readonly reason: HistoryLoss };

/** How much history each stream keeps; a message past any bound is trimmed, oldest first. */
export interface HistoryLimits {
  /** Messages kept per stream. [default 1000] */
  readonly maxMessages?: number;
  /** Bytes kept per stream: payloads, plus what keeping each message costs (about 96 bytes in memory). [default 1048576] */
  readonly maxBytes?: number;
  /** How long a message is kept, in milliseconds. [default 300000] */
  readonly maxAgeMs?: number;
  /** Streams kept at once; past it, the stream written longest ago is forgotten (its next message starts a new epoch). [default 100000] */
  readonly maxStreams?: number;
  /** Bytes kept in all streams together, counted as for `maxBytes`; past it, streams are forgotten as past `maxStreams`. At least `maxBytes`. [default 67108864] */
  readonly maxTotalBytes?: number;
}

/**
 * Bounded history per stream, for one runtime: each node numbers the streams
 * it delivers itself (a store shared by several nodes would number each
 * broadcast once per node; across a cluster, durable streams number them in
 * the engine instead: `createRedisAdapter({ durable })`). `append` and
 * `position` may answer at once or with a promise: a stream's messages (and a
 * join's `joined`) wait for their number in order, so that none overtakes
 * another; what a store answers at once goes out in the same call.
 */
export interface HistoryStore {
  /** Appends a message and answers with its position: the next offset, in the stream's current epoch. */
  append(stream: string, message: Omit<HistoryMessage, 'offset'>): StreamPosition | Promise<StreamPosition>;
  /** Where the stream stands now; a stream with no history yet answers offset 0 in a fresh epoch. */
  position(stream: string): StreamPosition | Promise<StreamPosition>;
  /**
   * Every message after `since`, in order (each with the `except` it was appended with), if the store
   * still holds all of them; otherwise why not.
   * A stream the store does not know answers `epoch-changed` with offset 0 and epoch `''`, and is not created.
   */
  read(stream: string, since: StreamPosition): Promise<HistoryRead>;
  /** Releases what the store holds; a store is not used after it. */
  close(): Promise<void>;
}
