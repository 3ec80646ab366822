/**
 * What differs between the systems on the client side: the upgrade path, how
 * a client message is framed, and which server messages are protocol traffic
 * rather than benchmark messages. berth and ws speak plain WebSocket; the
 * Socket.IO dialect is in socketio-dialect.ts, berth's own protocol
 * (`berth.v1`) in berth-dialect.ts.
 */
import { payloadMaker } from '../payload.js';
import { textFrame, type WireConnection } from './wire.js';

/** `inspect` results other than a payload offset. */
export const READY = -1;
export const HANDLED = -2;
export const UNKNOWN = -3;

export interface Dialect {
  /** The upgrade request's path for a connection that wants to be in `room`. */
  path(room: string): string;
  /** The subprotocol the upgrade asks for (`Sec-WebSocket-Protocol`) [default none]. */
  readonly protocol?: string;
  /** The frame of one client → server message (100 bytes of payload). */
  readonly messageFrame: Buffer;
  /** Called once upgraded: true if the connection is ready, false if the dialect's own handshake follows. */
  upgraded(connection: WireConnection): boolean;
  /**
   * Classifies a complete message: the offset of the benchmark payload in
   * `connection.prefix`, `READY` when it completed the dialect's handshake,
   * `HANDLED` for other protocol traffic it answered, `UNKNOWN` otherwise.
   */
  inspect(connection: WireConnection, length: number): number;
  /** The benchmark payload in a whole (inflated) message; undefined if it is not an event of the benchmark. */
  payloadOf(message: string): string | undefined;
}

/** The client message: the same 100-byte string as the broadcasts, sequence 0. */
export const CLIENT_MESSAGE = payloadMaker(100)(0, 0);

/** berth and ws: the room in the query, the message as a text frame. */
export const plainDialect: Dialect = {
  path: (room) => `/?room=${encodeURIComponent(room)}`,
  messageFrame: textFrame(CLIENT_MESSAGE),
  upgraded: () => true,
  inspect: () => 0,
  payloadOf: (message) => message,
};
