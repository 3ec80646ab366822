import type { IncomingMessage } from 'node:http';
import type { ConnectionEvent, ConnectionOutput } from '../../machines/connection.machine.js';
import type { DeliveryPort, EncodedFrame } from '../../machines/types.js';
import { encode, type SendData } from '../delivery/frame.js';
import { resolveOutboxLimits, type Outbox, type OutboxLimits, type OutboxOwner } from '../delivery/outbox.js';
import { assertName } from '../util/validate.js';
import { CloseCode, assertCloseArguments } from './close-codes.js';
import type { RateLimit, TokenBucket } from './rate-limit.js';
import { UpgradeRequest, type RequestInfo } from './request-info.js';
import { RoomsView } from './rooms-view.js';
import { decodeClientFrame, InvalidMessage, PROTOCOL_V1, type ClientMessage } from '../protocol/v1.js';
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
  /** The connection's outbox, on the runtime's flush scheduler, limits and (for a peer that negotiated it) compression. */
  outbox(socket: TransportSocket, owner: OutboxOwner): Outbox;
  /** A rate limiter for the connection's incoming messages, and what happens past it; none without `rateLimit`. */
  limiter(): { readonly bucket: TokenBucket; readonly policy: RateLimit['policy'] } | undefined;
  /** A pong came; the runtime's heartbeat sweep takes it. */
  ponged(connection: ServerConnection<TData>): void;
  heartbeatPhase(connection: ServerConnection<TData>): HeartbeatPhase;
  /** Asks the supervisor for a membership change; resolves with whether it took effect. */
  request(change: MembershipRequest, applied?: () => void): Promise<boolean>;
  /** The supervisor's rooms of a connection, if it has any. */
  rooms(id: string): ReadonlySet<string> | undefined;
  /** A message from the client: a raw client's frame is a `msg`; a `berth.v1` client's, decoded. */
  received(connection: ServerConnection<TData>, message: ClientMessage): void;
  /** Sends to one `berth.v1` connection, in the envelope of its own stream; false if nothing was queued. */
  sendEnveloped(connection: ServerConnection<TData>, data: SendData, binary: boolean | undefined): boolean;
  /** A `berth.v1` client sent a frame that is no message of the protocol; `first` for the first of this connection. */
  invalidMessage(connection: ServerConnection<TData>, error: InvalidMessage, first: boolean): void;
  dropped(connection: ServerConnection<TData>, reason: DropReason, count: number): void;
  socketFailed(connection: ServerConnection<TData>, error: Error, closeCode: number): void;
  sendFailed(connection: ServerConnection<TData>, error: Error): void;
  leaving(connection: ServerConnection<TData>): void;
  closed(connection: ServerConnection<TData>, output: ConnectionOutput): void;
}

/** Why a message was dropped: an incoming one over the rate limit, or outgoing ones an overflowing outbox let go. */
export type DropReason = 'rate-limit' | 'outbox-overflow';

const noRooms: readonly string[] = Object.freeze([]);

/**
 * Where a `berth.v1` connection's frames wait while a resume replays what its client missed: the
 * runtime's recovery sets one on the connection and takes it away once the replay is through. A
 * frame of a stream comes with its stream and offset (and, for a `joined`, the room's position), so
 * that what the replay already gave is not sent twice.
 */
