import type { Target } from '../../machines/types.js';
import type { DurableStreams, StreamPosition } from './durable.js';
import type { Presence, PresenceChange } from './presence.js';

export type { PresenceChange };

/** A broadcast as it travels between nodes. */
export interface BroadcastMessage {
  readonly target: Target;
  /** A connection id (cluster-unique) that must not receive it. */
  readonly except?: string | undefined;
  readonly data: string | Uint8Array;
  readonly binary: boolean;
  /** With durable streams: where the engine numbered it on its stream. */
  readonly position?: StreamPosition;
  /** With durable streams: the node that published it (whose own recipients without an envelope had it at once). */
  readonly origin?: string;
}

/** The node an adapter serves: what an adapter may tell its runtime. */
export interface AdapterNode {
  /** Unique per runtime; every connection id of this node starts with it. */
  readonly nodeId: string;
  /** Delivers a broadcast that came from another node to this node's connections. */
  deliver(message: BroadcastMessage): void;
  /** `count` broadcasts of this node could not be carried to other nodes (counted in `berth_cross_node_dropped_total`). */
  dropped(count: number): void;
  /**
   * `count` broadcasts that node `origin` published to `target` never reached this node: a gap in that
   * publisher's numbers (`Envelopes` finds them). Counted in `berth_cross_node_lost_total`, told as the
   * runtime's `lost` event, and `health()` says `degraded` for a while.
   */
  lost(target: Target, count: number, origin: string): void;
  /**
   * The link to the other nodes went down (with why) or came back. While it is
   * down, broadcasts reach this node's connections only and `health()` says `degraded`.
   */
  linkChanged(up: boolean, error?: unknown): void;
  /** Something failed that cost no local delivery (a malformed message from the bus, a failed presence write). */
  failed(error: unknown, what: string): void;
  /** This node's own presence, read from its registry (an in-process adapter can answer from it). */
  readonly presence: Presence;
  /** With durable streams: another node's resume takes over the session of this node's connection `id` (closed `REPLACED`). */
  replace?(id: string): void;
}

/**
 * Carries room, user and global broadcasts to other nodes. Local delivery is
 * the runtime's: an adapter never delivers to this node's own connections,
 * so local behaviour is the same whichever adapter runs.
 *
 * Methods may be sync or async; a rejection is reported as an `error` event
 * (`ERR_ADAPTER`) and never affects local delivery.
 */
export interface Adapter {
  /** Called once, before the first publish, with the node this adapter serves. */
  attach(node: AdapterNode): void | Promise<void>;
  /** Sends a broadcast to every other node. */
  publish(message: BroadcastMessage): void | Promise<void>;
  /**
   * Told of every presence change on this node, in order; optional. The change is recorded whatever
   * happens. A join or a user binding waits for the promise returned for it: an adapter that subscribes
   * to a room's or a user's messages only while this node hosts someone of it returns the subscription,
   * so that a member receives every broadcast from other nodes published after its join resolved. That
   * promise (Redis and NATS keep this; a third-party adapter should):
   *
   * - resolves once the subscription is made; a change that needs none returns nothing (or resolves),
   *   and one whose subscription is still under way for an earlier change waits for it;
   * - rejects, with an error naming the channel and the cause, if the subscription failed while the
   *   link was up: the server refused it (an ACL, say) or did not answer in time. The next change that
   *   needs it asks again. The runtime reports a rejection as an `ERR_ADAPTER` error;
   * - resolves (or nothing is returned) while the link is down, or if it went down before the answer:
   *   the subscription is made once the link is back. The link's state is told by `linkChanged`, and
   *   what this node missed meanwhile is counted (`lost`).
   */
  track?(change: PresenceChange): void | Promise<void>;
  /**
   * Cluster-wide presence, built from every node's `track` calls. Without it,
   * `runtime.presence` answers for this node alone.
   */
  readonly presence?: Presence;
  /**
   * Durable streams, once attached, if the adapter keeps them: then every room, user and
   * `all` message is published through `durable.append` rather than `publish`, and sessions are
   * kept in the engine.
   */
  readonly durable?: DurableStreams;
  /** Detaches from the cluster and removes this node's presence; called once by `runtime.close()`. */
  close(): void | Promise<void>;
}
