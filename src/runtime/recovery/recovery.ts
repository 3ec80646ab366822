/**
 * Sessions of `berth.v1` connections, as the runtime keeps and resumes them:
 * a dropped connection leaves its session behind (its user, rooms, and where
 * each of its streams stood), and a client that comes back with its token
 * gets its rooms back and what it missed replayed, exactly once and in
 * order, before anything live — or is told which streams were lost.
 *
 * Where sessions are kept is behind `SessionKeeper` (the supervisor today);
 * what was missed comes from the history store. Each connection's part of
 * this (its token, the streams it is attached to, its replay) is held here,
 * not on the connection.
 */
import type { SessionRecord } from '../../../machines/sessions.js';
import type { CloseCause, Target } from '../../../machines/types.js';
import { CloseCode } from '../../connection/close-codes.js';
import type { ServerConnection } from '../../connection/connection.js';
import type { HistoryRead, StreamPosition } from '../../history/store.js';
import { connectionStream, resumedFrame, streamOf, type LostStream, type ResumeFailure } from '../../protocol/v1.js';
import { Replay, type ReplaySource } from './replay.js';
import { ReplayFrames } from './replay-frames.js';
import type { RecoveryHost } from './host.js';
import { sessionToken } from './sessions.js';

export type { RecoveryHost, ResumeOutcome, SessionKeeper } from './host.js';

/** Connections a message's `except` may name for it to be a `skip` to a session: its own and those it resumed. */
const MAX_IDENTITIES = 16;
/** How long a resume waits between tries to take a session another node's connection still holds, and how many times. */
const TAKE_RETRY_MS = 20;
const MAX_TAKE_TRIES = 100;

/** One `berth.v1` connection's part in recovery. */
class Session {
  readonly token = sessionToken();
  /** The streams it is attached to, and where each stood when it was: where a resume replays from at the latest. */
  readonly attached = new Map<string, StreamPosition>();
  /** Its own id, then those of the connections whose sessions it resumed (newest first). */
  identities: readonly string[];
  /** Set while its frames wait behind a replay (or for the resume its client said would come). */
  replay: Replay | undefined;
  /** Set once it resumed (or tried): a connection resumes at most once. */
  resumed = false;
  /** Set while its streams are held between leaving its rooms and its session being kept. */
  holdingStreams = false;
  /** The deadline's timer while the client, which offered `berth.resume`, has not sent its first message. */
  resumeExpected: unknown;
  /** Set while a write of the live session to a shared keeper is queued (changes in one turn are written once). */
  writing = false;

  constructor(id: string) {
    this.identities = [id];
  }
}

/** A stream's history read for a resume; a store that failed is a stream that cannot be recovered. */
interface StreamRead {
  readonly stream: string;
  readonly read: Extract<HistoryRead, { recovered: true }> | { readonly recovered: false; readonly reason: string };
}

type Answer =
  { recovered: true; previous: string; replayed: number } | { recovered: false; reason: ResumeFailure; lost: readonly LostStream[] };

export class Recovery {
  readonly #host: RecoveryHost;
  readonly #sessions = new Map<string, Session>();
  /** Open connections by their session token: a resume may take one over whose socket is half-open. */
  readonly #byToken = new Map<string, ServerConnection<unknown>>();
  /** Resumes waiting for the session of a connection they replaced to be kept, by its token (two may race: one gets it). */
  readonly #replacing = new Map<string, Array<() => void>>();
  /** Streams of connections on their way out that may leave a session, and how many hold each. */
  readonly #leavingStreams = new Map<string, number>();
  /** Replayed messages' frames, shared by every client that resumes: 8 MiB at most. */
  readonly #frames = new ReplayFrames(8 * 1024 * 1024);

  constructor(host: RecoveryHost) {
    this.#host = host;
  }

