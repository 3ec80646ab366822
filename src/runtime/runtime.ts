import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { SupervisorDirectory } from '../../machines/supervisor.machine.js';
import type { Target } from '../../machines/types.js';
import type { Presence } from '../cluster/presence.js';
import { realTimers, type Timers } from '../util/timers.js';
import { provideConnectionMachine, provideSupervisorMachine } from '../connection/actors.js';
import { Refusal, admit, type Grant } from '../connection/admission.js';
import { CloseCode } from '../connection/close-codes.js';
import { ServerConnection, type Connection, type ConnectionHost } from '../connection/connection.js';
import { Transport, type SocketSink, type TransportSocket } from '../connection/transport.js';
import { FlushScheduler } from '../delivery/flush-scheduler.js';
import type { SendData } from '../delivery/frame.js';
import { OutboxLedger } from '../delivery/outbox.js';
import { Deflater } from '../delivery/deflate.js';
import { healthOf, type Health } from '../observability/health.js';
import { liveCounts, Metrics } from '../observability/metrics.js';
import { PROTOCOL_V1, offersResume, welcomeFrame } from '../protocol/v1.js';
import { BerthError, ErrorCode, toBerthError, type ErrorCodeValue } from '../util/errors.js';
import { EventHub } from '../util/event-hub.js';
import { assertName } from '../util/validate.js';
import { RUNTIME_EVENTS } from './api.js';
import type { BroadcastOptions, RequestHandler, Runtime, RuntimeEvents, RuntimeMetrics, RuntimeSnapshot } from './api.js';
import { Broadcasts } from './broadcasts.js';
import { ClusterBridge } from './cluster-bridge.js';
import { durableDelivery, type DurableDelivery } from './durable.js';
import { connectionHost, hostNow, type HostRuntime } from './connection-host.js';
import { resolveOptions, type ResolvedOptions, type RuntimeOptions } from './options.js';
import { HeartbeatSweep } from '../connection/heartbeat.js';
import { Recovery } from './recovery/recovery.js';
import { Requests } from './requests.js';
import { Streams } from './streams.js';
import { startSupervisor, supervisorSessions, type SupervisorRunner } from './supervisor.js';
import type { SupervisorView } from './supervisor-view.js';

type RuntimeState = 'running' | 'closing' | 'closed';

const SHUTDOWN_REASON = 'server shutting down';
/** How long a `berth.v1` client closed by a shutdown waits before it comes back (spread over up to twice that). */
const DRAIN_RETRY_AFTER_SECONDS = 1;

/** Creates a runtime; with `port` it starts listening at once (await `ready`). */
export function createRuntime<TData = unknown>(options: RuntimeOptions<TData> = {}): Runtime<TData> {
  return new BerthRuntime(resolveOptions(options));
}

/**
 * The runtime: admission and the connections' registry, wired to its
 * collaborators — the supervisor (rooms, users, sessions), broadcasts, the
 * `berth.v1` streams and session recovery, and the bridge to the other nodes.
 */
class BerthRuntime<TData> implements Runtime<TData> {
  readonly nodeId = randomBytes(4).toString('hex');
  readonly ready: Promise<void>;
  readonly supervisor: SupervisorView;
  readonly metrics: RuntimeMetrics;
  readonly presence: Presence;
  readonly #supervisor: SupervisorRunner;
  readonly #host: ConnectionHost<TData>;
  readonly #options: ResolvedOptions<TData>;
  readonly #events = new EventHub<RuntimeEvents<TData>>(RUNTIME_EVENTS);
  readonly #connections = new Map<string, ServerConnection<TData>>();
  readonly #transport: Transport<Grant<TData>>;
  readonly #started = performance.now();
  readonly #metrics: Metrics;
  readonly #ledger = new OutboxLedger();
  /** Compresses each message once for every connection that negotiated permessage-deflate. */
  readonly #deflater: Deflater | undefined;
  readonly #scheduler: FlushScheduler;
  #sequence = 0;
  readonly #requests = new Requests<TData>((error, connection) => this.#report(error, connection));
  readonly #streams: Streams;
  readonly #recovery: Recovery;
  readonly #broadcasts: Broadcasts;
  readonly #bridge: ClusterBridge;
  /** With an adapter that keeps durable streams: the engine numbers, keeps and delivers them. */
  readonly #durable: DurableDelivery | undefined;
  /** The runtime's clock's timers (simulated in scenarios), for what is not an actor's delay. */
  readonly #timers: Timers;
  /** Pings every open connection and reports its missed pongs; none when `heartbeat` is off. */
  readonly #heartbeat: HeartbeatSweep<ServerConnection<TData>> | undefined;
  #state: RuntimeState = 'running';
  #closing: Promise<void> | undefined;

