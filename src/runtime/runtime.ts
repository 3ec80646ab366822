import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { SessionRecord } from '../../machines/sessions.js';
import type { SupervisorDirectory } from '../../machines/supervisor.machine.js';
import type { CloseCause, EncodedFrame, Target } from '../../machines/types.js';
import type { AdapterNode, BroadcastMessage } from '../cluster/adapter.js';
import { directoryPresence } from '../cluster/local-presence.js';
import { guardPresence, type Presence, type PresenceChange } from '../cluster/presence.js';
import { realTimers, type Timers } from '../util/timers.js';
import { provideConnectionMachine, provideSupervisorMachine } from '../connection/actors.js';
import { Refusal, admit, type Grant } from '../connection/admission.js';
import { CloseCode } from '../connection/close-codes.js';
import {
  ServerConnection,
  type Connection,
  type ConnectionHost,
  type EnvelopedState,
  type MembershipRequest,
} from '../connection/connection.js';
import { Transport, type SocketSink, type TransportSocket } from '../connection/transport.js';
import { FlushScheduler } from '../delivery/flush-scheduler.js';
import { encode, encodeCheck, toPayload, type SendData } from '../delivery/frame.js';
import { OutboxLedger } from '../delivery/outbox.js';
import { Deflater } from '../delivery/deflate.js';
import { healthOf, type Health } from '../observability/health.js';
import { Metrics } from '../observability/metrics.js';
import {
  CONNECTION_STREAM_PREFIX,
  connectionStream,
  errorFrame,
  joinedFrame,
  PROTOCOL_V1,
  ProtocolErrorCode,
  RESUME_INTENT,
  resumedFrame,
  streamOf,
  welcomeFrame,
  type Payload,
} from '../protocol/v1.js';
import type { StreamPosition } from '../history/store.js';
import { ErrorCode, toBerthError, type BerthError, type ErrorCodeValue } from '../util/errors.js';
import { EventHub } from '../util/event-hub.js';
import { isThenable } from '../util/thenable.js';
import { assertName } from '../util/validate.js';
import type { BroadcastOptions, RequestHandler, Runtime, RuntimeEvents, RuntimeMetrics, RuntimeSnapshot } from './api.js';
import { resolveOptions, type Clock, type ResolvedOptions, type RuntimeOptions } from './options.js';
import { HeartbeatSweep } from '../connection/heartbeat.js';
import { ReplayFrames } from './replay-frames.js';
import { Requests } from './requests.js';
import { sessionToken } from './sessions.js';
import { Streams } from './streams.js';
import { startSupervisor, type SupervisorRunner } from './supervisor.js';
import type { SupervisorView } from './supervisor-view.js';

type RuntimeState = 'running' | 'closing' | 'closed';

/** Whether the upgrade request offered this subprotocol. */
function offers(request: IncomingMessage, protocol: string): boolean {
  const offered = request.headers['sec-websocket-protocol'];
  return offered !== undefined && offered.split(',').some((name) => name.trim() === protocol);
}

/** Milliseconds on the runtime's clock, or real time when it has no `now`. */
function hostNow(clock: Clock | undefined): () => number {
  return typeof clock?.now === 'function' ? () => clock.now!() : () => performance.now();
}

const SHUTDOWN_REASON = 'server shutting down';

/** Creates a runtime; with `port` it starts listening at once (await `ready`). */
export function createRuntime<TData = unknown>(options: RuntimeOptions<TData> = {}): Runtime<TData> {
  return new BerthRuntime(resolveOptions(options));
}

