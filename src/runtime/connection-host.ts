/**
 * What each connection of a runtime may ask of it (`ConnectionHost`), built
 * once per runtime from its parts: a connection reaches the supervisor, the
 * streams, recovery and the application's events only through this object.
 */
import type { ConnectionOutput } from '../../machines/connection.machine.js';
import type { ServerConnection, ConnectionHost, MembershipRequest } from '../connection/connection.js';
import type { HeartbeatSweep } from '../connection/heartbeat.js';
import { TokenBucket } from '../connection/rate-limit.js';
import type { Deflater } from '../delivery/deflate.js';
import type { FlushScheduler } from '../delivery/flush-scheduler.js';
import { encodeCheck, toPayload } from '../delivery/frame.js';
import { Outbox, type OutboxLedger } from '../delivery/outbox.js';
import type { Metrics } from '../observability/metrics.js';
import { errorFrame, ProtocolErrorCode } from '../protocol/v1.js';
import { ErrorCode, toBerthError, type BerthError } from '../util/errors.js';
import type { RuntimeEvents } from './api.js';
import type { ClusterBridge } from './cluster-bridge.js';
import type { Clock, ResolvedOptions } from './options.js';
import type { Recovery } from './recovery/recovery.js';
import type { Requests } from './requests.js';
import type { Streams } from './streams.js';
import type { SupervisorRunner } from './supervisor.js';

/** Milliseconds on the runtime's clock, or real time when it has no `now`. */
export function hostNow(clock: Clock | undefined): () => number {
  return typeof clock?.now === 'function' ? () => clock.now!() : () => performance.now();
}

/** The parts of a runtime its connections' host is built from. */
export interface HostRuntime<TData> {
  readonly options: ResolvedOptions<TData>;
  readonly scheduler: FlushScheduler;
  readonly ledger: OutboxLedger;
  readonly deflater: Deflater | undefined;
  readonly heartbeat: HeartbeatSweep<ServerConnection<TData>> | undefined;
  readonly supervisor: SupervisorRunner;
  readonly streams: Streams;
  readonly recovery: Recovery;
  readonly bridge: ClusterBridge;
  readonly requests: Requests<TData>;
  readonly metrics: Metrics;
  connection(id: string): ServerConnection<TData> | undefined;
  /** The connection closed: the runtime's registry forgets it. */
  forget(id: string): void;
  emit<K extends keyof RuntimeEvents<TData>>(type: K, payload: RuntimeEvents<TData>[K], connection?: ServerConnection<TData>): void;
  hasListener(type: keyof RuntimeEvents<TData>): boolean;
  report(error: BerthError, connection?: ServerConnection<TData>): void;
}

/** Errors of a write that say only that the peer went away in the middle of it. */
const PEER_GONE = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ETIMEDOUT']);