  constructor(options: ResolvedOptions<TData>) {
    this.#options = options;
    this.#deflater = options.compression === undefined ? undefined : new Deflater(options.compression);
    this.#metrics = new Metrics(
      liveCounts({
        connections: () => this.#connections,
        pending: () => this.#transport.pending,
        directory: () => this.#directory(),
        ledger: this.#ledger,
      }),
    );
    const metrics = this.#metrics;
    this.metrics = {
      snapshot: () => metrics.snapshot(),
      prometheus: () => metrics.prometheus(),
      register: (registry) => metrics.register(registry),
      registry: metrics.registry,
    };
    this.#scheduler = new FlushScheduler({
      afterFlush: () => metrics.flushed(),
      onError: (error) => this.#report(toBerthError(ErrorCode.SEND_FAILED, 'flushing an outbox failed', error)),
    });
    const lookup = (id: string) => this.#connections.get(id) as ServerConnection<unknown> | undefined;
    const clock = options.clock;
    this.#timers = clock ?? realTimers;
    this.#heartbeat =
      options.heartbeat === null
        ? undefined
        : new HeartbeatSweep(options.heartbeat, this.#timers, hostNow(clock), {
            pinged: (count) => metrics.heartbeat('pings', count),
            ponged: () => metrics.heartbeat('pongs', 1),
            missed: (count) => metrics.heartbeat('missed', count),
            // A ping is a write: one that fails ends its connection as any failed write does.
            failed: (connection, error) => this.#host.sendFailed(connection, error instanceof Error ? error : new Error(String(error))),
          });
    this.#supervisor = startSupervisor(
      provideSupervisorMachine({
        sessionExpired: () => metrics.session('expired'),
        broadcasting: (target) => this.#scheduler.broadcasting(target),
        broadcasted: (recipients) => this.#scheduler.broadcasted(recipients),
        deliveryFailed: (error) => this.#report(toBerthError(ErrorCode.SEND_FAILED, 'delivering a broadcast failed', error)),
      }),
      {
        input: { maxSessions: options.recovery?.maxSessions ?? 0 },
        inspect: options.inspect,
        clock: options.clock,
        timers: this.#timers,
        connectionLogic: provideConnectionMachine(lookup, { send: (event) => this.#supervisor.send(event) }),
        failed: (error) => this.#report(toBerthError(ErrorCode.ACTOR_FAILED, 'supervisor failed', error)),
        callbackFailed: (error, what) => this.#report(toBerthError(ErrorCode.HANDLER_FAILED, `${what} failed`, error)),
        connectionFailed: (id, error) => this.#connectionFailed(id, error),
      },
    );
    this.supervisor = this.#supervisor.view;
    this.#bridge = new ClusterBridge({
      nodeId: this.nodeId,
      adapter: options.adapter,
      metrics,
      deliver: (message) => this.#broadcasts.received(message),
      lost: (target, count, origin) => this.#emit('lost', { target, count, origin, reason: 'missed' }),
      report: (error) => this.#report(error),
      directory: () => this.#directory(),
      replace: (id) => this.#connections.get(id)?.replace(),
    });
    this.presence = this.#bridge.presence;
    const durable = (this.#durable = durableDelivery(options.adapter, {
      nodeId: this.nodeId,
      maxSessions: options.recovery?.maxSessions ?? 0,
      supervisor: this.#supervisor,
      streams: () => this.#streams,
      metrics,
      directory: () => this.#directory(),
      report: (error) => this.#report(error),
      lost: (target, count, reason) => this.#emit('lost', { target, count, origin: '', reason }),
    }));
    this.#streams = new Streams({
      history: options.history,
      connection: lookup,
      dropped: (reason, count) => metrics.dropped(reason, count),
      report: (error) => this.#report(error),
      share: (frame, stream) => this.#deflater?.share(frame, `v1 ${stream}`),
      attached: (connection, stream, position) =>
        position === undefined ? this.#recovery.detached(connection, stream) : this.#recovery.attached(connection, stream, position),
      whenKnown: durable && ((stream, then) => durable.feeds.whenKnown(stream, then)),
      direct: durable && ((connection, payload) => durable.direct(connection, payload)),
    });
    this.#recovery = new Recovery({
      windowMs: options.recovery?.windowMs ?? 0,
      resumeTimeoutMs: options.recovery?.resumeTimeoutMs ?? 0,
      history: durable?.history ?? options.history,
      sessions: durable?.sessions ?? supervisorSessions(this.#supervisor),
      shared: durable !== undefined,
      timers: this.#timers,
      running: () => this.#state === 'running',
      position: (stream, then) => (durable ?? this.#streams).position(stream, then),
      outcome: (outcome) => metrics.session(outcome),
      resumed: (connection, outcome) =>
        this.#emit('resumed', { connection: connection as ServerConnection<TData>, ...outcome }, connection as ServerConnection<TData>),
      dropped: (connection, reason, count) => this.#host.dropped(connection as ServerConnection<TData>, reason, count),
      failed: (error) => this.#report(toBerthError(ErrorCode.ACTOR_FAILED, 'a resume failed', error)),
      historyFailed: (stream, error) =>
        this.#report(toBerthError(ErrorCode.HISTORY, `reading the history of ${stream} for a resume failed`, error)),
    });
    this.#broadcasts = new Broadcasts({
      durable,
      supervisor: this.#supervisor,
      streams: this.#streams,
      recovery: this.#recovery,
      bridge: this.#bridge,
      deflater: this.#deflater,
      metrics,
      report: (error) => this.#report(error),
    });
    this.#host = connectionHost(this.#hostRuntime());
    const policy = {
      maxConnections: options.maxConnections,
      retryAfterSeconds: options.retryAfterSeconds,
      allowedOrigins: options.allowedOrigins,
      authenticate: options.authenticate,
      load: () => this.#connections.size + this.#transport.pending,
      admitting: () => this.#state === 'running',
    };
    this.#transport = new Transport<Grant<TData>>(
      { ...options, protocol: PROTOCOL_V1 },
      {
        admit: (request) => {
          const decision = admit(policy, request);
          return decision instanceof Promise ? decision.then((d) => this.#noteRefusal(d, request)) : this.#noteRefusal(decision, request);
        },
        open: (socket, request, grant) => this.#open(socket, request, grant),
        admissionFailed: (error, request) => {
          metrics.refused(500);
          this.#report(toBerthError(ErrorCode.AUTHENTICATE_FAILED, `admission of ${request.url ?? '/'} failed`, error));
        },
      },
    );
    this.ready = Promise.all([this.#transport.listening, this.#bridge.attached]).then(() => undefined);
    // `ready` rejects for whoever awaits it; an unawaited failure must not crash the process.
    this.ready.catch(() => {});
  }

  on<K extends keyof RuntimeEvents<TData>>(type: K, handler: (event: RuntimeEvents<TData>[K]) => unknown): () => void {
    return this.#events.on(type, handler);
  }

  off<K extends keyof RuntimeEvents<TData>>(type: K, handler?: (event: RuntimeEvents<TData>[K]) => unknown): void {
    this.#events.off(type, handler);
  }

  onRequest(handler: RequestHandler<TData> | undefined): void {
    this.#requests.handler = handler;
  }

  address(): AddressInfo | null {
    const address = this.#transport.address();
    return typeof address === 'object' ? address : null;
  }

  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.#transport.handleUpgrade(request, socket, head);
  }

  sendToRoom(room: string, data: SendData, options?: BroadcastOptions): void {
    assertName('room', room);
    this.#broadcast({ kind: 'room', room }, data, options);
  }

  sendToUser(user: string, data: SendData, options?: BroadcastOptions): void {
    assertName('user', user);
    this.#broadcast({ kind: 'user', user }, data, options);
  }

  sendToAll(data: SendData, options?: BroadcastOptions): void {
    this.#broadcast({ kind: 'all' }, data, options);
  }

  connection(id: string): Connection<TData> | undefined {
    return this.#connections.get(id);
  }

  health(): Health {
    return healthOf(
      this.#metrics.snapshot('health'),
      {
        state: this.#state,
        nodeId: this.nodeId,
        uptimeSeconds: Math.round((performance.now() - this.#started) / 1000),
        maxConnections: this.#options.maxConnections,
      },
      this.#options.health,
    );
  }

  snapshot(): RuntimeSnapshot {
    const view = this.#directory().toJSON();
    const connections: RuntimeSnapshot['connections'] = {};
    for (const [id, entry] of Object.entries(view.connections)) {
      const connection = this.#connections.get(id);
      connections[id] = { ...entry, heartbeat: connection?.heartbeat ?? { phase: 'off', roundTripMs: undefined } };
    }
    return { ...view, connections };
  }

  close(options?: { timeoutMs?: number }): Promise<void> {
    this.#closing ??= this.#shutdown(options?.timeoutMs ?? this.#options.closeTimeoutMs);
    return this.#closing;
  }

  // Internals.

  #broadcast(target: Target, data: SendData, options: BroadcastOptions | undefined): void {
    // While closing, a broadcast (a close handler's "left", say) still reaches the other nodes; once
    // closed, nothing can carry it.
    if (this.#state === 'closed')
      throw new BerthError(ErrorCode.CLOSED, `the runtime is closed: this ${target.kind} broadcast would reach nobody`);
    this.#broadcasts.send(target, data, options);
  }

  /** What the connections' host reaches of the runtime. */
  #hostRuntime(): HostRuntime<TData> {
    return {
      options: this.#options,
      scheduler: this.#scheduler,
      ledger: this.#ledger,
      deflater: this.#deflater,
      heartbeat: this.#heartbeat,
      supervisor: this.#supervisor,
      streams: this.#streams,
      recovery: this.#recovery,
      bridge: this.#bridge,
      requests: this.#requests,
      metrics: this.#metrics,
      connection: (id) => this.#connections.get(id),
      forget: (id) => {
        this.#connections.delete(id);
        this.#durable?.closed(id);
      },
      emit: (type, payload, connection) => this.#emit(type, payload, connection),
      hasListener: (type) => this.#events.has(type),
      report: (error, connection) => this.#report(error, connection),
    };
  }

  #directory(): SupervisorDirectory {
    return this.#supervisor.context.directory;
  }

  #noteRefusal(decision: Grant<TData> | Refusal, request: IncomingMessage): Grant<TData> | Refusal {
    if (decision instanceof Refusal) {
      this.#metrics.refused(decision.status);
      this.#emit('refused', { status: decision.status, reason: decision.reason, request });
    }
    return decision;
  }

  #open(socket: TransportSocket, request: IncomingMessage, grant: Grant<TData>): SocketSink {
    const id = `${this.nodeId}-${(++this.#sequence).toString(36)}`;
    const connection = new ServerConnection<TData>(id, socket, request, grant, this.#host);
    if (this.#state !== 'running') {
      // Admitted just before shutdown began.
      socket.close(CloseCode.GOING_AWAY, SHUTDOWN_REASON);
      return connection;
    }
    this.#connections.set(id, connection);
    const { lifecycle, ref, ended } = this.#supervisor.connection({ id, closeTimeoutMs: this.#options.closeTimeoutMs });
    connection.attach(lifecycle);
    if (ended) return connection;
    let registered = false;
    this.#supervisor.send({
      type: 'connection.register',
      id,
      ref,
      port: connection,
      user: grant.user,
      respond: (ok) => {
        registered = ok;
        if (!ok) lifecycle.send({ type: 'runtime.shutdown', code: CloseCode.GOING_AWAY, reason: SHUTDOWN_REASON });
      },
    });
    if (!registered) return connection;
    if (connection.enveloped) {
      this.#durable?.opened(id);
      const token =
        this.#options.recovery === null
          ? undefined
          : this.#recovery.open(connection, offersResume(request.headers['sec-websocket-protocol']));
      // Written ahead of anything held for a resume: the welcome is always first.
      connection.write(welcomeFrame(id, token));
    }
    this.#heartbeat?.add(connection);
    this.#durable?.connected(grant.user);
    this.#metrics.accepted();
    void this.#bridge.track({ kind: 'connect', id, user: grant.user });
    this.#emit('connection', connection, connection);
    return connection;
  }

  /** Emits to the application; a failing handler costs at most its connection. */
  #emit<K extends keyof RuntimeEvents<TData>>(type: K, payload: RuntimeEvents<TData>[K], connection?: ServerConnection<TData>): void {
    this.#events.emit(type, payload, (error) => {
      if (type === 'error') {
        console.error('berth: an error handler threw', error);
        return;
      }
      this.#report(toBerthError(ErrorCode.HANDLER_FAILED, `${String(type)} handler failed`, error), connection);
      if (connection !== undefined && (type === 'connection' || type === 'message' || type === 'dropped')) {
        connection.closeFor('handler-error', CloseCode.INTERNAL_ERROR, 'internal error');
      }
    });
  }

  #report(error: BerthError, connection?: ServerConnection<TData>): void {
    this.#metrics.error(error.code as ErrorCodeValue);
    if (!this.#events.has('error')) {
      console.error(`berth: ${error.code}: ${error.message}`);
      return;
    }
    this.#emit('error', connection === undefined ? { error } : { error, connection });
  }

  #connectionFailed(id: string, error: unknown): void {
    const connection = this.#connections.get(id);
    connection?.terminateSocket();
    this.#report(toBerthError(ErrorCode.ACTOR_FAILED, `connection ${id} failed`, error), connection);
    if (connection !== undefined) {
      // The actor never reached `disconnecting`, so presence has not heard that it left.
      if (connection.state === 'open') void this.#bridge.track({ kind: 'disconnect', id });
      connection.markClosed({ id, code: CloseCode.ABNORMAL, reason: '', cause: 'socket-error' });
    }
    this.#supervisor.send({ type: 'connection.failed', id });
  }

  async #shutdown(timeoutMs: number): Promise<void> {
    if (this.#state !== 'running') return;
    this.#state = 'closing';
    const stopped = new Promise<void>((resolve) => {
      this.#supervisor.onStopped(resolve);
    });
    // `berth.v1` clients are told to come back in a moment, to another node (this one admits no one
    // now): with durable streams their sessions are kept in the engine and resume there.
    for (const connection of this.#connections.values())
      if (connection.enveloped) connection.shutdown(CloseCode.SERVICE_RESTART, `retry-after=${DRAIN_RETRY_AFTER_SECONDS}`);
    this.#supervisor.send({ type: 'runtime.shutdown', code: CloseCode.GOING_AWAY, reason: SHUTDOWN_REASON });
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    if ((await Promise.race([stopped, timedOut])) === 'timeout') {
      // Peers that did not finish the closing handshake in time lose their sockets;
      // each socket's close event then ends its actor.
      for (const connection of this.#connections.values()) connection.socket.terminate();
      await stopped;
    }
    clearTimeout(timer);
    await this.#transport.close();
    await this.#bridge.close();
    this.#durable?.close();
    this.#heartbeat?.stop();
    this.#metrics.stop();
    this.#deflater?.close();
    this.#state = 'closed';
  }
}