class BerthRuntime<TData> implements Runtime<TData> {
  readonly nodeId = randomBytes(4).toString('hex');
  readonly ready: Promise<void>;
  readonly supervisor: SupervisorView;
  readonly #supervisor: SupervisorRunner;
  /** What each connection may ask of this runtime. */
  readonly #host: ConnectionHost<TData>;
  readonly #options: ResolvedOptions<TData>;
  readonly #events = new EventHub<RuntimeEvents<TData>>();
  readonly #connections = new Map<string, ServerConnection<TData>>();
  readonly #transport: Transport<Grant<TData>>;
  readonly #started = performance.now();
  readonly #metrics: Metrics;
  readonly metrics: RuntimeMetrics;
  readonly presence: Presence;
  readonly #ledger = new OutboxLedger();
  /** Compresses each message once for every connection that negotiated permessage-deflate. */
  readonly #deflater: Deflater | undefined;
  readonly #scheduler = new FlushScheduler({
    afterFlush: () => this.#metrics.flushed(),
    onError: (error) => this.#report(toBerthError(ErrorCode.SEND_FAILED, 'flushing an outbox failed', error)),
  });
  #sequence = 0;
  readonly #requests = new Requests<TData>((error, connection) => this.#report(error, connection));
  readonly #streams: Streams;
  /** Streams of connections on their way out that may leave a session, and how many hold each (#holdStreams). */
  readonly #leavingStreams = new Map<string, number>();
  /** Replayed messages' frames, shared by every client that resumes: 8 MiB at most. */
  readonly #replayFrames = new ReplayFrames(8 * 1024 * 1024);
  /** The runtime's clock's timers (simulated in scenarios), for what is not an actor's delay. */
  readonly #timers: Timers;
  /** Pings every open connection and reports its missed pongs; none when `heartbeat` is off. */
  readonly #heartbeat: HeartbeatSweep<ServerConnection<TData>> | undefined;
  /** How long the sessions of dropped berth.v1 connections are kept (the supervisor keeps them); none when `recovery` is off. */
  readonly #recoveryWindowMs: number | undefined;
  #state: RuntimeState = 'running';
  #closing: Promise<void> | undefined;

  constructor(options: ResolvedOptions<TData>) {
    this.#options = options;
    this.#deflater = options.compression === undefined ? undefined : new Deflater(options.compression);
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
      get heldBytes() {
        return runtime.#ledger.heldBytes;
      },
    });
    const metrics = this.#metrics;
    this.metrics = {
      snapshot: () => metrics.snapshot(),
      prometheus: () => metrics.prometheus(),
      register: (registry) => metrics.register(registry),
      registry: metrics.registry,
    };
    const lookup = (id: string) => this.#connections.get(id) as ServerConnection<unknown> | undefined;
    const clock = options.clock;
    this.#timers = clock ?? realTimers;
    this.#heartbeat =
      options.heartbeat === null
        ? undefined
        : new HeartbeatSweep(options.heartbeat, this.#timers, hostNow(clock), {
            pinged: (count) => this.#metrics.heartbeat('pings', count),
            ponged: () => this.#metrics.heartbeat('pongs', 1),
            missed: (count) => this.#metrics.heartbeat('missed', count),
            // A ping is a write: one that fails ends its connection as any failed write does.
            failed: (connection, error) => this.#host.sendFailed(connection, error instanceof Error ? error : new Error(String(error))),
          });
    this.#host = this.#connectionHost();
    this.#streams = new Streams({
      history: options.history,
      connection: (id) => lookup(id),
      dropped: (reason, count) => this.#metrics.dropped(reason, count),
      report: (error) => this.#report(error),
      share: (frame, stream) => this.#deflater?.share(frame, `v1 ${stream}`),
    });
    this.#supervisor = startSupervisor(
      provideSupervisorMachine({
        sessionExpired: () => this.#metrics.session('expired'),
        broadcasting: (target) => this.#scheduler.broadcasting(target),
        broadcasted: (recipients) => this.#scheduler.broadcasted(recipients),
      }),
      {
        input: { maxSessions: options.recovery?.maxSessions ?? 0 },
        inspect: options.inspect,
        clock: options.clock,
        timers: this.#timers,
        connectionLogic: provideConnectionMachine(lookup, { send: (event) => this.#supervisor.send(event) }),
        failed: (error) => this.#report(toBerthError(ErrorCode.ACTOR_FAILED, 'supervisor failed', error)),
        connectionFailed: (id, error) => this.#connectionFailed(id, error),
      },
    );
    this.supervisor = this.#supervisor.view;
    this.#recoveryWindowMs = options.recovery?.windowMs;

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
          this.#metrics.refused(500);
          this.#report(toBerthError(ErrorCode.AUTHENTICATE_FAILED, `admission of ${request.url ?? '/'} failed`, error));
        },
      },
    );
    const node: AdapterNode = {
      nodeId: this.nodeId,
      deliver: (message) => this.#deliverRemote(message),
      dropped: (count) => this.#metrics.crossNode('dropped', count),
      lost: (target, count, origin) => {
        this.#metrics.lost(target.kind, count);
        this.#emit('lost', { target, count, origin });
      },
      linkChanged: (up, error) => this.#linkChanged(up, error),
      failed: (error, what) => this.#adapterFailed(error, what),
      presence: directoryPresence(this.nodeId, () => this.#directory()),
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

  /** The narrow object every connection of this runtime is given. */
  #connectionHost(): ConnectionHost<TData> {
    const options = this.#options;
    const clock = options.clock;
    return {
      rateLimit: options.rateLimit,
      outboxLimits: options.outbox,
      scheduler: this.#scheduler,
      ledger: this.#ledger,
      deflater: this.#deflater,
      now: hostNow(clock),
      ponged: (connection) => this.#heartbeat?.pong(connection),
      heartbeatPhase: (connection) => this.#heartbeat?.phaseOf(connection) ?? 'off',
      request: (change, applied) => this.#request(change, applied),
      rooms: (id) => this.#directory().connections.get(id)?.rooms,
      received: (connection, data, binary) => {
        this.#noResume(connection);
        this.#emit('message', { connection, data, binary }, connection);
      },
      sendEnveloped: (connection, data, binary) => {
        // The same checks and framing rules as a raw send: strings are text, bytes binary unless `binary: false`.
        encodeCheck(data);
        return this.#streams.direct(connection, toPayload(data, binary));
      },
      requested: (connection, id, data, binary) => {
        this.#noResume(connection);
        this.#requests.answer(connection, id, data, binary);
      },
      resume: (connection, tokens, positions) => this.#resume(connection, tokens, positions),
      invalidMessage: (connection, why, first) => {
        this.#noResume(connection);
        this.#metrics.dropped('invalid-message', 1);
        connection.deliver(errorFrame(ProtocolErrorCode.INVALID_MESSAGE, why));
        // Reported once per connection (every one is counted): a client looping on a bad frame must not flood the log.
        if (first) this.#report(toBerthError(ErrorCode.PROTOCOL, `connection ${connection.id} sent no berth.v1 message`, why), connection);
      },
      dropped: (connection, reason, count) => {
        this.#metrics.dropped(reason, count);
        if (this.#events.has('drop')) this.#emit('drop', { connection, reason, count }, connection);
      },
      socketFailed: (connection, error, closeCode) => {
        this.#report(toBerthError(ErrorCode.SOCKET, `connection ${connection.id} closed with ${closeCode}`, error), connection);
      },
      sendFailed: (connection, error) => {
        this.#report(toBerthError(ErrorCode.SEND_FAILED, `send to ${connection.id} failed`, error), connection);
        connection.sendFailed(error.message);
      },
      leaving: (connection) => {
        this.#heartbeat?.remove(connection);
        this.#track({ kind: 'disconnect', id: connection.id });
        this.#holdStreams(connection, true);
      },
      closed: (connection, output) => {
        this.#connections.delete(connection.id);
        this.#metrics.closed(output.code, output.cause);
        // Runs inside the connection actor's transition: the application hears of it once every
        // actor is at rest, and so once the supervisor has said which rooms the connection left.
        queueMicrotask(() => {
          this.#detach(connection, output.code, output.cause);
          this.#holdStreams(connection, false);
          this.#emit('close', { connection, code: output.code, reason: output.reason, cause: output.cause, rooms: connection.roomsLeft });
        });
      },
    };
  }

  /** A `berth.v1` connection bound to a user is attached to the user's stream (and no longer to the previous one's). */
  #bound(id: string, user: string | undefined): void {
    const connection = this.#connections.get(id);
    const attached = connection?.v1?.attached;
    if (connection === undefined || attached === undefined) return;
    for (const stream of attached.keys()) if (stream.startsWith('user:')) attached.delete(stream);
    if (user !== undefined) this.#streams.attach(connection, streamOf({ kind: 'user', user }));
  }

  /**
   * A `berth.v1` connection that ended other than deliberately leaves its
   * session behind for the recovery window: its user, its rooms, and where
   * each of its streams stood.
   */
  #detach(connection: ServerConnection<TData>, code: number, cause: CloseCause): void {
    const windowMs = this.#recoveryWindowMs;
    const token = connection.v1?.sessionToken;
    if (windowMs === undefined || token === undefined || this.#state !== 'running') return;
    // Deliberate ends: the client said goodbye (1000), or the server closed it on purpose.
    if (
      (cause === 'client' && code === CloseCode.NORMAL) ||
      cause === 'server' ||
      cause === 'shutdown' ||
      cause === 'rate-limit' ||
      cause === 'handler-error'
    )
      return;
    // Its client said it would resume an earlier session, and that resume was never read: this
    // connection owes it that session's messages and knows nothing of them. Kept, its session would
    // answer `recovered: true` without them; not kept, the client's resume of it is told it is unknown.
    if (connection.v1?.resumeExpected !== undefined) return;
    const rooms = connection.roomsLeft;
    const keep = new Set([...rooms.map((room) => streamOf({ kind: 'room', room })), 'all', connectionStream(connection.id)]);
    if (connection.user !== undefined) keep.add(streamOf({ kind: 'user', user: connection.user }));
    // The direct streams of the connections whose sessions this one resumed: it owes the client what
    // their replay had not yet delivered (`#restore` attached them from where that replay began).
    const owed = (stream: string) => keep.has(stream) || stream.startsWith(CONNECTION_STREAM_PREFIX);
    const streams = new Map([...(connection.v1?.attached ?? [])].filter(([stream]) => owed(stream)));
    // Session actors are the supervisor's children, so the inspector shows them beside the connections.
    const session = this.#supervisor.session({ token, windowMs });
    this.#supervisor.send({
      type: 'session.detach',
      record: { token, previous: connection.id, user: connection.user, rooms, streams },
      ref: session.ref,
      respond: (kept) => {
        // Refused: as many sessions are kept as `recovery.maxSessions` allows.
        if (!kept) return this.#metrics.session('overflow');
        session.start();
        this.#metrics.session('detached');
      },
    });
  }

  /**
   * A client resuming the session of a connection it had: its rooms back, and
   * every message of its streams it missed replayed, exactly once and in
   * order, before anything new. If any stream cannot be recovered the
   * connection starts fresh, and the client is told which streams.
   */
  #resume(connection: ServerConnection<TData>, tokens: readonly string[], positions: ReadonlyMap<string, StreamPosition>): void {
    const answer = (frame: Parameters<typeof resumedFrame>[0], previous?: string) => {
      connection.deliver(resumedFrame(frame));
      this.#metrics.session(frame.recovered ? 'resumed' : frame.reason);
      const lost = frame.recovered ? [] : frame.lost.map(({ s, reason }) => ({ stream: s, reason }));
      this.#emit('resume', { connection, recovered: frame.recovered, previous, lost }, connection);
    };
    if (this.#recoveryWindowMs === undefined) return answer({ recovered: false, reason: 'not-kept', lost: [] });
    const v1 = connection.v1!;
    if (v1.resumed) return answer({ recovered: false, reason: 'already-resumed', lost: [] });
    v1.resumed = true;
    // The resume came: what was held since the welcome stays held, for the replay to go first.
    if (v1.resumeExpected !== undefined) this.#timers.clearTimeout(v1.resumeExpected);
    v1.resumeExpected = undefined;
    // The supervisor hands a session over once, and only to its own user: a token presented by
    // another is as good as unknown, and stays kept. The tokens are tried in order (a client whose
    // last resume got no answer names the one it tried then too): at most one is a session still.
    // Answered when the supervisor processes it: at once, or after the event it is processing now.
    const take = (index: number): void =>
      this.#supervisor.send({
        type: 'session.take',
        token: tokens[index]!,
        user: connection.user,
        taken: (record) => {
          if (record !== undefined) return this.#restore(connection, record, positions, answer);
          if (index + 1 < tokens.length) return take(index + 1);
          this.#releaseGate(connection);
          answer({ recovered: false, reason: 'unknown-session', lost: [] });
        },
      });
    take(0);
  }

  /** Puts a taken session back on a connection: its rooms, and what it missed replayed before anything new. */
  #restore(
    connection: ServerConnection<TData>,
    record: SessionRecord,
    positions: ReadonlyMap<string, StreamPosition>,
    answer: (frame: Parameters<typeof resumedFrame>[0], previous?: string) => void,
  ): void {
    const v1 = connection.v1!;
    // From here (or from the welcome, for a client that said it would resume) the live messages of
    // its streams wait behind the replay.
    const gate: NonNullable<EnvelopedState['gate']> = v1.gate ?? [];
    v1.gate = gate;
    // Rooms the connection is in already (the application joined them as it connected) stay, whatever the outcome.
    const restoring = record.rooms.filter((room) => !connection.rooms.has(room));
    const joins = restoring.map((room) => connection.join(room));
    const attached = (v1.attached ??= new Map());
    const reads = [...record.streams].map(([stream, attachedAt]) => {
      const known = positions.get(stream);
      const since = known !== undefined && known.epoch === attachedAt.epoch && known.offset >= attachedAt.offset ? known : attachedAt;
      // This connection owes the client the stream from `since` on: if it drops before its replay is
      // through, its own session must replay from there, not from where it joined the room.
      attached.set(stream, since);
      return Promise.resolve(this.#options.history.read(stream, since)).then(
        (read) => ({ stream, read }),
        (error: unknown) => ({ stream, read: { recovered: false as const, reason: `history failed: ${String(error)}` } }),
      );
    });
    void Promise.all([Promise.all(joins), Promise.all(reads)]).then(([, results]) => {
      v1.gate = undefined;
      const lost = results.flatMap(({ stream, read }) => (read.recovered ? [] : [{ s: stream, reason: read.reason }]));
      if (lost.length > 0) {
        // Starts fresh: none of the session's rooms, none of what waited for them, and the streams it
        // keeps count from now.
        for (const room of restoring) void connection.leave(room);
        for (const stream of record.streams.keys()) {
          if (!attached.has(stream)) continue;
          attached.delete(stream);
          this.#streams.attach(connection, stream);
        }
        const restored = new Set(restoring.map((room) => streamOf({ kind: 'room', room })));
        for (const held of gate) if (!restored.has(held.stream)) connection.deliver(held.frame);
        return answer({ recovered: false, reason: 'lost', lost });
      }
      const top = new Map<string, number>();
      let replayed = 0;
      for (const { stream, read } of results) {
        if (!read.recovered) continue;
        for (const message of read.messages) {
          connection.deliver(this.#replayFrames.frame(stream, read.position.epoch, message));
          replayed++;
        }
        top.set(stream, read.position.offset);
      }
      // Live frames the replay already held are not sent twice.
      for (const held of gate) {
        const replayedTo = top.get(held.stream);
        if (held.joined !== undefined) {
          // A membership change is never left out; a `joined` the replay went past says where the replay ended.
          const { epoch, offset } = held.joined;
          connection.deliver(
            replayedTo !== undefined && replayedTo > offset ? joinedFrame(held.stream, { offset: replayedTo, epoch }) : held.frame,
          );
        } else if (replayedTo === undefined || held.offset > replayedTo) {
          connection.deliver(held.frame);
        }
      }
      answer({ recovered: true, previous: record.previous, replayed }, record.previous);
    });
  }

  /**
   * A client that said it would resume sent something else first (or nothing in time): it resumes no
   * more, and what was held for its replay goes out.
   */
  #noResume(connection: ServerConnection<TData>): void {
    const v1 = connection.v1;
    if (v1?.resumeExpected === undefined) return;
    this.#timers.clearTimeout(v1.resumeExpected);
    v1.resumeExpected = undefined;
    this.#releaseGate(connection);
  }

  #releaseGate(connection: ServerConnection<TData>): void {
    const v1 = connection.v1!;
    const gate = v1.gate;
    v1.gate = undefined;
    for (const held of gate ?? []) connection.deliver(held.frame);
  }

  /** A join, leave or user binding: the supervisor decides, and presence follows what it accepted. */
  #request(change: MembershipRequest, applied: (() => void) | undefined): Promise<boolean> {
    return new Promise((resolve) => {
      const respond = (ok: boolean) => {
        if (!ok) return resolve(false);
        applied?.();
        const tracked = this.#track(change);
        if (change.kind !== 'bind') this.#streams.membership(change.id, change.kind, change.room);
        else this.#bound(change.id, change.user);
        // An adapter that subscribes per room or user says when it has: a join resolves once the
        // member receives every cross-node broadcast published from then on.
        if (tracked === undefined) resolve(true);
        else void tracked.then(() => resolve(true));
      };
      const { id } = change;
      if (change.kind === 'bind') this.#supervisor.send({ type: 'user.bind', id, user: change.user, respond });
      else this.#supervisor.send({ type: change.kind === 'join' ? 'room.join' : 'room.leave', id, room: change.room, respond });
    });
  }

  /** Tells the adapter; returns what its `track` returned, settled either way (a subscription, say). */
  #track(change: PresenceChange): Promise<void> | undefined {
    const { adapter } = this.#options;
    if (adapter.track === undefined) return undefined;
    return this.#callAdapter(() => adapter.track!(change), 'presence update');
  }

  #directory(): SupervisorDirectory {
    return this.#supervisor.context.directory;
  }

  /**
   * Whether a detached session holds the stream of a broadcast's target. Asked of every broadcast with
   * no `berth.v1` recipient, so it costs nothing (no stream name built) while no session is detached.
   */
  #heldBySession(target: Target): boolean {
    const sessions = this.#supervisor.context.sessions;
    if (this.#leavingStreams.size === 0 && !sessions.holdsAny) return false;
    const stream = streamOf(target);
    return this.#leavingStreams.has(stream) || sessions.interested(stream);
  }

  /**
   * A connection that may leave a session behind holds its streams from the moment it leaves its rooms
   * until its session is kept (or not): a missed pong, a failed write or a socket error take it out of
   * its rooms at once, but its socket may take a while to close, and what is broadcast meanwhile reaches
   * nobody live. Held, it is numbered and kept all the same, for the resume to replay.
   */
  #holdStreams(connection: ServerConnection<TData>, hold: boolean): void {
    const v1 = connection.v1;
    if (v1?.sessionToken === undefined || v1.attached === undefined || v1.holdingStreams === hold) return;
    v1.holdingStreams = hold;
    for (const stream of v1.attached.keys()) {
      const count = (this.#leavingStreams.get(stream) ?? 0) + (hold ? 1 : -1);
      if (count === 0) this.#leavingStreams.delete(stream);
      else this.#leavingStreams.set(stream, count);
    }
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
    if (registered) {
      if (connection.enveloped) {
        if (this.#recoveryWindowMs !== undefined) {
          const v1 = connection.v1!;
          v1.sessionToken = sessionToken();
          if (offers(request, RESUME_INTENT)) {
            // Everything live waits from the start for the resume the client said it would send.
            v1.gate = [];
            v1.resumeExpected = this.#timers.setTimeout(() => this.#noResume(connection), this.#options.handshakeTimeoutMs);
          }
          // Where the streams every connection has stand as it arrives: a resume replays from there at the latest.
          this.#streams.attach(connection, 'all');
          this.#streams.attach(connection, connectionStream(id));
          if (grant.user !== undefined) this.#streams.attach(connection, streamOf({ kind: 'user', user: grant.user }));
        }
        connection.deliver(welcomeFrame(id, connection.v1?.sessionToken));
      }
      this.#heartbeat?.add(connection);
      this.#metrics.accepted();
      this.#track({ kind: 'connect', id, user: grant.user });
      this.#emit('connection', connection, connection);
    }
    return connection;
  }

  #broadcast(target: Target, data: SendData, options: BroadcastOptions | undefined): void {
    // Framed once here; every local recipient's outbox holds a reference to the same bytes.
    const frame = encode(data, options?.binary);
    if (this.#state === 'closed') return;
    const except = typeof options?.except === 'object' ? options.except.id : options?.except;
    const message: BroadcastMessage = { target, except, ...toPayload(data, options?.binary) };
    this.#deliverLocally(target, except, frame, true, message);
    const { adapter } = this.#options;
    this.#metrics.crossNode('published');
    this.#callAdapter(
      () => adapter.publish(message),
      'publish',
      () => this.#metrics.crossNode('dropped'),
    );
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
    this.#deliverLocally(message.target, message.except, frame, false, message);
  }

  /**
   * One supervisor event per broadcast, whatever the number of recipients.
   * `sentHere`: the broadcast was sent from this node, rather than received from another.
   */
  #deliverLocally(target: Target, except: string | undefined, frame: EncodedFrame, sentHere: boolean, payload: Payload): void {
    // Once the supervisor has stopped (shutdown, last connection gone) nobody local is left to receive it.
    if (!this.#supervisor.active) return;
    const startedAt = performance.now();
    // A room's (or everyone's) messages may share a compression context: compressed there now, in order.
    if (this.#deflater !== undefined && target.kind !== 'user') this.#deflater.share(frame, `raw ${streamOf(target)}`);
    this.#supervisor.send({
      type: 'broadcast',
      target,
      except,
      frame,
      // Answered when the supervisor processes the broadcast: at once, or later in this same call when a
      // broadcast is sent from inside another (a `drop` handler, an adapter's `track`) and waits its turn.
      delivered: (recipients, enveloped) => {
        this.#metrics.broadcast(recipients, startedAt, sentHere);
        // A stream a dropped connection's session holds goes on being numbered and kept, for its resume.
        if (enveloped.length > 0 || this.#heldBySession(target)) this.#streams.broadcast(target, except, payload, enveloped);
      },
    });
  }

  #linkChanged(up: boolean, error: unknown): void {
    if (!this.#metrics.link(up)) return;
    // Reported once per outage, not once per broadcast it drops.
    if (!up) this.#report(toBerthError(ErrorCode.ADAPTER, 'cluster link down, broadcasts stay on this node', error ?? 'no cause given'));
  }

  /** Calls the adapter; a failure is reported. Returns a promise that settles (never rejects) when the call's did, if it returned one. */
  #callAdapter(call: () => void | Promise<void>, what: string, onFailure?: () => void): Promise<void> | undefined {
    const fail = (error: unknown) => {
      onFailure?.();
      this.#adapterFailed(error, what);
    };
    try {
      const result = call();
      // Adapters may return any thenable, not only native promises.
      if (isThenable(result)) return Promise.resolve(result).then(() => {}, fail);
    } catch (error) {
      fail(error);
    }
    return undefined;
  }

  /** The adapter failed at `what`: reported, and health says so for a while (`health.clusterTroubleMs`). */
  #adapterFailed(error: unknown, what: string): void {
    this.#metrics.adapterFailed(what);
    this.#report(toBerthError(ErrorCode.ADAPTER, `adapter ${what} failed`, error));
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
    connection?.terminateSocket();
    this.#report(toBerthError(ErrorCode.ACTOR_FAILED, `connection ${id} failed`, error), connection);
    if (connection !== undefined) {
      // The actor never reached `disconnecting`, so presence has not heard that it left.
      if (connection.state === 'open') this.#track({ kind: 'disconnect', id });
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
    try {
      await this.#options.adapter.close();
    } catch (error) {
      this.#report(toBerthError(ErrorCode.ADAPTER, 'adapter close failed', error));
    }
    this.#heartbeat?.stop();
    this.#metrics.stop();
    this.#deflater?.close();
    this.#state = 'closed';
  }
}
