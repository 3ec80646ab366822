import type { IncomingMessage } from 'node:http';
import type { ConnectionEvent, ConnectionOutput } from '../../machines/connection.machine.js';
import type { DeliveryPort, EncodedFrame } from '../../machines/types.js';
import type { FlushScheduler } from '../delivery/flush-scheduler.js';
import type { Deflater } from '../delivery/deflate.js';
import { encode, type SendData } from '../delivery/frame.js';
import { Outbox, resolveOutboxLimits, type OutboxLedger, type OutboxLimits, type OutboxOwner } from '../delivery/outbox.js';
import { assertName } from '../util/validate.js';
import { CloseCode, assertCloseArguments } from './close-codes.js';
import { TokenBucket, type RateLimit } from './rate-limit.js';
import { UpgradeRequest, type RequestInfo } from './request-info.js';
import { RoomsView } from './rooms-view.js';
import { decodeClientFrame, InvalidMessage, PROTOCOL_V1, type ClientMessage, type RequestId } from '../protocol/v1.js';
import type { StreamPosition } from '../history/store.js';
import type { HeartbeatMember, HeartbeatPhase } from './heartbeat.js';
import type { SocketSink, TransportSocket } from './transport.js';

/** Where a connection is in its life. */
export type ConnectionState = 'open' | 'disconnecting' | 'closed';

/** One client connection, as the application sees it. */
export interface Connection<TData = unknown> {
  /** Unique in the cluster: `<nodeId>-<n>`. */
  readonly id: string;
  readonly state: ConnectionState;
  /** The bound user, if any. */
  readonly user: string | undefined;
  /** What `authenticate` returned as `data`. */
  readonly data: TData | undefined;
  /** Rooms the connection is in: a live, read-only view, empty once it began to disconnect. */
  readonly rooms: ReadonlySet<string>;
  readonly request: RequestInfo;
  /** The subprotocol: `berth.v1` for a client that asked for it (messages travel in envelopes), '' for a raw one. */
  readonly protocol: string;
  /** Queues a message for this connection; false (and nothing sent) unless `open`. */
  send(data: SendData, options?: { binary?: boolean }): boolean;
  /** Joins a room: true once a member, false if the connection is leaving or gone. */
  join(room: string): Promise<boolean>;
  /** Leaves a room: true if it was a member, false otherwise. */
  leave(room: string): Promise<boolean>;
  /** Binds a user (or unbinds with `undefined`): true once bound, false if the connection is leaving or gone. */
  setUser(user: string | undefined): Promise<boolean>;
  /** Frames waiting in this connection's outbox, and their bytes. */
  readonly outbox: { readonly depth: number; readonly bytes: number; readonly limits: OutboxLimits };
  /** Its heartbeat: `waiting` for the next ping, `awaiting-pong`, or `off`; and the last ping's round trip. */
  readonly heartbeat: { readonly phase: HeartbeatPhase; readonly roundTripMs: number | undefined };
  /** Overrides the runtime's outbox limits or overflow policy for this connection. */
  setOutboxLimits(limits: Partial<OutboxLimits>): void;
  /**
   * Closes with `code` and `reason`, after the messages already queued.
   * Throws `TypeError` for a code that may not be sent, `RangeError` for a reason over 123 bytes.
   * [code=1000] [reason='']
   */
  close(code?: number, reason?: string): void;
}

/** A membership change a connection asks of the supervisor. */
export type MembershipRequest =
  | { readonly kind: 'join' | 'leave'; readonly id: string; readonly room: string }
  | { readonly kind: 'bind'; readonly id: string; readonly user: string | undefined };

/**
 * What a connection may ask of its runtime: a narrow object the runtime
 * builds for its connections, not the runtime itself.
 */
