import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { createActor, type Actor } from 'xstate';
import { CONNECTION_ACTOR_ID, type ConnectionOutput } from '../machines/connection.machine.js';
import type { DirectoryView } from '../machines/directory.js';
import type { SupervisorDirectory, SupervisorEvent } from '../machines/supervisor.machine.js';
import type { EncodedFrame, Target } from '../machines/types.js';
import { provideConnectionMachine, provideSupervisorMachine, type ConnectionMachine, type SupervisorMachine } from './actors.js';
import type { AdapterNode, BroadcastMessage, PresenceChange } from './adapter.js';
import { Refusal, admit, type Grant } from './admission.js';
import type { BroadcastOptions, Runtime, RuntimeEvents, RuntimeMetrics } from './api.js';
import { CloseCode } from './close-codes.js';
import { ServerConnection, encode, type Connection, type ConnectionHost, type DropReason, type SendData } from './connection.js';
import { BerthError, ErrorCode, toBerthError, type ErrorCodeValue } from './errors.js';
import { EventHub } from './events.js';
import { FlushScheduler } from './flush-scheduler.js';
import { healthOf, type Health } from './health.js';
import { Metrics } from './metrics.js';
import { assertName } from './names.js';
import { resolveOptions, type ResolvedOptions, type RuntimeOptions } from './options.js';
import type { OutboxLimits } from './outbox.js';
import { guardPresence, sortedRecord, type Presence } from './presence.js';
import { indexScheduledEvents } from './scheduler.js';
import { isThenable } from './thenable.js';
import { Transport, type SocketSink, type TransportSocket } from './transport.js';

type RuntimeState = 'running' | 'closing' | 'closed';

const SHUTDOWN_REASON = 'server shutting down';

const noRooms: ReadonlySet<string> = new Set();

/** Creates a runtime; with `port` it starts listening at once (await `ready`). */
export function createRuntime<TData = unknown>(options: RuntimeOptions<TData> = {}): Runtime<TData> {
  return new BerthRuntime(resolveOptions(options));
}

class BerthRuntime<TData> implements Runtime<TData>, ConnectionHost<TData> {
  readonly nodeId = randomBytes(4).toString('hex');
  readonly ready: Promise<void>;
  readonly supervisor: Actor<SupervisorMachine>;
  readonly #options: ResolvedOptions<TData>;
  readonly #events = new EventHub<RuntimeEvents<TData>>();
  readonly #connections = new Map<string, ServerConnection<TData>>();
  readonly #connectionLogic: ConnectionMachine;
  readonly #transport: Transport<Grant<TData>>;
  readonly #started = performance.now();
  readonly #metrics: Metrics;
  readonly metrics: RuntimeMetrics;
  readonly presence: Presence;
  /** Recipients of the broadcast the supervisor delivered last (set by its deliver action). */
  #lastRecipients = 0;
  readonly scheduler = new FlushScheduler({
    afterFlush: () => this.#metrics.flushed(),
    onError: (error) => this.#report(toBerthError(ErrorCode.SEND_FAILED, 'flushing an outbox failed', error)),
  });
  #sequence = 0;
  #state: RuntimeState = 'running';
  #closing: Promise<void> | undefined;

