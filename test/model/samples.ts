/**
 * One sample of every event each machine handles, and the inputs the model
 * tests run them with: shared by the model-based tests of each machine and
 * by the compiled-machine equivalence test, so that both walk the same
 * events.
 */
import type { ClientEvent, ClientInput } from '../../machines/client.machine.js';
import type { ConnectionEvent, ConnectionInput } from '../../machines/connection.machine.js';

export const connectionInput: ConnectionInput = { id: 'c', closeTimeoutMs: 300 };

/** Every event of the connection machine but its delayed one. */
export const connectionEvents: readonly ConnectionEvent[] = [
  { type: 'socket.closed', code: 4100, reason: 'bye' },
  { type: 'socket.error', code: 1009, message: 'too big' },
  { type: 'heartbeat.missed' },
  { type: 'send.failed', message: 'EPIPE' },
  { type: 'server.close', code: 4101, reason: 'done', cause: 'server' },
  { type: 'runtime.shutdown', code: 1001, reason: 'server shutting down' },
];

export const clientInput: ClientInput = {
  backoff: { initialMs: 100, maxMs: 1000 },
  closeTimeoutMs: 300,
  connectTimeoutMs: 700,
  // 1000 and the application's 4100 mean "do not come back"; the rest do.
  reconnectable: (code) => code !== 1000 && code !== 4100,
  random: () => 0.5,
};

/** Every event of the client machine but its delayed ones. */
export const clientEvents: readonly ClientEvent[] = [
  { type: 'server.welcome' },
  { type: 'server.resuming' },
  { type: 'socket.closed', code: 1006, reason: '' },
  { type: 'socket.closed', code: 4100, reason: 'kicked' },
  { type: 'socket.closed', code: 1013, reason: 'retry-after=2' },
  { type: 'client.close', code: 1000, reason: 'bye' },
];
