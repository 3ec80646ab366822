/**
 * One resume's replay, on the connection that resumed: what the session
 * missed, written as fast as the client reads it, then `resumed`, then
 * whatever the connection was sent meanwhile, which waited behind the replay.
 *
 * The replay is paced by the outbox, not bounded by it: it fills the outbox
 * to half its bounds and goes on each time a flush makes room, so a replay of
 * any length reaches a client that reads slowly without overflowing. What
 * waits behind it is bounded by the outbox's bounds and policy, as if it were
 * queued there: a client that cannot read the replay and keep up with what
 * goes on meanwhile is a slow consumer.
 */
import type { EncodedFrame } from '../../../machines/types.js';
import type { FrameHold, ServerConnection } from '../../connection/connection.js';
import type { HistoryMessage, StreamPosition } from '../../history/store.js';
import { joinedFrame, skipFrame } from '../../protocol/v1.js';
import type { ReplayFrames } from './replay-frames.js';

/** A stream's messages to replay, as the history read them. */
export interface ReplaySource {
  readonly stream: string;
  readonly epoch: string;
  readonly messages: readonly HistoryMessage[];
  /** Where the stream stood when it was read: held frames up to here are the replay's already. */
  readonly top: number;
}

interface Held {
  readonly frame: EncodedFrame;
  readonly stream: string | undefined;
  readonly offset: number | undefined;
  readonly joined: StreamPosition | undefined;
}

/** What a replay reports. */
export interface ReplayHost {
  /** Frames held behind the replay were let go under a `drop-oldest` / `drop-newest` outbox. */
  dropped(count: number): void;
  /** The replay is through: the connection's frames go straight to its outbox again. */
  done(): void;
}

export class Replay implements FrameHold {
  readonly #connection: ServerConnection<unknown>;
  readonly #frames: ReplayFrames;
  readonly #host: ReplayHost;
  #held: Held[] = [];
  #heldHead = 0;
  #heldBytes = 0;
  #sources: readonly ReplaySource[] = [];
  #source = 0;
  #message = 0;
  /** The connections a message's `except` may name for it to be a `skip` here. */
  #identities: ReadonlySet<string> = new Set();
  /** Each replayed stream's top: a held frame of it at or below is not sent again. */
  readonly #tops = new Map<string, StreamPosition>();
  /** `resumed`, written between the replay and what was held. */
  #answer: EncodedFrame | undefined;
  /** Set once the replay may run: its messages are known (or there are none), and what was held may follow. */
  #running = false;
  #stopped = false;

  constructor(connection: ServerConnection<unknown>, frames: ReplayFrames, host: ReplayHost) {
    this.#connection = connection;
    this.#frames = frames;
    this.#host = host;
  }

  /** A frame sent to the connection while the replay runs (or before it starts): it waits behind it. */
  hold(frame: EncodedFrame, stream?: string, offset?: number, joined?: StreamPosition): void {
    if (this.#stopped) return;
    const { maxMessages, maxBytes, overflow } = this.#connection.outbox.limits;
    if (this.#held.length - this.#heldHead + 1 > maxMessages || this.#heldBytes + frame.byteLength > maxBytes) {
      if (overflow === 'close') {
        this.stop();
        this.#connection.overflowed();
        return;
      }
      if (overflow === 'drop-newest') return this.#host.dropped(1);
      const dropped = this.#held[this.#heldHead++]!;
      this.#heldBytes -= dropped.frame.byteLength;
      this.#host.dropped(1);
    }
    this.#held.push({ frame, stream, offset, joined });
    this.#heldBytes += frame.byteLength;
  }

  /**
   * Replays `sources` (a `skip` for a message whose `except` names one of `identities`), then
   * `answer`, then what was held, leaving out what the replay gave.
   */
  start(sources: readonly ReplaySource[], identities: ReadonlySet<string>, answer: EncodedFrame): void {
    this.#sources = sources;
    this.#identities = identities;
    for (const { stream, epoch, top } of sources) this.#tops.set(stream, { offset: top, epoch });
    if (sources.length > 0) this.#connection.floors = new Map(sources.map(({ stream, top }) => [stream, top]));
    this.release(answer);
  }

  /** Sends what was held, after `answer` if there is one: nothing is replayed. */
  release(answer?: EncodedFrame): void {
    if (this.#running || this.#stopped) return;
    this.#running = true;
    this.#answer = answer;
    this.#pump();
  }

  /** What was held of these streams is not sent (the rooms of a session that was not recovered). */
  forget(streams: ReadonlySet<string>): void {
    const kept = this.#held.slice(this.#heldHead).filter((held) => held.stream === undefined || !streams.has(held.stream));
    this.#held = kept;
    this.#heldHead = 0;
    this.#heldBytes = kept.reduce((bytes, held) => bytes + held.frame.byteLength, 0);
  }

  /** The connection ended: nothing more is written. */
  stop(): void {
    this.#stopped = true;
    this.#held = [];
    this.#heldHead = 0;
  }

  readonly #pump = (): void => {
    const connection = this.#connection;
    while (!this.#stopped) {
      if (connection.state !== 'open') return this.stop();
      if (!connection.hasRoom) return connection.whenRoom(this.#pump);
      const frame = this.#next();
      if (frame === undefined) {
        // Everything held went out: from here the connection's frames go straight to its outbox.
        this.#stopped = true;
        this.#host.done();
        return;
      }
      connection.write(frame);
    }
  };

  /** The next frame to write: replayed, then the answer, then held; undefined when all went. */
  #next(): EncodedFrame | undefined {
    while (this.#source < this.#sources.length) {
      const { stream, epoch, messages } = this.#sources[this.#source]!;
      const message = messages[this.#message++];
      if (message === undefined) {
        this.#source++;
        this.#message = 0;
        continue;
      }
      return message.except !== undefined && this.#identities.has(message.except)
        ? skipFrame(stream, { offset: message.offset, epoch })
        : this.#frames.frame(stream, epoch, message);
    }
    const answer = this.#answer;
    if (answer !== undefined) {
      this.#answer = undefined;
      return answer;
    }
    while (this.#heldHead < this.#held.length) {
      const held = this.#held[this.#heldHead]!;
      this.#held[this.#heldHead++] = undefined as unknown as Held;
      this.#heldBytes -= held.frame.byteLength;
      const top = held.stream === undefined ? undefined : this.#tops.get(held.stream);
      if (top === undefined) return held.frame;
      if (held.joined !== undefined) {
        // Membership is never left out; a `joined` the replay went past says where the replay ended.
        return top.offset > held.joined.offset ? joinedFrame(held.stream!, { offset: top.offset, epoch: held.joined.epoch }) : held.frame;
      }
      // Live frames the replay already gave are not sent twice.
      if (held.offset === undefined || held.offset > top.offset) return held.frame;
    }
    this.#held = [];
    this.#heldHead = 0;
    return undefined;
  }
}
