import type { AdapterNode } from '../adapter.js';
import type { DurableStreams } from '../durable.js';
import type { InterestKey } from '../interest.js';
import type { NodePresence } from '../node-presence.js';
import type { Presence, PresenceChange } from '../presence.js';
import type { ClusterSettings } from './options.js';

/** How long `close()` waits for the server to take this node's presence away, or to let go of a connection, before it gives up. */
export const CLOSE_TIMEOUT_MS = 2000;

/**
 * An engine's cluster-wide presence: reads of everyone's, and this node's own entries, written from
 * the changes it is told. Reads may reject as the engine finds; the adapter fails them at once while
 * the link is down, gives up on them after `presenceTimeoutMs`, and reports their failures.
 */
export interface EnginePresence extends Presence {
  /** This node's own presence, as every change tracked so far left it. */
  readonly local: NodePresence;
  /** Applies a change to `local` and queues its write; returns the entry as it was before it (`NodePresence.apply`). */
  track(change: PresenceChange): { user: string | undefined; rooms: string[] } | undefined;
  /** Takes this node out of presence (graceful shutdown); resolves at once when the link is down. */
  close(): Promise<void>;
}

/**
 * One medium (Redis, NATS) as the shared adapter drives it: it connects, carries sealed broadcasts,
 * subscribes to what this node hosts, and keeps presence; the adapter around it owns the rest
 * (options, numbering, what is wanted, the link's state as the runtime sees it, timeouts, close).
 */
export interface Engine {
  readonly presence: EnginePresence;
  /** Durable streams, if the engine keeps them (asked for, and able to). */
  readonly durable?: DurableStreams;
  /** Starts connecting, and keeps at it until `close`; the link's state goes to `EngineContext.link`. */
  start(): void;
  /**
   * Hands a sealed broadcast (`key` its room or user; undefined for everyone) to the server. Resolves
   * once the server took it, with how many subscribers of other nodes it reached when the server
   * says (for publish receipts), or undefined; rejects if it was not carried. Throws if the server
   * could never take it (larger than it accepts).
   */
  publish(key: InterestKey | undefined, wire: Buffer): Promise<number | undefined>;
  /**
   * Subscribes to a room's or user's channel. Returns undefined while the link is down (the engine
   * makes the subscription once it is back); otherwise a promise that resolves once the server has it,
   * and rejects if the server refused it or the connection failed first.
   */
  subscribe(key: InterestKey): Promise<void> | undefined;
  /** Gives a room's or user's channel up (its last member left `unsubscribeLingerMs` ago); never throws. */
  unsubscribe(key: InterestKey): void;
  /** The channel (or subject) of a room or user, for messages. */
  channelOf(key: InterestKey): string;
  /** Renews this node's heartbeat (and whatever presence upkeep is due); rejects if it could not. */
  beat(): Promise<void>;
  /** Lets go of the server: subscriptions, and connections it owns. Called once, after presence was taken away. */
  close(): Promise<void>;
}

/** What the adapter gives an engine: the node, the settings, and where to report. */
export interface EngineContext {
  readonly node: AdapterNode;
  readonly settings: ClusterSettings;
  /** The rooms and users this node subscribes to now (lingering ones included): what to subscribe to again after a reconnect. */
  readonly wanted: ReadonlySet<InterestKey>;
  /** A message from the server, on `channel`: decoded, numbered and delivered by the adapter. */
  receive(bytes: Uint8Array, channel: string): void;
  /** A message of a durable stream, numbered by the engine: delivered by the runtime's feeds, in offset order. */
  receiveDurable(bytes: Uint8Array, channel: string): void;
  /**
   * The link's state: up when broadcasts can be published and received. `error` says why it is down
   * or why an attempt failed; the first failed attempt lets `attach` settle (local-only).
   */
  link(up: boolean, error?: unknown): void;
}

/** Makes the engine for the node an adapter is attached to. */
export type EngineFactory = (context: EngineContext) => Engine;

/** A presence read refused for its size: the caller's to handle (look at the size first, or raise the limit), not a failure of the cluster. */
export class PresenceLimitError extends RangeError {
  override readonly name = 'PresenceLimitError';
}

/** Refuses a read of `what` that would collect `entries` entries, past `limit` (`maxPresenceEntries`). */
export function refuseOverLimit(what: string, entries: number, limit: number): void {
  if (entries > limit)
    throw new PresenceLimitError(`presence ${what} would read ${entries} entries, more than maxPresenceEntries (${limit}): not read`);
}
