/**
 * Runs a path of the connection model against a real runtime: a raw
 * WebSocket client (it pongs and answers close frames only when a step says
 * so) over a real loopback socket, and XState's `SimulatedClock` for the
 * delays. After every step the connection's actor must be in the state the
 * model is in. The model also hears what the real world does on its own: a
 * socket the server terminates closes (`socket.closed` with 1006).
 */
import { createActor, SimulatedClock, type InspectionEvent } from 'xstate';
import { connectionMachine, type ConnectionEvent, type ConnectionInput } from '../../machines/connection.machine.js';
import type { Connection } from '../../src/index.js';
import { eventually } from '../helpers/client.js';
import { RawWebSocket } from '../helpers/raw.js';
import { startRuntime } from '../helpers/runtime.js';

/** Event types a peer, the application or the clock can produce for real. `send.failed` cannot be, reliably. */
export const REALIZABLE = new Set([
  'socket.closed',
  'socket.error',
  'heartbeat.missed',
  'server.close',
  'runtime.shutdown',
  'xstate.after.closeTimeout.connection.disconnecting.closing',
]);

const MAX_PAYLOAD = 64;
/** The runtime's heartbeat sweep: the peer never pongs, so a round and its timeout make a `heartbeat.missed`. */
const HEARTBEAT = { intervalMs: 1000, timeoutMs: 500 };

/** A state value as a dotted name: `disconnecting.closing`, `closed`. */
export const stateOf = (value: unknown): string =>
  typeof value === 'string'
    ? value
    : Object.entries(value as object)
        .map(([key, child]) => `${key}.${stateOf(child)}`)
        .join(',');

/**
 * Runs `events` for real; fails unless the real actor is in the model's state
 * after every step. Resolves with both final states, or with `undefined` when
 * the path asks for time to pass for a delay the current state does not have:
 * real time cannot pass for one timer and not for the one that is pending.
 */
export async function realize(
  input: ConnectionInput,
  events: ReadonlyArray<{ type: string }>,
  inspect: (event: InspectionEvent) => void,
): Promise<{ real: string; model: string } | undefined> {
  const clock = new SimulatedClock();
  /** The latest state of every connection actor, by connection id, from inspection. */
  const states = new Map<string, string>();
  const { runtime, port } = await startRuntime({
    heartbeat: HEARTBEAT,
    closeTimeoutMs: input.closeTimeoutMs,
    maxPayload: MAX_PAYLOAD,
    clock,
    inspect: (event) => {
      inspect(event);
      const snapshot = (event as { snapshot?: { value: unknown; context?: { id?: unknown } } }).snapshot;
      const id = snapshot?.context?.id;
      if (event.type === '@xstate.snapshot' && typeof id === 'string') states.set(id, stateOf(snapshot!.value));
    },
  });
  runtime.on('error', () => {}); // the oversized frame of socket.error is reported; expected here

  // The model, fed the same events, plus the socket's own reaction to a terminate.
  const consequences: ConnectionEvent[] = [];
  const model = createActor(connectionMachine, {
    input,
    clock: new SimulatedClock(),
    inspect: (event) => {
      if (event.type === '@xstate.action' && (event as { action: { type: string } }).action.type === 'terminateSocket') {
        consequences.push({ type: 'socket.closed', code: 1006, reason: '' });
      }
      // ws closes a socket whose peer broke the protocol (here: 1009) by itself.
      if (event.type === '@xstate.event' && (event as { event: { type: string } }).event.type === 'socket.error') {
        consequences.push({ type: 'socket.closed', code: 1006, reason: '' });
      }
    },
  });
  model.start();
  const feed = (event: ConnectionEvent) => {
    model.send(event);
    while (consequences.length > 0) model.send(consequences.shift()!);
  };

  const opened = new Promise<Connection>((resolve) => runtime.on('connection', resolve));
  const peer = await RawWebSocket.open(port);
  const connection = await opened;
  const real = () => states.get(connection.id);
  let shutdown: Promise<void> | undefined;
  const trail: string[] = [];
  try {
    for (const event of events) {
      switch (event.type) {
        case 'socket.closed':
          peer.sendClose(4100, 'bye'); // the server answers, and the TCP connection ends
          break;
        case 'socket.error':
          peer.sendFrame(0x1, Buffer.alloc(MAX_PAYLOAD + 1, 0x61)); // over maxPayload: 1009
          break;
        case 'heartbeat.missed':
          // Only while open: the sweep monitors nothing else.
          if (!model.getSnapshot().can(event as ConnectionEvent)) return undefined;
          clock.increment(HEARTBEAT.intervalMs);
          clock.increment(HEARTBEAT.timeoutMs);
          break;
        case 'server.close':
          connection.close(4101, 'done');
          break;
        case 'runtime.shutdown':
          shutdown = runtime.close({ timeoutMs: 60_000 }); // its own deadline must not act during the path
          break;
        default: {
          const delay = /^xstate\.after\.(\w+)\./.exec(event.type)?.[1];
          if (delay !== 'closeTimeout') throw new Error(`no real stimulus for ${event.type}`);
          // Time passing while open would be heartbeat rounds, which the model does not hear of.
          if (!model.getSnapshot().can(event as ConnectionEvent)) return undefined;
          clock.increment(input.closeTimeoutMs);
        }
      }
      feed(event as ConnectionEvent);
      const expected = stateOf(model.getSnapshot().value);
      trail.push(`${event.type} → ${expected}`);
      await eventually(() => real() === expected, `the real actor to reach ${expected} after ${trail.join(', ')}`, 3000).catch(
        (error: Error) => {
          throw new Error(`${error.message} (it is in ${real()})`);
        },
      );
    }
    return { real: real()!, model: stateOf(model.getSnapshot().value) };
  } finally {
    peer.destroy();
    model.stop();
    await eventually(() => connection.state === 'closed', 'the connection to end');
    await (shutdown ?? runtime.close({ timeoutMs: 1000 }));
  }
}
