/**
 * Types shared by the machines and the runtime. Types only: this file has no
 * runtime code, so `machines/` stays free of anything but `xstate`.
 */

/**
 * Why a connection ended: the first trigger that drove it out of `open`.
 * Later triggers are ignored, so this names exactly one cause.
 */
export type CloseCause =
  /** The peer sent a close frame or its TCP connection went away. */
  | 'client'
  /** The application called `connection.close()`. */
  | 'server'
  /** The peer did not answer a ping within `heartbeat.timeoutMs`. */
  | 'heartbeat'
  /** A write to the socket failed. */
  | 'send-failed'
  /** The transport reported an error: a bad or oversized frame, a reset. */
  | 'socket-error'
  /** The runtime is shutting down (`runtime.close()`). */
  | 'shutdown'
  /** An application event handler threw or rejected. */
  | 'handler-error'
  /** The peer exceeded its message rate under the `close` policy. */
  | 'rate-limit'
  /** The peer read too slowly: its outbox overflowed under the `close` policy. */
  | 'slow-consumer'
  /** Its client resumed its session on another connection while this one's socket still looked open. */
  | 'replaced';

/** Who a broadcast is for. `except` is handled separately so one shape serves every target. */
export type Target =
  { readonly kind: 'room'; readonly room: string } | { readonly kind: 'user'; readonly user: string } | { readonly kind: 'all' };

/** A message framed once for the wire; every recipient gets a reference to the same bytes. */
export interface EncodedFrame {
  /** The frame's bytes, in order. */
  readonly chunks: readonly Uint8Array[];
  readonly byteLength: number;
}

/** A connection as the supervisor reaches it: where a broadcast writes, and where it learns which rooms it left. */
export interface DeliveryPort {
  /** True for a connection that takes broadcasts in an envelope (a stream, an offset) rather than as the raw frame. */
  readonly enveloped?: boolean;
  deliver(frame: EncodedFrame): void;
  /** The supervisor took the connection out of these rooms (it began to disconnect, or its actor ended). */
  left(rooms: readonly string[]): void;
}

/** A callback carried by a request event; the supervisor answers through it. */
export type Respond = (ok: boolean) => void;
