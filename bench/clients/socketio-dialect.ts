/**
 * Just enough of Engine.IO v4 / Socket.IO v5 over a WebSocket to be a
 * Socket.IO client of the main namespace: the server opens with `0{…}`, the
 * client connects the namespace with `40`, the server confirms with `40{…}`;
 * the server pings with `2` and the client answers `3`; an event is
 * `42["name",…]`. Cheaper and more predictable than `socket.io-client` for
 * 10 000 connections in one process, and it reads the same frames.
 */
import { CLIENT_MESSAGE, HANDLED, READY, UNKNOWN, type Dialect } from './dialect.js';
import { pingsAnswered, textFrame, type WireConnection } from './wire.js';

const CONNECT = textFrame('40');
const PONG = textFrame('3');
/** `42["m","` — the broadcast's string starts after it. */
const EVENT_PREFIX = Buffer.from('42["m","');

const ZERO = 0x30;
const TWO = 0x32;
const FOUR = 0x34;

export const socketIoDialect: Dialect = {
  path: (room) => `/socket.io/?EIO=4&transport=websocket&room=${encodeURIComponent(room)}`,
  messageFrame: textFrame(`42["m","${CLIENT_MESSAGE}"]`),
  upgraded: () => false,
  inspect(connection: WireConnection, length: number): number {
    const prefix = connection.prefix;
    const first = prefix[0];
    if (first === FOUR && prefix[1] === TWO) {
      if (connection.prefixLength < EVENT_PREFIX.length) return UNKNOWN;
      for (let i = 2; i < EVENT_PREFIX.length; i++) if (prefix[i] !== EVENT_PREFIX[i]) return UNKNOWN;
      return EVENT_PREFIX.length;
    }
    if (first === TWO && length === 1) {
      pingsAnswered.count++;
      connection.send(PONG);
      return HANDLED;
    }
    if (first === ZERO) {
      // Engine.IO open packet: connect to the main namespace.
      connection.send(CONNECT);
      return HANDLED;
    }
    if (first === FOUR && prefix[1] === ZERO) return READY;
    return UNKNOWN;
  },
  payloadOf(message: string): string | undefined {
    if (!message.startsWith('42[')) return undefined;
    const event: unknown = JSON.parse(message.slice(2));
    return Array.isArray(event) && event.length === 2 && event[0] === 'm' && typeof event[1] === 'string' ? event[1] : undefined;
  },
};
