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
}

export class Streams {
  readonly #host: StreamsHost;

  constructor(host: StreamsHost) {
    this.#host = host;
  }

  /** A broadcast's enveloped recipients, as the supervisor found them. */
  broadcast(target: Target, except: string | undefined, payload: Payload, recipients: readonly DeliveryPort[]): void {
    const stream = streamOf(target);
    // A user's connections are few: their messages go compressed each on its own.
    const position = this.#deliver(stream, payload, recipients, target.kind !== 'user', except);
    if (position !== undefined) this.#skip(except, target, stream, position);
  }

  /** A send to one `berth.v1` connection, on its own stream; false if nothing was queued. */
  direct(connection: ServerConnection<unknown>, payload: Payload): boolean {
    if (this.#deliver(connectionStream(connection.id), payload, [connection]) === undefined) return false;
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
    if (whenKnown === undefined) {
      const position = this.position(stream);
      if (position !== undefined) joined(position);
      return;
    }
    // Told once the stream's feed knows where it stands; nothing of the room is delivered here before.
    whenKnown(stream, (position) => {
      if (connection.state === 'open' && connection.rooms.has(room)) joined(position);
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

  /** Where a stream stands now, or nothing if the store failed (reported). */
  position(stream: string): StreamPosition | undefined {
    let position: StreamPosition | PromiseLike<StreamPosition>;
    try {
      position = this.#host.history.position(stream);
    } catch (error) {
      this.#failed(stream, error, 1);
      return undefined;
    }
    if (isThenable(position)) {
      // As for append: a position that comes later could follow the room's first message.
      Promise.resolve(position).then(undefined, () => {});
      this.#failed(stream, new Error('this history store answers position with a promise, which berth does not support yet'), 1);
      return undefined;
    }
    return position;
  }

  /**
   * A stream's message: numbered by the history store, then framed once for
   * all of its recipients, in this same call, in order with everything else.
   * Answers the position it was given, or nothing if the store failed (the
   * loss counted and reported).
   */
  #deliver(stream: string, payload: Payload, ports: readonly DeliveryPort[], shared = false, except?: string): StreamPosition | undefined {
    let position: StreamPosition | PromiseLike<StreamPosition>;
    try {
      position = this.#host.history.append(stream, except === undefined ? payload : { ...payload, except });
    } catch (error) {
      this.#failed(stream, error, ports.length);
      return undefined;
    }
    if (isThenable(position)) {
      // Delivering when it settles would let later messages overtake it and a close cut it off:
      // until outboxes can hold a place for a message still being numbered, such a store is refused.
      Promise.resolve(position).then(undefined, () => {});
      this.#failed(stream, new Error('this history store answers append with a promise, which berth does not support yet'), ports.length);
      return undefined;
    }
    const frame = messageFrame(stream, position, payload);
    if (shared) this.#host.share?.(frame, stream);
    const { offset } = position;
    for (const port of ports as ReadonlyArray<ServerConnection<unknown>>) port.deliver(frame, stream, offset);
    return position;
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