export interface ConnectionHost<TData> {
  readonly rateLimit: RateLimit | null;
  readonly outboxLimits: OutboxLimits;
  readonly scheduler: FlushScheduler;
  /** The bytes all outboxes of the runtime hold, each shared frame once. */
  readonly ledger: OutboxLedger;
  /** Compresses frames once for the connections that negotiated permessage-deflate; none when `compression` is off. */
  readonly deflater: Deflater | undefined;
  /** Milliseconds on the runtime's clock (simulated in scenarios): the rate limiter's time. */
  now(): number;
  /** A pong came; the runtime's heartbeat sweep takes it. */
  ponged(connection: ServerConnection<TData>): void;
  heartbeatPhase(connection: ServerConnection<TData>): HeartbeatPhase;
  /** Asks the supervisor for a membership change; resolves with whether it took effect. */
  request(change: MembershipRequest, applied?: () => void): Promise<boolean>;
  /** The supervisor's rooms of a connection, if it has any. */
  rooms(id: string): ReadonlySet<string> | undefined;
  received(connection: ServerConnection<TData>, data: string | Buffer, binary: boolean): void;
  /** Sends to one `berth.v1` connection, in the envelope of its own stream; false if nothing was queued. */
  sendEnveloped(connection: ServerConnection<TData>, data: SendData, binary: boolean | undefined): boolean;
  /** A `berth.v1` client asks for the session of a connection it had, by its token (then by the earlier ones it names). */
  resume(connection: ServerConnection<TData>, tokens: readonly string[], positions: ReadonlyMap<string, StreamPosition>): void;
  /** A `berth.v1` client sent a request; the runtime answers it. */
  requested(connection: ServerConnection<TData>, id: RequestId, data: string | Buffer, binary: boolean): void;
  /** A `berth.v1` client sent a frame that is no message of the protocol; `first` for the first of this connection. */
  invalidMessage(connection: ServerConnection<TData>, why: string, first: boolean): void;
  dropped(connection: ServerConnection<TData>, reason: DropReason, count: number): void;
  socketFailed(connection: ServerConnection<TData>, error: Error, closeCode: number): void;
  sendFailed(connection: ServerConnection<TData>, error: Error): void;
  leaving(connection: ServerConnection<TData>): void;
  closed(connection: ServerConnection<TData>, output: ConnectionOutput): void;
}

/** Why a message was dropped: an incoming one over the rate limit, or outgoing ones an overflowing outbox let go. */
export type DropReason = 'rate-limit' | 'outbox-overflow';

const noRooms: readonly string[] = Object.freeze([]);

/** What a `berth.v1` connection keeps beyond a raw one: its session and its streams. */
export class EnvelopedState {
  /** Set once it sent a frame that is no message of the protocol (reported once). */
  invalidSeen = false;
  /** Its session's token, when the runtime keeps sessions. */
  sessionToken: string | undefined;
  /** The streams it is attached to, and where each stood when it was: where a resume replays from at the latest. */
  attached: Map<string, StreamPosition> | undefined;
  /**
   * While a resume replays history, the live frames of its streams wait here
   * (with their stream and offset) so that none overtakes the replay and none
   * the replay already gave is sent twice.
   */
  gate:
    | Array<{
        readonly stream: string;
        readonly offset: number;
        readonly frame: EncodedFrame;
        /** Set for a `joined`: where the room stood as the connection joined it. */
        readonly joined?: StreamPosition;
      }>
    | undefined;
  /** Set once it resumed (or tried): a connection resumes at most once. */
  resumed = false;
  /** Set while its streams are held between leaving its rooms and its session being kept (the runtime's `#holdStreams`). */
  holdingStreams = false;
  /**
   * Set while the client, which said it would resume (`berth.resume` offered), has not sent its
   * first message: the live frames wait in `gate` meanwhile. Holds the deadline's timer.
   */
  resumeExpected: unknown;
}

/** What drives a connection through the connection machine: its XState Actor, or the machine compiled (src/interpreter/). */
export interface ConnectionLifecycle {
  send(event: ConnectionEvent): void;
}

/**
 * The runtime's side of a connection: the application's handle, the
 * supervisor's delivery port, and the sink of its socket's events, which it
 * turns into events of its actor.
 */
