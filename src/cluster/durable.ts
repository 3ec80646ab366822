/**
 * Durable streams: what an engine offers when it numbers every stream's
 * messages itself, cluster-wide, keeps their history and the sessions of
 * `berth.v1` connections, so that a client may resume on any node.
 * The runtime's feeds (`src/runtime/feeds.ts`) deliver what it publishes in
 * offset order; recovery keeps and takes sessions through it.
 */
import { randomBytes } from 'node:crypto';
import type { Target } from '../../machines/types.js';

/** A fresh epoch: random, so that no two lives of a stream share one. */
export function freshEpoch(): string {
  return randomBytes(6).toString('base64url');
}

/** Where a stream stands, or a message of it: an offset within an epoch (the history store's `StreamPosition`). */
export interface StreamPosition {
  readonly offset: number;
  readonly epoch: string;
}

/** A message to append to a stream (the adapter's `BroadcastMessage`, without its position). */
export interface DurableMessage {
  readonly target: Target;
  readonly except?: string | undefined;
  readonly data: string | Uint8Array;
  readonly binary: boolean;
}

/** A message as the engine keeps it (the history store's `HistoryMessage`). */
export interface HistoryMessage {
  readonly offset: number;
  readonly data: string | Uint8Array;
  readonly binary: boolean;
  readonly except?: string;
}

/** What a range read found after a position. */
export type RangeStatus =
  /** Every message after the position: `messages`. */
  | 'ok'
  /** Some after the position were trimmed: `messages` are what is left. */
  | 'trimmed'
  /** The position is past the stream's last offset. */
  | 'ahead'
  /** The stream is in another epoch than the position's: `epoch`, `top` say where it is now. */
  | 'epoch-changed'
  /** The engine does not know the stream (never written, or expired). */
  | 'unknown';

export interface StreamRange {
  readonly epoch: string;
  /** The stream's last offset. */
  readonly top: number;
  readonly status: RangeStatus;
  readonly messages: readonly HistoryMessage[];
}

/** A session's owner: the connection it is of, while that connection may be open. */
export type SessionOwner = string;

/** Sessions of `berth.v1` connections, kept in the engine by the hash of their token (never the token). */
export interface DurableSessions {
  /** A connection opened: its session, live, kept `ttlMs` and renewed while it lives. */
  open(key: string, owner: SessionOwner, user: string | undefined, record: string, ttlMs: number): void;
  /** The session changed (a join, a leave, a binding): rewritten while `owner` still holds it. */
  write(key: string, owner: SessionOwner, record: string, user: string | undefined): void;
  /** Its connection dropped: kept for `windowMs` for a resume. Resolves whether it was (false: taken over, or the engine failed). */
  detach(key: string, owner: SessionOwner, record: string, windowMs: number): Promise<boolean>;
  /** Its connection ended deliberately: forgotten. */
  drop(key: string, owner: SessionOwner): void;
  /**
   * Takes a kept session, once cluster-wide, for `user`: its record; `{ live }` while its connection
   * may still be open (not taken); undefined if there is none, or it is another user's (not burned).
   * `gone` names an owner known to be gone: its session is taken even though it says live.
   */
  take(key: string, user: string | undefined, gone?: SessionOwner): Promise<{ record: string } | { live: SessionOwner } | undefined>;
  /** Asks the node of `owner` to close that connection (`REPLACED`); resolves false if no node is there to ask. */
  replace(owner: SessionOwner): Promise<boolean>;
}

/** Durable streams, as an engine keeps them. */
export interface DurableStreams {
  /** How often a node checks where the streams it hosts stand (`positionCheckMs`). */
  readonly positionCheckMs: number;
  /**
   * Numbers a message of `stream` and appends it to the stream's history, in one step, and (`publish`)
   * publishes it, with its position, to the nodes that host the stream (this one included).
   * `epoch`: the epoch to start the stream in if it has none.
   */
  append(stream: string, message: DurableMessage, publish: boolean, epoch?: string): Promise<StreamPosition>;
  /** Where a stream stands; a new stream is created, in a fresh epoch. */
  position(stream: string): Promise<StreamPosition>;
  /** The messages after `since`, as far as the engine still holds them. */
  range(stream: string, since: StreamPosition): Promise<StreamRange>;
  readonly sessions: DurableSessions;
}

/** How durable streams are kept. */
export interface DurableOptions {
  /** Messages kept per stream. [default 1000] */
  readonly maxMessages?: number;
  /** A stream's history is dropped this long after its last message. [default 300000] */
  readonly maxAgeMs?: number;
  /** How often a node checks where the streams it hosts stand, to find a lost tail. [default 2000] */
  readonly positionCheckMs?: number;
}