  /**
   * A `berth.v1` connection is registered: its session token (for its `welcome`), and where the
   * streams every connection has stand. A client that offered `berth.resume` has everything live held
   * from here for the replay to go first.
   */
  open(connection: ServerConnection<unknown>, offersResume: boolean): string {
    const session = new Session(connection.id);
    this.#sessions.set(connection.id, session);
    this.#byToken.set(session.token, connection);
    if (offersResume) {
      this.#hold(connection, session);
      session.resumeExpected = this.#host.timers.setTimeout(() => this.received(connection), this.#host.resumeTimeoutMs);
    }
    this.attached(connection, 'all');
    this.attached(connection, connectionStream(connection.id));
    if (connection.user !== undefined) this.attached(connection, streamOf({ kind: 'user', user: connection.user }));
    return session.token;
  }

  /** The client sent something other than `resume` first: it resumes no more, and what was held goes out. */
  received(connection: ServerConnection<unknown>): void {
    const session = this.#sessions.get(connection.id);
    if (session?.resumeExpected === undefined) return;
    this.#host.timers.clearTimeout(session.resumeExpected);
    session.resumeExpected = undefined;
    session.replay?.release();
  }

  /** Notes where a stream stood as the connection was attached to it (it connected, joined, was bound), unless it is already. */
  attached(connection: ServerConnection<unknown>, stream: string, position?: StreamPosition): void {
    const session = this.#sessions.get(connection.id);
    if (session === undefined || session.attached.has(stream)) return;
    if (position !== undefined) {
      session.attached.set(stream, position);
      return this.#changed(connection, session);
    }
    this.#host.position(stream, (at) => {
      if (this.#sessions.get(connection.id) !== session || session.attached.has(stream)) return;
      session.attached.set(stream, at);
      this.#changed(connection, session);
    });
  }

  /** The connection left a room: its session owes the client that stream no more. */
  detached(connection: ServerConnection<unknown>, stream: string): void {
    const session = this.#sessions.get(connection.id);
    if (session?.attached.delete(stream) === true) this.#changed(connection, session);
  }

  /** The connection was bound to a user (or unbound): attached to that user's stream, and no longer to the previous one's. */
  bound(connection: ServerConnection<unknown>, user: string | undefined): void {
    const attached = this.#sessions.get(connection.id)?.attached;
    if (attached === undefined) return;
    for (const stream of attached.keys()) if (stream.startsWith('user:')) attached.delete(stream);
    if (user !== undefined) this.attached(connection, streamOf({ kind: 'user', user }));
    this.#changed(connection, this.#sessions.get(connection.id)!);
  }

  /** Whether a broadcast to `target` must be numbered and kept although no live `berth.v1` connection gets it. */
  holds(target: Target): boolean {
    const { sessions } = this.#host;
    if (this.#leavingStreams.size === 0 && !sessions.holdsAny) return false;
    const stream = streamOf(target);
    return this.#leavingStreams.has(stream) || sessions.holds(stream);
  }

  /**
   * The connection began to disconnect: out of its rooms already, its socket maybe not yet closed, and
   * its session not yet kept. What its streams are sent meanwhile reaches nobody live: held, it is
   * numbered and kept all the same, for the resume to replay.
   */
  leaving(connection: ServerConnection<unknown>): void {
    const session = this.#sessions.get(connection.id);
    if (session !== undefined) this.#holdStreams(session, true);
  }

  /** The connection closed: a session it leaves behind is kept for the recovery window. */
  closed(connection: ServerConnection<unknown>, code: number, cause: CloseCause): void {
    const session = this.#sessions.get(connection.id);
    if (session === undefined) return;
    this.#sessions.delete(connection.id);
    this.#byToken.delete(session.token);
    session.replay?.stop();
    connection.hold = undefined;
    const owedResume = session.resumeExpected !== undefined;
    if (owedResume) this.#host.timers.clearTimeout(session.resumeExpected);
    this.#detach(connection, session, code, cause, owedResume, () => {
      this.#holdStreams(session, false);
      const waiting = this.#replacing.get(session.token) ?? [];
      this.#replacing.delete(session.token);
      for (const retry of waiting) retry();
    });
  }

  /**
   * A client resuming the session of a connection it had (by `tokens`, tried in order): its rooms back,
   * and every message of its streams it missed replayed before anything new. If any stream cannot be
   * recovered, the connection starts fresh and the client is told which streams.
   */
  resume(connection: ServerConnection<unknown>, tokens: readonly string[], positions: ReadonlyMap<string, StreamPosition>): void {
    const session = this.#sessions.get(connection.id);
    if (session === undefined) return this.#answer(connection, undefined, { recovered: false, reason: 'not-kept', lost: [] });
    if (session.resumed) return this.#answer(connection, session, { recovered: false, reason: 'already-resumed', lost: [] });
    session.resumed = true;
    if (session.resumeExpected !== undefined) this.#host.timers.clearTimeout(session.resumeExpected);
    session.resumeExpected = undefined;
    // From here the live messages of its streams wait behind the replay.
    if (session.replay === undefined) this.#hold(connection, session);
    const take = (index: number, replaced: boolean, gone?: string, tries = 0): void => {
      const token = tokens[index]!;
      this.#host.sessions.take(
        token,
        connection.user,
        (record, live) => {
          if (record !== undefined) return this.#restore(connection, session, record, positions);
          // The token's connection is still here: its client is gone without the server seeing it yet
          // (half-open), or is another of its own. The resume takes it over once its session is kept.
          const holder = this.#byToken.get(token);
          if (!replaced && holder !== undefined && holder !== connection && holder.user === connection.user) {
            const waiting = this.#replacing.get(token) ?? [];
            waiting.push(() => take(index, true));
            this.#replacing.set(token, waiting);
            holder.replace();
            return;
          }
          if (live !== undefined && holder === undefined && this.#host.sessions.replace !== undefined && tries < MAX_TAKE_TRIES)
            return this.#takeOver(live, tries, (gone) => take(index, replaced, gone, tries + 1));
          if (index + 1 < tokens.length) return take(index + 1, false);
          this.#answer(connection, session, { recovered: false, reason: 'unknown-session', lost: [] });
        },
        gone,
      );
    };
    take(0, false);
  }

  /**
   * The session is held by a connection on another node (its client gone half-open, or just moved and
   * the old node not yet aware): that node is asked to close it, and the take tried again once it has
   * kept the session; a node that is gone (nobody to ask) cannot hold it, and it is taken all the same.
   */
  #takeOver(owner: string, tries: number, again: (gone?: string) => void): void {
    // Its node was asked, and has not let go in time: the connection is taken over where it is.
    if (tries === MAX_TAKE_TRIES - 1) return again(owner);
    if (tries > 0) return void this.#host.timers.setTimeout(() => again(), TAKE_RETRY_MS);
    this.#host.sessions.replace!(owner).then(
      (asked) => (asked ? this.#host.timers.setTimeout(() => again(), TAKE_RETRY_MS) : again(owner)),
      () => again(),
    );
  }

  /** Puts a taken session back on a connection: its rooms, and what it missed replayed before anything new. */
  #restore(
    connection: ServerConnection<unknown>,
    session: Session,
    record: SessionRecord,
    positions: ReadonlyMap<string, StreamPosition>,
  ): void {
    session.identities = [connection.id, record.previous, ...(record.resumedFrom ?? [])].slice(0, MAX_IDENTITIES);
    // Rooms the connection is in already (the application joined them as it connected) stay, whatever the outcome.
    const restoring = record.rooms.filter((room) => !connection.rooms.has(room));
    // Each restored room is joined and its `joined` given before its history is read: the read then
    // reaches at least as far as this node's delivery of the room had when the connection joined it.
    const joins = restoring.map((room) =>
      connection.join(room).then(() => new Promise<void>((known) => this.#host.position(streamOf({ kind: 'room', room }), () => known()))),
    );
    const from = [...record.streams].map(([stream, attachedAt]): [string, StreamPosition] => {
      const known = positions.get(stream);
      // A position in another epoch is the store's to judge (`epoch-changed` if the stream never had it).
      const since = known === undefined || (known.epoch === attachedAt.epoch && known.offset < attachedAt.offset) ? attachedAt : known;
      // This connection owes the client the stream from `since` on: if it drops before its replay is
      // through, its own session must replay from there, not from where it joined the room.
      session.attached.set(stream, since);
      return [stream, since];
    });
    void Promise.all(joins)
      .then(() => Promise.all(from.map(([stream, since]) => this.#read(stream, since))))
      .then((results) => {
        const lost = results.flatMap(({ stream, read }) => (read.recovered ? [] : [{ s: stream, reason: read.reason }]));
        if (lost.length === 0) return this.#replay(connection, session, record, results);
        // Starts fresh: none of the session's rooms, none of what waited for them, and its streams count from now.
        const restored = new Set(restoring.map((room) => streamOf({ kind: 'room', room })));
        for (const stream of record.streams.keys()) {
          session.attached.delete(stream);
          if (!restored.has(stream) && this.#attachable(connection, stream)) this.attached(connection, stream);
        }
        return Promise.all(restoring.map((room) => connection.leave(room))).then(() => {
          session.replay?.forget(restored);
          this.#answer(connection, session, { recovered: false, reason: 'lost', lost });
        });
      })
      .catch((error: unknown) => this.#resumeFailed(connection, session, error));
  }

  #replay(connection: ServerConnection<unknown>, session: Session, record: SessionRecord, results: readonly StreamRead[]): void {
    const sources: ReplaySource[] = [];
    let replayed = 0;
    for (const { stream, read } of results) {
      if (!read.recovered) continue;
      sources.push({ stream, epoch: read.position.epoch, messages: read.messages, top: read.position.offset });
      replayed += read.messages.length;
    }
    const answer: Answer = { recovered: true, previous: record.previous, replayed };
    this.#outcome(connection, answer);
    session.replay?.start(sources, new Set(session.identities), resumedFrame(answer));
  }

  /** A resume that failed on berth's side: reported, and what was held goes out so that the connection carries on. */
  #resumeFailed(connection: ServerConnection<unknown>, session: Session, error: unknown): void {
    this.#host.failed(error);
    session.replay?.release();
  }

  /** Answers a resume that replays nothing: `resumed`, then what was held. */
  #answer(connection: ServerConnection<unknown>, session: Session | undefined, answer: Answer): void {
    this.#outcome(connection, answer);
    const frame = resumedFrame(answer);
    const replay = session?.replay;
    // A second `resume` while the first one's replay runs is answered after it.
    if (replay !== undefined && answer.recovered === false && answer.reason !== 'already-resumed') replay.release(frame);
    else connection.deliver(frame);
  }

  #outcome(connection: ServerConnection<unknown>, answer: Answer): void {
    this.#host.outcome(answer.recovered ? 'resumed' : answer.reason);
    this.#host.resumed(connection, {
      recovered: answer.recovered,
      previous: answer.recovered ? answer.previous : undefined,
      lost: answer.recovered ? [] : answer.lost.map(({ s, reason }) => ({ stream: s, reason })),
    });
  }

  /** A history read that never throws: a failing store is a stream that cannot be recovered. */
  #read(stream: string, since: StreamPosition): Promise<StreamRead> {
    return new Promise<HistoryRead>((resolve) => resolve(this.#host.history.read(stream, since))).then(
      (read): StreamRead => ({ stream, read }),
      (error: unknown): StreamRead => {
        this.#host.historyFailed(stream, error);
        return { stream, read: { recovered: false, reason: 'history-failed' } };
      },
    );
  }

  /** Whether a fresh connection is attached to `stream` of a session it did not recover. */
  #attachable(connection: ServerConnection<unknown>, stream: string): boolean {
    if (stream === 'all' || stream === connectionStream(connection.id)) return true;
    if (connection.user !== undefined && stream === streamOf({ kind: 'user', user: connection.user })) return true;
    return stream.startsWith('room:') && connection.rooms.has(stream.slice('room:'.length));
  }

  #hold(connection: ServerConnection<unknown>, session: Session): Replay {
    const replay = new Replay(connection, this.#frames, {
      dropped: (count) => this.#host.dropped(connection, 'outbox-overflow', count),
      done: () => {
        if (session.replay === replay) session.replay = undefined;
        if (connection.hold === replay) connection.hold = undefined;
      },
    });
    session.replay = replay;
    connection.hold = replay;
    return replay;
  }

  /**
   * A connection that ended other than deliberately leaves its session behind for the recovery
   * window: its user, its rooms, and where each of its streams stood. `then` runs once that is
   * settled, kept or not.
   */
  #detach(
    connection: ServerConnection<unknown>,
    session: Session,
    code: number,
    cause: CloseCause,
    owedResume: boolean,
    then: () => void,
  ): void {
    const shared = this.#host.shared;
    const deliberate =
      (cause === 'client' && code === CloseCode.NORMAL) ||
      cause === 'server' ||
      (cause === 'shutdown' && !shared) ||
      cause === 'rate-limit' ||
      cause === 'handler-error';
    // A client that said it would resume an earlier session, and whose resume was never read: this
    // connection owes it that session's messages and knows nothing of them. Kept, its session would
    // answer `recovered: true` without them; not kept, the client's resume of it is told it is unknown.
    if (deliberate || owedResume || (!shared && !this.#host.running())) {
      this.#host.sessions.ended?.(session.token, connection.id);
      return then();
    }
    this.#host.sessions.keep(this.#record(connection, session, connection.roomsLeft), this.#host.windowMs, (kept) => {
      this.#host.outcome(kept ? 'detached' : 'overflow');
      then();
    });
  }

  /** The session as a keeper keeps it: its user, its rooms, and where each of the streams it is owed stood. */
  #record(connection: ServerConnection<unknown>, session: Session, rooms: readonly string[]): SessionRecord {
    const keep = new Set([...rooms.map((room) => streamOf({ kind: 'room', room })), 'all', connectionStream(connection.id)]);
    if (connection.user !== undefined) keep.add(streamOf({ kind: 'user', user: connection.user }));
    // The direct streams of the connections whose sessions this one resumed: it owes the client what
    // their replay had not yet delivered (`#restore` attached them from where that replay began).
    for (const id of session.identities) keep.add(connectionStream(id));
    const streams = new Map([...session.attached].filter(([stream]) => keep.has(stream)));
    return {
      token: session.token,
      previous: connection.id,
      resumedFrom: session.identities.slice(1),
      user: connection.user,
      rooms,
      streams,
    };
  }

  /** A live session changed: a keeper shared by nodes is told, once per turn, while its connection is open. */
  #changed(connection: ServerConnection<unknown>, session: Session): void {
    const { sessions } = this.#host;
    if (sessions.live === undefined || session.writing) return;
    session.writing = true;
    queueMicrotask(() => {
      session.writing = false;
      if (this.#sessions.get(connection.id) !== session || connection.state !== 'open') return;
      sessions.live!(this.#record(connection, session, [...connection.rooms]), this.#host.windowMs);
    });
  }

  #holdStreams(session: Session, hold: boolean): void {
    if (session.holdingStreams === hold) return;
    session.holdingStreams = hold;
    for (const stream of session.attached.keys()) {
      const count = (this.#leavingStreams.get(stream) ?? 0) + (hold ? 1 : -1);
      if (count === 0) this.#leavingStreams.delete(stream);
      else this.#leavingStreams.set(stream, count);
    }
  }
}
