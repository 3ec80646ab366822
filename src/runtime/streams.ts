/**
 * The streams `berth.v1` connections receive: every message numbered by the
 * history store and framed once for all its enveloped recipients, `skip` for
 * a member left out by `except`, and `joined` / `left` as membership changes.
 */
import type { DeliveryPort, EncodedFrame, Target } from '../../machines/types.js';
import type { ServerConnection } from '../connection/connection.js';
import type { HistoryStore, StreamPosition } from '../history/store.js';
import { connectionStream, joinedFrame, leftFrame, lostFrame, messageFrame, skipFrame, streamOf, type Payload } from '../protocol/v1.js';
import { ErrorCode, toBerthError, type BerthError } from '../util/errors.js';
import { isThenable } from '../util/thenable.js';

/** What the streams need of their runtime. */
export interface StreamsHost {
  readonly history: HistoryStore;
  /** A live connection of this node by id. */
  connection(id: string): ServerConnection<unknown> | undefined;
  /** `count` deliveries were lost, for `reason` (counted in the metrics). */
  dropped(reason: string, count: number): void;
  report(error: BerthError): void;
  /** Compression's note of a frame as a message of a stream many connections share (a room, `all`). */
  share?(frame: EncodedFrame, stream: string): void;
  /** A connection was attached to a room's stream (it joined), standing at `position`; or detached (it left). */
  attached?(connection: ServerConnection<unknown>, stream: string, position: StreamPosition | undefined): void;
  /**
   * With durable streams, where a stream stands on this node, at once or once known (its feed's
   * position): a `joined` says that, and the engine, not this node, numbers what follows.
   */
  whenKnown?(stream: string, then: (position: StreamPosition) => void): void;
  /** With durable streams, a direct send is kept and numbered by the engine: true if it was taken. */
  direct?(connection: ServerConnection<unknown>, payload: Payload): boolean;
}

/** How long a join waits for its stream's position before it resolves without it (the engine is down or stalled). */
const KNOWN_WAIT_MS = 2000;

export class Streams {
  readonly #host: StreamsHost;
  /** Streams with a message (or a position) still being numbered by a store that answers later: the last one's turn. */
  readonly #waiting = new Map<string, Promise<void>>();

  constructor(host: StreamsHost) {
    this.#host = host;
  }

  /** A broadcast's enveloped recipients, as the supervisor found them. */
  broadcast(target: Target, except: string | undefined, payload: Payload, recipients: readonly DeliveryPort[]): void {
    const stream = streamOf(target);
    // A user's connections are few: their messages go compressed each on its own.
    this.#deliver(stream, payload, recipients, target.kind !== 'user', except, (position) => this.#skip(except, target, stream, position));
  }

