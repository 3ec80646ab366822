import type { Target } from '../machines/types.js';

/** A broadcast as it travels between nodes. */
export interface BroadcastMessage {
  readonly target: Target;
  /** A connection id (cluster-unique) that must not receive it. */
  readonly except?: string | undefined;
  readonly data: string | Uint8Array;
  readonly binary: boolean;
}

/** A change in who is where, reported to the adapter for cluster-wide presence. */
export type PresenceChange =
  | { readonly kind: 'connect'; readonly id: string; readonly user: string | undefined }
  | { readonly kind: 'disconnect'; readonly id: string }
  | { readonly kind: 'join' | 'leave'; readonly id: string; readonly room: string }
  | { readonly kind: 'bind'; readonly id: string; readonly user: string | undefined };

/** The node an adapter serves. */
export interface AdapterNode {
  /** Unique per runtime; every connection id of this node starts with it. */
  readonly nodeId: string;
  /** Delivers a broadcast that came from another node to this node's connections. */
  deliver(message: BroadcastMessage): void;
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
  /** Told of every presence change on this node, in order; optional. */
  track?(change: PresenceChange): void | Promise<void>;
  /** Detaches from the cluster; called once by `runtime.close()`. */
  close(): void | Promise<void>;
}
