/**
 * A runtime on durable streams: its broadcasts numbered by the
 * engine for the whole cluster and delivered to its `berth.v1` members by
 * feeds, in offset order, once their position is known; its direct sends
 * kept in the engine too; its sessions kept there, written as they change,
 * so that a client resumes on any node. Recipients without an envelope still
 * get this node's own broadcasts at once.
 */
import type { SupervisorDirectory } from '../../machines/supervisor.machine.js';
import type { SessionRecord } from '../../machines/sessions.js';
import type { Target } from '../../machines/types.js';
import type { Adapter, BroadcastMessage } from '../cluster/adapter.js';
import { freshEpoch, type DurableStreams } from '../cluster/durable.js';
import type { ServerConnection } from '../connection/connection.js';
import { encode } from '../delivery/frame.js';
import type { HistoryRead, HistoryStore, StreamPosition } from '../history/store.js';
import type { Metrics } from '../observability/metrics.js';
import { connectionStream, streamOf, type Payload } from '../protocol/v1.js';
import { ErrorCode, toBerthError, type BerthError } from '../util/errors.js';
import { Feeds, targetOf, type NumberedMessage } from './feeds.js';
import type { SessionKeeper } from './recovery/recovery.js';
import { sessionKey } from './recovery/sessions.js';
import type { Streams } from './streams.js';
import type { SupervisorRunner } from './supervisor.js';

export interface DurableHost {
  readonly durable: DurableStreams;
  readonly nodeId: string;
  readonly checkMs: number;
  readonly supervisor: SupervisorRunner;
  /** Asked when a message is delivered (the runtime builds its streams after this). */
  streams(): Streams;
  readonly metrics: Metrics;
  directory(): SupervisorDirectory;
  report(error: BerthError): void;
  /** Sessions this node keeps for a resume at once (`recovery.maxSessions`): past it a dropped connection's is not kept. */
  readonly maxSessions: number;
  /** The runtime's `lost` event: `count` messages of `target` (unknown: undefined) will never reach this node. */
  lost(target: Target, count: number | undefined, reason: 'trimmed' | 'epoch-changed'): void;
}

/** The durable delivery of a runtime whose adapter keeps durable streams; none otherwise. */
export function durableDelivery(adapter: Adapter, host: Omit<DurableHost, 'durable' | 'checkMs'>): DurableDelivery | undefined {
  const durable = adapter.durable;
  return durable === undefined ? undefined : new DurableDelivery({ ...host, durable, checkMs: durable.positionCheckMs });
}

export class DurableDelivery {
  readonly feeds: Feeds;
  /** The engine's history, as recovery reads it for a resume. */
  readonly history: HistoryStore;
  /** Sessions kept in the engine. */
  readonly sessions: SessionKeeper;
  readonly #host: DurableHost;
  /** The epoch of each live connection's own stream, until its first message created it. */
  readonly #direct = new Map<string, { epoch: string; started: boolean }>();
  /** Set from a publish the engine refused until one it takes: reported once. */
  #refusing = false;

  constructor(host: DurableHost) {
    this.#host = host;
    this.feeds = new Feeds({
      durable: host.durable,
      checkMs: host.checkMs,
      deliver: (stream, message) => this.#deliver(stream, message),
      lost: (stream, position, reason, count) => this.#lost(stream, position, reason, count),
      hosts: (stream) => this.#hosts(stream),
      failed: (error, what) => this.#failed(error, what),
    });
    this.history = engineHistory(host.durable);
    this.sessions = engineSessions(host.durable, host.maxSessions);
  }

  /** The application's broadcast: numbered and published by the engine; every node delivers it to its `berth.v1` members from there. */
  send(message: BroadcastMessage): void {
    this.#host.metrics.crossNode('published');
    this.#host.durable.append(streamOf(message.target), message, true).then(
      () => {
        this.#refusing = false;
      },
      (error: unknown) => {
        this.#host.metrics.crossNode('dropped');
        this.#host.metrics.dropped('history-unavailable', 1);
        // Every refusal is counted; one is reported per outage, not one per message it refuses.
        if (this.#refusing) return;
        this.#refusing = true;
        this.#failed(error, `publishing to ${streamOf(message.target)}`);
      },
    );
  }