  /** A send to one `berth.v1` connection, on its own stream; false if nothing was queued. */
  direct(connection: ServerConnection<unknown>, payload: Payload): boolean {
    if (this.#host.direct !== undefined) return this.#host.direct(connection, payload);
    if (!this.#deliver(connectionStream(connection.id), payload, [connection])) return false;
    // Queued unless the outbox let it go (drop-newest) or the connection is no longer open.
    return connection.state === 'open';
  }

  /**
   * Tells a `berth.v1` connection where a room's stream stands as it joins
   * (within the supervisor's answer, so no message of the room falls between
   * the two), or that it left.
   */
  membership(id: string, kind: 'join' | 'leave', room: string): void {
    const connection = this.#host.connection(id);
    if (connection === undefined || !connection.enveloped) return;
    const stream = streamOf({ kind: 'room', room });
    if (kind === 'leave') {
      this.#host.attached?.(connection, stream, undefined);
      connection.deliver(leftFrame(stream), stream);
      return;
    }
    const joined = (position: StreamPosition) => {
      this.#host.attached?.(connection, stream, position);
      connection.deliver(joinedFrame(stream, position), stream, position.offset, position);
    };
    const { whenKnown } = this.#host;
    if (whenKnown === undefined) return void this.position(stream, joined);
    // Told once the stream's feed knows where it stands; nothing of the room is delivered here before.
    whenKnown(stream, (position) => {
      if (connection.state === 'open' && connection.rooms.has(room)) joined(position);
    });
  }

  /**
   * With durable streams, once this node knows where its delivery of `stream` starts (its feed, made
   * now if there is none: before the node subscribes, so that a message published after the join
   * resolves is delivered, live or read from the history); undefined without them.
   */
  known(stream: string): Promise<void> | undefined {
    const { whenKnown } = this.#host;
    if (whenKnown === undefined) return undefined;
    return new Promise((resolve) => {
      // While the engine cannot say (it is down), the join does not wait for it: the feed reads it once it can.
      const timer = setTimeout(resolve, KNOWN_WAIT_MS);
      whenKnown(stream, () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /**
   * A message the engine numbered, for this node's enveloped recipients as the supervisor found
   * them, framed once; a member left out by `except` gets its `skip`.
   */
  numbered(target: Target, except: string | undefined, payload: Payload, position: StreamPosition, ports: readonly DeliveryPort[]): void {
    const stream = streamOf(target);
    const frame = messageFrame(stream, position, payload);
    if (target.kind !== 'user') this.#host.share?.(frame, stream);
    for (const port of ports as ReadonlyArray<ServerConnection<unknown>>) port.deliver(frame, stream, position.offset);
    this.#skip(except, target, stream, position);
  }

  /** A direct message the engine numbered on the connection's own stream. */
  numberedDirect(connection: ServerConnection<unknown>, payload: Payload, position: StreamPosition): void {
    const stream = connectionStream(connection.id);
    connection.deliver(messageFrame(stream, position, payload), stream, position.offset);
  }

  /** Messages of a stream were lost on their way here: its enveloped members (`ports`) are told where it stands now. */
  lost(stream: string, position: StreamPosition, reason: 'trimmed' | 'epoch-changed', ports: readonly DeliveryPort[]): void {
    const frame = lostFrame(stream, position, reason);
    for (const port of ports as ReadonlyArray<ServerConnection<unknown>>) port.deliver(frame, stream);
  }

  /**
   * Tells `then` where a stream stands now, in its turn: at once, or once the store answers and what
   * the stream was sent before has been delivered. Nothing is told if the store failed (reported).
   */
  position(stream: string, then: (position: StreamPosition) => void): void {
    let position: StreamPosition | PromiseLike<StreamPosition>;
    try {
      position = this.#host.history.position(stream);
    } catch (error) {
      this.#failed(stream, error, 1);
      return;
    }
    this.#inTurn(stream, position, 1, then);
  }

  /**
   * A stream's message: numbered by the history store, then framed once for all of its recipients —
   * in this same call when the store answers at once (the memory store), or once it answers and every
   * earlier message of the stream has gone, so that none overtakes another. False if the store failed
   * at once (the loss counted and reported); `then` is told the position the message was given.
   */
  #deliver(
    stream: string,
    payload: Payload,
    ports: readonly DeliveryPort[],
    shared = false,
    except?: string,
    then?: (position: StreamPosition) => void,
  ): boolean {
    let position: StreamPosition | PromiseLike<StreamPosition>;
    try {
      position = this.#host.history.append(stream, except === undefined ? payload : { ...payload, except });
    } catch (error) {
      this.#failed(stream, error, ports.length);
      return false;
    }
    this.#inTurn(stream, position, ports.length, (at) => {
      const frame = messageFrame(stream, at, payload);
      if (shared) this.#host.share?.(frame, stream);
      const { offset } = at;
      // A recipient that closed meanwhile is skipped by its own `deliver`.
      for (const port of ports as ReadonlyArray<ServerConnection<unknown>>) port.deliver(frame, stream, offset);
      then?.(at);
    });
    return true;
  }

  /** Runs `then` with the position once it is known and the stream's earlier messages have gone; at once when it can. */
  #inTurn(
    stream: string,
    position: StreamPosition | PromiseLike<StreamPosition>,
    lost: number,
    then: (position: StreamPosition) => void,
  ): void {
    const before = this.#waiting.get(stream);
    if (before === undefined && !isThenable(position)) return then(position);
    const turn = (before ?? Promise.resolve())
      .then(() => position)
      .then(then)
      .catch((error: unknown) => this.#failed(stream, error, lost));
    this.#waiting.set(stream, turn);
    void turn.then(() => {
      if (this.#waiting.get(stream) === turn) this.#waiting.delete(stream);
    });
  }

  /** Whether `except` names a live `berth.v1` member of the target: it is owed a `skip`, so the message is numbered even if nobody else here takes it. */
  skips(except: string, target: Target): boolean {
    return this.#skipped(except, target) !== undefined;
  }

  /**
   * A `berth.v1` connection left out of a broadcast by `except` still sees the
   * offset the others were given, as a `skip`: it can tell that gap from a loss.
   */
  #skip(except: string | undefined, target: Target, stream: string, position: StreamPosition): void {
    if (except === undefined) return;
    this.#skipped(except, target)?.deliver(skipFrame(stream, position), stream, position.offset);
  }

  #skipped(except: string, target: Target): ServerConnection<unknown> | undefined {
    const connection = this.#host.connection(except);
    if (connection === undefined || !connection.enveloped || connection.state !== 'open') return undefined;
    const member = target.kind === 'all' || (target.kind === 'room' ? connection.rooms.has(target.room) : connection.user === target.user);
    return member ? connection : undefined;
  }

  #failed(stream: string, error: unknown, lost: number): void {
    this.#host.dropped('history-unavailable', lost);
    this.#host.report(toBerthError(ErrorCode.HISTORY, `history of ${stream} failed: ${lost} berth.v1 deliveries dropped`, error));
  }
}