export function connectionHost<TData>(runtime: HostRuntime<TData>): ConnectionHost<TData> {
  const { options, heartbeat, supervisor, streams, recovery, bridge, requests, metrics, deflater } = runtime;
  const now = hostNow(options.clock);
  const rateLimit = options.rateLimit;
  return {
    outbox: (socket, owner) =>
      new Outbox(
        socket,
        owner,
        runtime.scheduler,
        options.outbox,
        runtime.ledger,
        deflater === undefined || socket.deflate === undefined ? undefined : deflater.peer(socket.deflate),
      ),
    limiter: () =>
      rateLimit === null
        ? undefined
        : { bucket: new TokenBucket(rateLimit.messagesPerSecond, rateLimit.burst, now), policy: rateLimit.policy },
    ponged: (connection) => heartbeat?.pong(connection),
    heartbeatPhase: (connection) => heartbeat?.phaseOf(connection) ?? 'off',
    request: (change, applied) => membership(runtime, change, applied),
    rooms: (id) => supervisor.context.directory.connections.get(id)?.rooms,
    received: (connection, message) => {
      if (message.kind === 'resume') return recovery.resume(connection as ServerConnection<unknown>, message.tokens, message.positions);
      if (connection.enveloped) recovery.received(connection as ServerConnection<unknown>);
      if (message.kind === 'req') requests.answer(connection, message.id, message.data, message.binary);
      else runtime.emit('message', { connection, data: message.data, binary: message.binary }, connection);
    },
    sendEnveloped: (connection, data, binary) => {
      // The same checks and framing rules as a raw send: strings are text, bytes binary unless `binary: false`.
      encodeCheck(data);
      return streams.direct(connection as ServerConnection<unknown>, toPayload(data, binary));
    },
    invalidMessage: (connection, error, first) => {
      recovery.received(connection as ServerConnection<unknown>);
      metrics.dropped('invalid-message', 1);
      // A request whose id was valid is answered by that id, so that the client can fail it.
      connection.deliver(errorFrame(ProtocolErrorCode.INVALID_MESSAGE, error.message, error.id));
      // Reported once per connection (every one is counted): a client looping on a bad frame must not flood the log.
      if (first)
        runtime.report(toBerthError(ErrorCode.PROTOCOL, `connection ${connection.id} sent no berth.v1 message`, error.message), connection);
    },
    dropped: (connection, reason, count) => {
      metrics.dropped(reason, count);
      if (runtime.hasListener('dropped')) runtime.emit('dropped', { connection, reason, count }, connection);
    },
    socketFailed: (connection, error, closeCode) => {
      runtime.report(toBerthError(ErrorCode.SOCKET, `connection ${connection.id} closed with ${closeCode}`, error), connection);
    },
    sendFailed: (connection, error) => {
      // A peer that reset its connection in the middle of a write has gone: that is its close (cause
      // `send-failed`, counted), not a failure for an operator to act on — a network blip under
      // 10 000 clients would otherwise log 10 000 errors.
      if (!PEER_GONE.has((error as NodeJS.ErrnoException).code ?? '')) {
        runtime.report(toBerthError(ErrorCode.SEND_FAILED, `send to ${connection.id} failed`, error), connection);
      }
      connection.sendFailed(error.message);
    },
    leaving: (connection) => {
      heartbeat?.remove(connection);
      void bridge.track({ kind: 'disconnect', id: connection.id });
      recovery.leaving(connection as ServerConnection<unknown>);
    },
    closed: (connection, output: ConnectionOutput) => {
      runtime.forget(connection.id);
      metrics.closed(output.code, output.cause);
      // Runs inside the connection actor's transition: the application hears of it once every
      // actor is at rest, and so once the supervisor has said which rooms the connection left.
      queueMicrotask(() => {
        recovery.closed(connection as ServerConnection<unknown>, output.code, output.cause);
        runtime.emit('close', { connection, code: output.code, reason: output.reason, cause: output.cause, rooms: connection.roomsLeft });
      });
    },
  };
}

/**
 * A join, leave or user binding: the supervisor decides, and presence follows what it accepted. A
 * join whose cross-node subscription failed is undone: its member would miss what other nodes send.
 */
function membership<TData>(runtime: HostRuntime<TData>, change: MembershipRequest, applied: (() => void) | undefined): Promise<boolean> {
  const { supervisor, streams, recovery, bridge } = runtime;
  return new Promise((resolve) => {
    const respond = (ok: boolean) => {
      if (!ok) return resolve(false);
      applied?.();
      // With durable streams, where this node's delivery of the stream starts is read before it subscribes.
      const stream =
        change.kind === 'join'
          ? `room:${change.room}`
          : change.kind === 'bind' && change.user !== undefined
            ? `user:${change.user}`
            : undefined;
      const joined = stream === undefined ? undefined : streams.known(stream);
      const subscribing = bridge.track(change);
      const connection = runtime.connection(change.id) as ServerConnection<unknown> | undefined;
      if (change.kind !== 'bind') streams.membership(change.id, change.kind, change.room);
      else if (connection !== undefined) recovery.bound(connection, change.user);
      // An adapter that subscribes per room or user says when it has: a join resolves once the
      // member receives every cross-node broadcast published from then on.
      const tracked = joined === undefined ? subscribing : Promise.all([subscribing, joined]).then(([subscribed]) => subscribed ?? true);
      if (tracked === undefined) return resolve(true);
      void tracked.then((subscribed) => {
        if (subscribed || change.kind === 'leave') return resolve(true);
        // Reported and counted by the bridge (`presence update` failed); the join is not kept.
        if (change.kind === 'join' && connection !== undefined) void connection.leave(change.room).then(() => resolve(false));
        else resolve(false);
      });
    };
    const { id } = change;
    if (change.kind === 'bind') supervisor.send({ type: 'user.bind', id, user: change.user, respond });
    else supervisor.send({ type: change.kind === 'join' ? 'room.join' : 'room.leave', id, room: change.room, respond });
  });
}