  /** A message the engine published, with its position. */
  received(message: BroadcastMessage): void {
    if (message.position === undefined) return;
    if (message.origin !== this.#host.nodeId) this.#host.metrics.crossNode('received');
    this.feeds.received(streamOf(message.target), message as NumberedMessage);
  }

  /** Where a stream stands for a connection attached to it now: its own stream's start, or its feed's position once known. */
  position(stream: string, then: (position: StreamPosition) => void): void {
    if (stream.startsWith('conn:')) {
      const direct = this.#direct.get(stream.slice('conn:'.length));
      if (direct !== undefined) then({ offset: 0, epoch: direct.epoch });
      return;
    }
    this.feeds.whenKnown(stream, then);
  }

  /**
   * A connection opened (raw or `berth.v1`): the feeds of everyone's stream and of its user's are made
   * now if there are none, so that this node's delivery of them starts before what it is sent next.
   */
  connected(user: string | undefined): void {
    this.feeds.whenKnown('all', () => {});
    if (user !== undefined) this.feeds.whenKnown(streamOf({ kind: 'user', user }), () => {});
  }

  opened(id: string): void {
    this.#direct.set(id, { epoch: freshEpoch(), started: false });
  }

  closed(id: string): void {
    this.#direct.delete(id);
  }

  /** A send to one `berth.v1` connection: kept in the engine on its own stream, delivered once numbered. */
  direct(connection: ServerConnection<unknown>, payload: Payload): boolean {
    const direct = this.#direct.get(connection.id);
    if (direct === undefined || connection.state !== 'open') return false;
    // Its first message starts the stream in the epoch its session was told; a later one finding none (lost) starts a new one.
    const epoch = direct.started ? undefined : direct.epoch;
    direct.started = true;
    const message: BroadcastMessage = { target: { kind: 'all' }, ...payload };
    this.#host.durable.append(connectionStream(connection.id), message, false, epoch).then(
      (position) => this.#host.streams().numberedDirect(connection, payload, position),
      (error: unknown) => {
        this.#host.metrics.dropped('history-unavailable', 1);
        this.#failed(error, `sending to ${connection.id}`);
      },
    );
    return true;
  }

  close(): void {
    this.feeds.close();
  }

  #deliver(stream: string, message: NumberedMessage): void {
    const { supervisor } = this.#host;
    const streams = this.#host.streams();
    if (!supervisor.active) return;
    const here = message.origin === this.#host.nodeId;
    const target = targetOf(stream);
    let frame: ReturnType<typeof encode>;
    try {
      frame = encode(message.data, message.binary);
    } catch (error) {
      return this.#failed(error, `framing a message of ${stream}`);
    }
    supervisor.send({
      type: 'broadcast',
      target,
      except: message.except,
      frame,
      envelopedOnly: here,
      delivered: (_recipients, enveloped) => streams.numbered(target, message.except, message, message.position, enveloped),
    });
  }

  #lost(stream: string, position: StreamPosition, reason: 'trimmed' | 'epoch-changed', count: number | undefined): void {
    const { supervisor, metrics } = this.#host;
    const streams = this.#host.streams();
    const target = targetOf(stream);
    if (count !== undefined) metrics.lost(target.kind, count);
    this.#host.lost(target, count, reason);
    if (!supervisor.active) return;
    supervisor.send({
      type: 'broadcast',
      target,
      frame: encode('', undefined),
      envelopedOnly: true,
      delivered: (_recipients, enveloped) => streams.lost(stream, position, reason, enveloped),
    });
  }

  #hosts(stream: string): boolean {
    if (stream === 'all') return true;
    const directory = this.#host.directory();
    if (stream.startsWith('room:')) return directory.rooms.has(stream.slice('room:'.length));
    return directory.users.has(stream.slice('user:'.length));
  }

  #failed(error: unknown, what: string): void {
    this.#host.metrics.adapterFailed(what);
    this.#host.report(toBerthError(ErrorCode.ADAPTER, `durable streams: ${what} failed`, error));
  }
}