export class ServerConnection<TData = unknown> implements Connection<TData>, DeliveryPort, SocketSink, OutboxOwner, HeartbeatMember {
  readonly id: string;
  readonly data: TData | undefined;
  readonly request: RequestInfo;
  readonly socket: TransportSocket;
  #state: ConnectionState = 'open';
  #user: string | undefined;
  #lifecycle: ConnectionLifecycle | undefined;
  readonly #host: ConnectionHost<TData>;
  readonly #outbox: Outbox;
  readonly #bucket: TokenBucket | undefined;
  #roomsLeft: readonly string[] = noRooms;
  /** What only a `berth.v1` connection carries; a raw one pays one field for it. */
  readonly v1: EnvelopedState | undefined;
  // The heartbeat sweep's bookkeeping (HeartbeatMember).
  pingRound = 0;
  pingSentAt = 0;
  roundTripMs: number | undefined;

  constructor(
    id: string,
    socket: TransportSocket,
    request: IncomingMessage,
    grant: { user: string | undefined; data: TData | undefined },
    host: ConnectionHost<TData>,
  ) {
    this.id = id;
    this.socket = socket;
    this.v1 = socket.protocol === PROTOCOL_V1 ? new EnvelopedState() : undefined;
    this.data = grant.data;
    this.#user = grant.user;
    this.#host = host;
    this.request = new UpgradeRequest(request);
    const { deflater } = host;
    const params = socket.deflate;
    this.#outbox = new Outbox(
      socket,
      this,
      host.scheduler,
      host.outboxLimits,
      host.ledger,
      deflater === undefined || params === undefined ? undefined : deflater.peer(params),
    );
    const limit = host.rateLimit;
    this.#bucket = limit === null ? undefined : new TokenBucket(limit.messagesPerSecond, limit.burst, host.now);
  }

  /** Connects the handle to its lifecycle (an actor, or the compiled machine); called once, before it starts. */
  attach(lifecycle: ConnectionLifecycle): void {
    this.#lifecycle = lifecycle;
  }

  get state(): ConnectionState {
    return this.#state;
  }

  get protocol(): string {
    return this.socket.protocol;
  }

  /** Delivery port: a `berth.v1` connection takes broadcasts in their envelope. */
  get enveloped(): boolean {
    return this.v1 !== undefined;
  }

  get user(): string | undefined {
    return this.#user;
  }

  get rooms(): ReadonlySet<string> {
    return new RoomsView(() => (this.#state === 'open' ? this.#host.rooms(this.id) : undefined));
  }

  get outbox(): Connection['outbox'] {
    return this.#outbox;
  }

  get heartbeat(): Connection['heartbeat'] {
    return { phase: this.#host.heartbeatPhase(this), roundTripMs: this.roundTripMs };
  }

  // Heartbeat member: what the runtime's sweep does to it.

  ping(): void {
    this.socket.ping();
  }

  missed(): void {
    this.#toActor({ type: 'heartbeat.missed' });
  }

  setOutboxLimits(limits: Partial<OutboxLimits>): void {
    this.#outbox.limits = resolveOutboxLimits({ ...this.#outbox.limits, ...limits }, 'limits');
  }

  send(data: SendData, options?: { binary?: boolean }): boolean {
    if (this.v1 !== undefined) return this.#state === 'open' && this.#host.sendEnveloped(this, data, options?.binary);
    const frame = encode(data, options?.binary);
    return this.#state === 'open' && this.#outbox.push(frame);
  }

  /** Delivery port: a broadcast's frame for this connection (or any frame the runtime built for it). */
  deliver(frame: EncodedFrame): boolean {
    return this.#state === 'open' && this.#outbox.push(frame);
  }

  join(room: string): Promise<boolean> {
    assertName('room', room);
    return this.#request({ kind: 'join', id: this.id, room });
  }

  leave(room: string): Promise<boolean> {
    assertName('room', room);
    return this.#request({ kind: 'leave', id: this.id, room });
  }

  setUser(user: string | undefined): Promise<boolean> {
    if (user !== undefined) assertName('user', user);
    return this.#request({ kind: 'bind', id: this.id, user }, () => {
      this.#user = user;
    });
  }

  close(code: number = CloseCode.NORMAL, reason = ''): void {
    assertCloseArguments(code, reason);
    this.#toActor({ type: 'server.close', code, reason, cause: 'server' });
  }

  /** Closes on berth's own account (failing handler, rate limit, slow consumer); not subject to the caller checks. */
  closeFor(cause: 'handler-error' | 'rate-limit' | 'slow-consumer', code: number, reason: string): void {
    this.#toActor({ type: 'server.close', code, reason, cause });
  }

  /** Feeds the lifecycle; a closed connection's has stopped and takes nothing more. */
  #toActor(event: ConnectionEvent): void {
    if (this.#state !== 'closed') this.#lifecycle?.send(event);
  }

  /** `applied` runs as soon as the supervisor accepts, before anyone awaiting the answer resumes. */
  #request(change: MembershipRequest, applied?: () => void): Promise<boolean> {
    if (this.#state !== 'open') return Promise.resolve(false);
    return this.#host.request(change, applied);
  }

  // Socket sink: what the transport reports, turned into actor events.

  message(data: string | Buffer, binary: boolean): void {
    if (this.#state !== 'open') return;
    if (this.#bucket !== undefined && !this.#bucket.take()) {
      if (this.#host.rateLimit?.policy === 'drop') this.#host.dropped(this, 'rate-limit', 1);
      else this.closeFor('rate-limit', CloseCode.POLICY_VIOLATION, 'rate limit exceeded');
      return;
    }
    const v1 = this.v1;
    if (v1 === undefined) {
      this.#host.received(this, data, binary);
      return;
    }
    let message: ClientMessage;
    try {
      message = decodeClientFrame(data, binary);
    } catch (error) {
      if (!(error instanceof InvalidMessage)) throw error;
      this.#host.invalidMessage(this, error.message, !v1.invalidSeen);
      v1.invalidSeen = true;
      return;
    }
    if (message.kind === 'req') this.#host.requested(this, message.id, message.data, message.binary);
    else if (message.kind === 'resume') this.#host.resume(this, message.tokens, message.positions);
    else this.#host.received(this, message.data, message.binary);
  }

  pong(): void {
    if (this.#state === 'open') this.#host.ponged(this);
  }

  closed(code: number, reason: string): void {
    this.#outbox.discard();
    this.#toActor({ type: 'socket.closed', code, reason });
  }

  error(error: Error, closeCode: number): void {
    if (this.#state === 'open') this.#host.socketFailed(this, error, closeCode);
    this.#toActor({ type: 'socket.error', code: closeCode, message: error.message });
  }

  // Outbox owner.

  dropped(count: number): void {
    this.#host.dropped(this, 'outbox-overflow', count);
  }

  overflowed(): void {
    this.closeFor('slow-consumer', CloseCode.SLOW_CONSUMER, 'slow consumer');
  }

  failed(error: Error): void {
    this.#host.sendFailed(this, error);
  }

  // Actor side effects (see actors.ts).

  /** Closes the socket with `code` once the outbox has handed everything queued to it. */
  closeSocket(code: number, reason: string): void {
    this.#outbox.end(() => this.socket.close(code, reason));
  }

  terminateSocket(): void {
    this.#outbox.discard();
    this.socket.terminate();
  }

  /** Reports a failed write to the actor. */
  sendFailed(message: string): void {
    this.#toActor({ type: 'send.failed', message });
  }

  markLeaving(): void {
    if (this.#state !== 'open') return;
    this.#state = 'disconnecting';
    this.#host.leaving(this);
  }

  /** The supervisor took the connection out of these rooms (it began to disconnect, or was forgotten). */
  left(rooms: readonly string[]): void {
    if (rooms.length > 0) this.#roomsLeft = rooms;
  }

  /**
   * The rooms the supervisor took the connection out of. When the socket went
   * first, the supervisor hears of it only once the actor is done: read this
   * after the actor has come to rest.
   */
  get roomsLeft(): readonly string[] {
    return this.#roomsLeft;
  }

  markClosed(output: ConnectionOutput): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#host.closed(this, output);
  }

  toJSON(): { id: string; state: ConnectionState; user: string | undefined } {
    return { id: this.id, state: this.#state, user: this.#user };
  }
}
