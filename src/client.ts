/** `berth/client`: the berth.v1 client for browsers and Node. */
export { createClient, BerthClient } from './client/client.js';
export { ClientRequestError } from './client/api.js';
export type {
  ClientEvents,
  ClientOptions,
  ClientSocket,
  ClientState,
  MessageMap,
  RawMessages,
  StreamMessage,
  WebSocketClass,
} from './client/api.js';
export type { Backoff } from '../machines/client.machine.js';