  constructor(options: ResolvedOptions<TData>) {
    this.#options = options;
    const runtime = this;
    this.#metrics = new Metrics({
      get connections() {
        return runtime.#connections.size;
      },
      get pending() {
        return runtime.#transport.pending;
      },
      get rooms() {
        return runtime.#directory().rooms.size;
      },
      get users() {
        return runtime.#directory().users.size;
      },
      *outboxes() {
        for (const connection of runtime.#connections.values()) yield connection.outbox;
      },
    });
    const metrics = this.#metrics;
    this.metrics = {
      snapshot: () => metrics.snapshot(),
      prometheus: () => metrics.prometheus(),
      register: (registry) => metrics.register(registry),
      registry: metrics.registry,
    };
    this.#connectionLogic = provideConnectionMachine(
      (id) => this.#connections.get(id) as ServerConnection<unknown> | undefined,
      { send: (event) => this.supervisor.send(event) },
    );
    // XState spreads options over its defaults, so an `undefined` clock would replace the real one.
    this.supervisor = createActor(provideSupervisorMachine((recipients) => (this.#lastRecipients = recipients)), {
      input: {},
      id: 'supervisor',
      systemId: 'supervisor',
      ...(options.inspect && { inspect: options.inspect }),
      ...(options.clock && { clock: options.clock }),
    });
    indexScheduledEvents(this.supervisor.system);
    this.supervisor.subscribe({
      error: (error) => {
        // A bug in berth: nothing can be registered or broadcast from here on.
        this.#report(toBerthError(ErrorCode.ACTOR_FAILED, 'supervisor failed', error));
      },
    });
    this.supervisor.start();

    const policy = {
      maxConnections: options.maxConnections,
      retryAfterSeconds: options.retryAfterSeconds,
      allowedOrigins: options.allowedOrigins,
      authenticate: options.authenticate,
      load: () => this.#connections.size + this.#transport.pending,
      admitting: () => this.#state === 'running',
    };
    this.#transport = new Transport<Grant<TData>>(options, {
      admit: (request) => {
        const decision = admit(policy, request);
        return decision instanceof Promise ? decision.then((d) => this.#noteRefusal(d, request)) : this.#noteRefusal(decision, request);
      },
      open: (socket, request, grant) => this.#open(socket, request, grant),
      admissionFailed: (error, request) => {
        this.#metrics.refused(500);
        this.#report(toBerthError(ErrorCode.AUTHENTICATE_FAILED, `admission of ${request.url ?? '/'} failed`, error));
      },
    });
    const node: AdapterNode = {
      nodeId: this.nodeId,
      deliver: (message) => this.#deliverRemote(message),
      dropped: (count) => this.#metrics.crossNode('dropped', count),
      linkChanged: (up, error) => this.#linkChanged(up, error),
      failed: (error, what) => this.#report(toBerthError(ErrorCode.ADAPTER, `adapter ${what} failed`, error)),
      presence: this.#localPresence(),
    };
    this.presence = guardPresence(options.adapter.presence ?? node.presence);
    // A throwing attach rejects `ready` like a failing one, rather than escaping with the port already bound.
    const attached = new Promise<void>((resolve) => resolve(options.adapter.attach(node)));
    this.ready = Promise.all([this.#transport.listening, attached]).then(() => undefined);
    // `ready` rejects for whoever awaits it; an unawaited failure must not crash the process.
    this.ready.catch(() => {});
  }

  on<K extends keyof RuntimeEvents<TData>>(type: K, handler: (event: RuntimeEvents<TData>[K]) => unknown): void {
    this.#events.on(type, handler);
  }

  off<K extends keyof RuntimeEvents<TData>>(type: K, handler?: (event: RuntimeEvents<TData>[K]) => unknown): void {
    this.#events.off(type, handler);
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
      this.#metrics.snapshot(),
      {
        state: this.#state,
        nodeId: this.nodeId,
        uptimeSeconds: Math.round((performance.now() - this.#started) / 1000),
        maxConnections: this.#options.maxConnections,
      },
      this.#options.health,
    );
  }

  snapshot(): DirectoryView {
    return this.#directory().toJSON();
  }

  close(options?: { timeoutMs?: number }): Promise<void> {
    this.#closing ??= this.#shutdown(options?.timeoutMs ?? this.#options.closeTimeoutMs);
    return this.#closing;
  }

  // ConnectionHost: what connections ask of the runtime.

  get rateLimit(): ResolvedOptions<TData>['rateLimit'] {
    return this.#options.rateLimit;
  }

  get outboxLimits(): OutboxLimits {
    return this.#options.outbox;
  }

  sendToSupervisor(event: SupervisorEvent): void {
    this.supervisor.send(event);
  }

  rooms(id: string): ReadonlySet<string> {
    return this.#directory().connections.get(id)?.rooms ?? noRooms;
  }

  track(change: PresenceChange): void {
    const { adapter } = this.#options;
    if (adapter.track === undefined) return;
    this.#callAdapter(() => adapter.track!(change), 'presence update');
  }

  received(connection: ServerConnection<TData>, data: string | Buffer, binary: boolean): void {
    this.#emit('message', { connection, data, binary }, connection);
  }

  dropped(connection: ServerConnection<TData>, reason: DropReason, count: number): void {
    this.#metrics.dropped(reason, count);
    if (this.#events.has('drop')) this.#emit('drop', { connection, reason, count }, connection);
  }

  socketFailed(connection: ServerConnection<TData>, error: Error, closeCode: number): void {
    const failure = toBerthError(ErrorCode.SOCKET, `connection ${connection.id} closed with ${closeCode}`, error);
    this.#report(failure, connection);
  }

  sendFailed(connection: ServerConnection<TData>, error: Error): void {
    this.#report(toBerthError(ErrorCode.SEND_FAILED, `send to ${connection.id} failed`, error), connection);
    connection.sendFailed(error.message);
  }

  leaving(connection: ServerConnection<TData>): void {
    this.track({ kind: 'disconnect', id: connection.id });
  }

  closed(connection: ServerConnection<TData>, output: ConnectionOutput): void {
    this.#connections.delete(connection.id);
    this.#metrics.closed(output.code, output.cause);
    // Runs inside the connection actor's transition: the application hears of it once every actor is at rest.
    queueMicrotask(() =>
      this.#emit('close', { connection, code: output.code, reason: output.reason, cause: output.cause }),
    );
  }

  // Internals.

  #directory(): SupervisorDirectory {
    return this.supervisor.getSnapshot().context.directory;
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
    const connection = new ServerConnection<TData>(id, socket, request, grant, this);
    if (this.#state !== 'running') {
      // Admitted just before shutdown began.
      socket.close(CloseCode.GOING_AWAY, SHUTDOWN_REASON);
      return connection;
    }
    this.#connections.set(id, connection);
    const actor = createActor(this.#connectionLogic, {
      parent: this.supervisor,
      // No systemId: registering one costs a Map and a WeakMap entry per connection, and the
      // connection id is in the actor's context for whoever inspects it.
      id: CONNECTION_ACTOR_ID,
      input: { id, heartbeat: this.#options.heartbeat, closeTimeoutMs: this.#options.closeTimeoutMs },
    });
    connection.attach(actor);
    actor.subscribe({ error: (error) => this.#connectionFailed(id, error) });
    actor.start();
    if (actor.getSnapshot().status !== 'active') return connection;
    let registered = false;
    this.supervisor.send({
      type: 'connection.register',
      id,
      ref: actor,
      port: connection,
      user: grant.user,
      respond: (ok) => {
        registered = ok;
        if (!ok) actor.send({ type: 'runtime.shutdown', code: CloseCode.GOING_AWAY, reason: SHUTDOWN_REASON });
      },
    });
    if (registered) {
      this.#metrics.accepted();
      this.track({ kind: 'connect', id, user: grant.user });
      this.#emit('connection', connection, connection);
    }
    return connection;
  }

  #broadcast(target: Target, data: SendData, options: BroadcastOptions | undefined): void {
    // Framed once here; every local recipient's outbox holds a reference to the same bytes.
    const frame = encode(data, options?.binary);
    if (this.#state === 'closed') return;
    const except = typeof options?.except === 'object' ? options.except.id : options?.except;
    this.#deliverLocally(target, except, frame);
    const message: BroadcastMessage = {
      target,
      except,
      data: data instanceof ArrayBuffer ? new Uint8Array(data) : data,
      binary: options?.binary ?? typeof data !== 'string',
    };
    const { adapter } = this.#options;
    this.#metrics.crossNode('published');
    this.#callAdapter(() => adapter.publish(message), 'publish', () => this.#metrics.crossNode('dropped'));
  }

  /** A broadcast another node published: framed once here, for this node's recipients. */
  #deliverRemote(message: BroadcastMessage): void {
    this.#metrics.crossNode('received');
    let frame: EncodedFrame;
    try {
      frame = encode(message.data, message.binary);
    } catch (error) {
      this.#report(toBerthError(ErrorCode.ADAPTER, 'adapter delivered a message that cannot be framed', error));
      return;
    }
    this.#deliverLocally(message.target, message.except, frame);
  }

  /** One supervisor event per broadcast, whatever the number of recipients. */
  #deliverLocally(target: Target, except: string | undefined, frame: EncodedFrame): void {
    // Once the supervisor has stopped (shutdown, last connection gone) nobody local is left to receive it.
    if (this.supervisor.getSnapshot().status !== 'active') return;
    const startedAt = performance.now();
    this.#lastRecipients = 0;
    this.supervisor.send({ type: 'broadcast', target, except, frame });
    this.#metrics.broadcast(this.#lastRecipients, startedAt);
  }

  #linkChanged(up: boolean, error: unknown): void {
    if (!this.#metrics.link(up)) return;
    // Reported once per outage, not once per broadcast it drops.
    if (!up) this.#report(toBerthError(ErrorCode.ADAPTER, 'cluster link down, broadcasts stay on this node', error ?? 'no cause given'));
  }

  /** This node's presence, from its directory: for adapters, and for those that keep none. */
  #localPresence(): Presence {
    const ids = (members: Iterable<{ id: string }> | undefined) => [...(members ?? [])].map((entry) => entry.id).sort();
    return {
      nodes: async () => [this.nodeId],
      rooms: async () => sortedRecord(Object.fromEntries([...this.#directory().rooms].map(([room, members]) => [room, members.size]))),
      roomSize: async (room) => this.#directory().rooms.get(room)?.size ?? 0,
      roomMembers: async (room) => ids(this.#directory().rooms.get(room)),
      roomUsers: async (room) => [...(this.#directory().rooms.get(room) ?? [])].flatMap((entry) => entry.user ?? []).sort(),
      userConnections: async (user) => ids(this.#directory().users.get(user)),
      onlineUsers: async () => [...this.#directory().users.keys()].sort(),
    };
  }

  #callAdapter(call: () => void | Promise<void>, what: string, onFailure?: () => void): void {
    const fail = (error: unknown) => {
      onFailure?.();
      this.#report(toBerthError(ErrorCode.ADAPTER, `adapter ${what} failed`, error));
    };
    try {
      const result = call();
      // Adapters may return any thenable, not only native promises.
      if (isThenable(result)) Promise.resolve(result).catch(fail);
    } catch (error) {
      fail(error);
    }
  }

  /** Emits to the application; a failing handler costs at most its connection. */
  #emit<K extends keyof RuntimeEvents<TData>>(type: K, payload: RuntimeEvents<TData>[K], connection?: ServerConnection<TData>): void {
    this.#events.emit(type, payload, (error) => {
      if (type === 'error') {
        console.error('berth: an error handler threw', error);
        return;
      }
      this.#report(toBerthError(ErrorCode.HANDLER_FAILED, `${String(type)} handler failed`, error), connection);
      if (connection !== undefined && (type === 'connection' || type === 'message' || type === 'drop')) {
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
    connection?.socket.terminate();
    this.#report(toBerthError(ErrorCode.ACTOR_FAILED, `connection ${id} failed`, error), connection);
    if (connection !== undefined) connection.markClosed({ id, code: CloseCode.ABNORMAL, reason: '', cause: 'socket-error' });
    this.supervisor.send({ type: 'connection.failed', id });
  }

  async #shutdown(timeoutMs: number): Promise<void> {
    if (this.#state !== 'running') return;
    this.#state = 'closing';
    const stopped = new Promise<void>((resolve) => {
      if (this.supervisor.getSnapshot().status !== 'active') resolve();
      else this.supervisor.subscribe({ complete: resolve, error: () => resolve() });
    });
    this.supervisor.send({ type: 'runtime.shutdown', code: CloseCode.GOING_AWAY, reason: SHUTDOWN_REASON });
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
    try {
      await this.#options.adapter.close();
    } catch (error) {
      this.#report(toBerthError(ErrorCode.ADAPTER, 'adapter close failed', error));
    }
    this.#metrics.stop();
    this.#state = 'closed';
  }
}