export interface FrameHold {
  hold(frame: EncodedFrame, stream?: string, offset?: number, joined?: StreamPosition): void;
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
  readonly #limiter: ReturnType<ConnectionHost<TData>['limiter']>;
  #roomsLeft: readonly string[] = noRooms;
  /** True for a `berth.v1` connection: it takes its messages in envelopes. */
  readonly enveloped: boolean;
  /** Set once a `berth.v1` connection sent a frame that is no message of the protocol (reported once). */
  #invalidSeen = false;
  /** Set while a resume replays: the frames of this connection wait there, behind the replay. */
  hold: FrameHold | undefined;
  /**
   * Where a resume's replay ended, by stream: a live frame at or below it that comes after the replay
   * is through (this node's delivery of the stream was behind the history the replay read) is not sent again.
   */
  floors: Map<string, number> | undefined;
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
    this.enveloped = socket.protocol === PROTOCOL_V1;
    this.data = grant.data;
    this.#user = grant.user;
    this.#host = host;
    this.request = new UpgradeRequest(request);
    this.#outbox = host.outbox(socket, this);
    this.#limiter = host.limiter();
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
    if (this.enveloped) return this.#state === 'open' && this.#host.sendEnveloped(this, data, options?.binary);
    const frame = encode(data, options?.binary);
    return this.#state === 'open' && this.#outbox.push(frame);
  }

  /**
   * Delivery port: a broadcast's frame for this connection (or any frame the runtime built for it),
   * behind a resume's replay while one runs. A frame of a stream names its stream and offset.
   */
  deliver(frame: EncodedFrame, stream?: string, offset?: number, joined?: StreamPosition): boolean {
    if (this.#state !== 'open') return false;
    if (this.floors !== undefined && stream !== undefined && joined === undefined && this.#below(stream, offset)) return true;
    const hold = this.hold;
    if (hold === undefined) return this.#outbox.push(frame);
    hold.hold(frame, stream, offset, joined);
    return true;
  }

  /**
   * Whether a live frame of `stream` was given by a replay already: its offset is at or below where
   * the replay ended (`floors`). The first frame past it, or a `lost` (no offset), ends the check.
   */
  #below(stream: string, offset: number | undefined): boolean {
    const floor = this.floors!.get(stream);
    if (floor === undefined) return false;
    if (offset !== undefined && offset <= floor) return true;
    this.floors!.delete(stream);
    if (this.floors!.size === 0) this.floors = undefined;
    return false;
  }

  /** Queues a frame ahead of anything held: the replay's own writes. */
  write(frame: EncodedFrame): boolean {
    return this.#state === 'open' && this.#outbox.push(frame);
  }

  /** Calls `listener` once the outbox has room again (a replay's pace); never if the connection ends first. */
  whenRoom(listener: () => void): void {
    if (this.#state === 'open') this.#outbox.whenRoom(listener);
  }

  /** Whether the outbox holds at most half its bounds. */
  get hasRoom(): boolean {
    return this.#outbox.hasRoom;
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

  /** The runtime is shutting down: closed with `code` and `reason` (a `berth.v1` client is sent elsewhere, its session kept). */
  shutdown(code: number, reason: string): void {
    this.#toActor({ type: 'runtime.shutdown', code, reason });
  }

  /**
   * Another connection resumed this one's session while its socket still looked open (half-open: the
   * client is gone, and no FIN reached the server). What waits for it is given up (the session's
   * history has it), the close frame goes out at once for a client that is still there, and the
   * socket is cut without waiting for a closing handshake that will not come.
   */
  replace(): void {
    if (this.#state !== 'open') return;
    this.#outbox.discard();
    this.#toActor({ type: 'server.close', code: CloseCode.REPLACED, reason: 'replaced', cause: 'replaced' });
    this.socket.terminate();
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
    const limiter = this.#limiter;
    if (limiter !== undefined && !limiter.bucket.take()) {
      if (limiter.policy === 'drop') this.#host.dropped(this, 'rate-limit', 1);
      else this.closeFor('rate-limit', CloseCode.POLICY_VIOLATION, 'rate limit exceeded');
      return;
    }
    if (!this.enveloped) {
      this.#host.received(this, { kind: 'msg', data, binary });
      return;
    }
    let message: ClientMessage;
    try {
      message = decodeClientFrame(data, binary);
    } catch (error) {
      if (!(error instanceof InvalidMessage)) throw error;
      this.#host.invalidMessage(this, error, !this.#invalidSeen);
      this.#invalidSeen = true;
      return;
    }
    this.#host.received(this, message);
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