/** The engine's history, as the history-store contract reads it: every message after a position, or why not. */
function engineHistory(durable: DurableStreams): HistoryStore {
  return {
    append: (stream, message) => durable.append(stream, { target: { kind: 'all' }, ...message }, false),
    position: (stream) => durable.position(stream),
    read: async (stream, since): Promise<HistoryRead> => {
      const messages = [];
      let from = since;
      for (;;) {
        const range = await durable.range(stream, from);
        const position = { offset: range.top, epoch: range.epoch };
        if (range.status === 'unknown') {
          // A stream never written (a connection's own stream that was sent nothing) has nothing to miss.
          if (since.offset === 0) return { recovered: true, position: since, messages: [] };
          return { recovered: false, position: { offset: 0, epoch: '' }, reason: 'epoch-changed' };
        }
        if (range.status === 'epoch-changed' || range.status === 'ahead') return { recovered: false, position, reason: range.status };
        if (range.status === 'trimmed') return { recovered: false, position, reason: 'trimmed' };
        messages.push(...range.messages);
        const last = range.messages.at(-1)?.offset ?? from.offset;
        if (last >= range.top || range.messages.length === 0)
          return { recovered: true, position: { offset: last, epoch: range.epoch }, messages };
        from = { offset: last, epoch: range.epoch };
      }
    },
    close: async () => {},
  };
}

/**
 * Sessions in the engine, by the hash of their token, as JSON. `maxSessions` bounds those this node
 * has kept within their window (whether or not another node has taken them since): past it, a
 * dropped connection's session is forgotten, as the supervisor's would be.
 */
function engineSessions(durable: DurableStreams, maxSessions: number): SessionKeeper {
  const { sessions } = durable;
  const live = new Set<string>();
  /** Sessions kept here, by when their window ends, oldest first. */
  const kept = new Map<string, number>();
  return {
    keep: (record, windowMs, done) => {
      const key = sessionKey(record.token);
      live.delete(key);
      const now = performance.now();
      for (const [other, until] of kept) {
        if (until > now) break;
        kept.delete(other);
      }
      if (kept.size >= maxSessions) {
        sessions.drop(key, record.previous);
        return done(false);
      }
      kept.set(key, now + windowMs);
      void sessions.detach(key, record.previous, encodeRecord(record), windowMs).then(done);
    },
    take: (token, user, taken, gone) => {
      sessions.take(sessionKey(token), user, gone).then(
        (found) => {
          if (found === undefined) return taken(undefined);
          if ('live' in found) return taken(undefined, found.live);
          taken(decodeRecord(found.record, token));
        },
        () => taken(undefined),
      );
    },
    holds: () => false,
    holdsAny: false,
    live: (record, windowMs) => {
      const key = sessionKey(record.token);
      if (live.has(key)) return sessions.write(key, record.previous, encodeRecord(record), record.user);
      live.add(key);
      sessions.open(key, record.previous, record.user, encodeRecord(record), windowMs);
    },
    ended: (token, owner) => {
      const key = sessionKey(token);
      live.delete(key);
      sessions.drop(key, owner);
    },
    replace: (owner) => sessions.replace(owner),
  };
}

function encodeRecord(record: SessionRecord): string {
  const streams = [...record.streams].map(([stream, { offset, epoch }]) => [stream, offset, epoch]);
  return JSON.stringify({ p: record.previous, f: record.resumedFrom ?? [], u: record.user ?? null, r: record.rooms, s: streams });
}

function decodeRecord(text: string, token: string): SessionRecord {
  const parsed = JSON.parse(text) as { p: string; f: string[]; u: string | null; r: string[]; s: Array<[string, number, string]> };
  return {
    token,
    previous: parsed.p,
    resumedFrom: parsed.f,
    user: parsed.u ?? undefined,
    rooms: parsed.r,
    streams: new Map(parsed.s.map(([stream, offset, epoch]) => [stream, { offset, epoch }])),
  };
}
