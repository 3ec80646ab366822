/**
 * Durable streams and sessions in Redis, after Centrifugo's engine: one
 * script per publish numbers the message, appends it to the stream's history
 * and publishes it with its position, on keys of one hash tag (one shard of a
 * Redis Cluster). Keys, each stream's tag the same as its channel's:
 *
 * - `<p>:{<stream>}:m`   hash: `e` epoch, `s` last offset, `r` the Redis run id that numbered it (24 h ttl, renewed)
 * - `<p>:{<stream>}:h`   stream: entry id `<offset>-1`, field `d` the message as it travels (`envelope.ts`)
 * - `<p>:{s:<key>}`      hash: a session by its token's hash: `o` the connection holding it ('' once dropped), `u` user, `d` record
 * - `<p>:{ctl:<node>}`   channel: asks a node to close one of its connections (a resume took its session over)
 */
import { positive } from '../../util/validate.js';
import {
  type DurableMessage,
  type DurableOptions,
  type DurableSessions,
  type DurableStreams,
  freshEpoch,
  type HistoryMessage,
  type RangeStatus,
  type SessionOwner,
  type StreamPosition,
  type StreamRange,
} from '../durable.js';
import { decodeWire, encodeWire } from '../envelope.js';
import { append, DURABLE_SCRIPTS, position, read, sessionDrop, sessionOpen, sessionTake, sessionWrite } from './durable-scripts.js';
import type { RedisLink } from './link.js';
import type { Script } from './scripts.js';

/** How long a stream's epoch and last offset are kept after its last message. */
const META_TTL_MS = 24 * 60 * 60 * 1000;
/** How often the sessions of live connections are renewed; they are kept this much past the window. */
const SESSION_RENEW_MS = 10_000;
const NO_USER = '\u0000';

export interface DurableSettings {
  readonly maxMessages: number;
  readonly maxAgeMs: number;
  readonly positionCheckMs: number;
}

export function durableSettingsOf(options: DurableOptions | true): DurableSettings {
  const given = options === true ? {} : options;
  return {
    maxMessages: positive('options.durable.maxMessages', given.maxMessages ?? 1000, 1),
    maxAgeMs: positive('options.durable.maxAgeMs', given.maxAgeMs ?? 300_000, 1),
    positionCheckMs: positive('options.durable.positionCheckMs', given.positionCheckMs ?? 2000, 10),
  };
}

export class RedisDurable implements DurableStreams {
  readonly sessions: DurableSessions;
  readonly #link: RedisLink;
  readonly #prefix: string;
  readonly #settings: DurableSettings;
  /** The channel of a room or user stream, or everyone's. */
  readonly #channel: (stream: string) => string;
  readonly #origin: string;

  constructor(
    link: RedisLink,
    prefix: string,
    settings: DurableSettings,
    origin: string,
    channel: (stream: string) => string,
    failed: (error: unknown, what: string) => void,
  ) {
    this.#link = link;
    this.#prefix = prefix;
    this.#settings = settings;
    this.#origin = origin;
    this.#channel = channel;
    this.sessions = new RedisSessions(link, prefix, failed);
  }

  get positionCheckMs(): number {
    return this.#settings.positionCheckMs;
  }

  /** Loads the scripts on every master (after every reconnect: Redis may have restarted). */
  load(): Promise<void> {
    return Promise.all(DURABLE_SCRIPTS.map((script) => this.#link.everyMaster(['SCRIPT', 'LOAD', script.source]))).then(() => {});
  }

  /** Stops renewing the sessions of this node's connections. */
  close(): void {
    (this.sessions as RedisSessions).close();
  }

  /** The control channel of a node. */
  control(node: string): string {
    return `${this.#prefix}:{ctl:${node}}`;
  }

  async append(stream: string, message: DurableMessage, publish: boolean, epoch = freshEpoch()): Promise<StreamPosition> {
    const entry = encodeWire(this.#origin, { epoch: 1, seq: 1 }, message);
    const channel = publish ? this.#channel(stream) : '';
    const command = this.#link.sharded && stream !== 'all' ? 'SPUBLISH' : 'PUBLISH';
    const { maxMessages, maxAgeMs } = this.#settings;
    const args = [epoch, String(maxMessages), String(maxAgeMs), String(META_TTL_MS), entry, channel, command];
    const [offset, at] = (await append.run(this.#link, this.#keys(stream), args)) as [number, string];
    return { offset: Number(offset), epoch: String(at) };
  }

  async position(stream: string): Promise<StreamPosition> {
    const [offset, epoch] = (await position.run(this.#link, this.#keys(stream), [freshEpoch(), String(META_TTL_MS)])) as [number, string];
    return { offset: Number(offset), epoch: String(epoch) };
  }

  async range(stream: string, since: StreamPosition): Promise<StreamRange> {
    const count = String(this.#settings.maxMessages * 2);
    const answer = (await read.run(this.#link, this.#keys(stream), [String(since.offset), since.epoch, freshEpoch(), count], true)) as [
      Buffer,
      number,
      Buffer,
      Array<[Buffer, Buffer[]]>?,
    ];
    const [epoch, top, status, entries = []] = answer;
    const messages: HistoryMessage[] = entries.map(([id, fields]) => {
      const { message } = decodeWire(fields[1]!);
      const offset = Number(String(id).slice(0, -2));
      return message.except === undefined
        ? { offset, data: message.data, binary: message.binary }
        : { offset, data: message.data, binary: message.binary, except: message.except };
    });
    return { epoch: String(epoch), top: Number(top), status: String(status) as RangeStatus, messages };
  }

  #keys(stream: string): [string, string] {
    return [`${this.#prefix}:{${stream}}:m`, `${this.#prefix}:{${stream}}:h`];
  }
}

class RedisSessions implements DurableSessions {
  readonly #link: RedisLink;
  readonly #prefix: string;
  readonly #failed: (error: unknown, what: string) => void;
  /** Sessions of live connections here, by key, with their ttl: renewed every `SESSION_RENEW_MS`. */
  readonly #live = new Map<string, number>();
  #renewal: NodeJS.Timeout | undefined;

  constructor(link: RedisLink, prefix: string, failed: (error: unknown, what: string) => void) {
    this.#link = link;
    this.#prefix = prefix;
    this.#failed = failed;
  }

  open(key: string, owner: SessionOwner, user: string | undefined, record: string, ttlMs: number): void {
    const ttl = ttlMs + SESSION_RENEW_MS;
    this.#live.set(key, ttl);
    this.#renewal ??= setInterval(() => this.#renew(), SESSION_RENEW_MS).unref();
    this.#run(sessionOpen, key, [owner, user ?? NO_USER, record, String(ttl)], 'session write');
  }

  write(key: string, owner: SessionOwner, record: string, user: string | undefined): void {
    const ttl = this.#live.get(key);
    if (ttl !== undefined) this.#run(sessionWrite, key, [owner, record, String(ttl), '0', user ?? NO_USER], 'session write');
  }

  async detach(key: string, owner: SessionOwner, record: string, windowMs: number): Promise<boolean> {
    this.#live.delete(key);
    try {
      return (await sessionWrite.run(this.#link, [this.#key(key)], [owner, record, String(windowMs), '1'])) === 1;
    } catch (error) {
      this.#failed(error, 'session write');
      return false;
    }
  }

  drop(key: string, owner: SessionOwner): void {
    this.#live.delete(key);
    this.#run(sessionDrop, key, [owner], 'session write');
  }

  async take(key: string, user: string | undefined, gone = ''): Promise<{ record: string } | { live: SessionOwner } | undefined> {
    const [outcome, value] = (await sessionTake.run(this.#link, [this.#key(key)], [user ?? NO_USER, gone])) as [string, string?];
    if (outcome === 'taken') return { record: String(value) };
    if (outcome === 'live') return { live: String(value) };
    return undefined;
  }

  async replace(owner: SessionOwner): Promise<boolean> {
    const node = owner.slice(0, owner.indexOf('-'));
    const channel = `${this.#prefix}:{ctl:${node}}`;
    const receivers = await this.#link.publish(channel, Buffer.from(`replace ${owner}`), this.#link.sharded);
    return Number(receivers) > 0;
  }

  close(): void {
    clearInterval(this.#renewal);
  }

  #renew(): void {
    if (!this.#link.isReady) return;
    for (const [key, ttl] of this.#live) {
      this.#link.send(this.#key(key), ['PEXPIRE', this.#key(key), String(ttl)]).catch(() => {});
    }
  }

  #run(script: Script, key: string, args: string[], what: string): void {
    script.run(this.#link, [this.#key(key)], args).catch((error: unknown) => this.#failed(error, what));
  }

  #key(key: string): string {
    return `${this.#prefix}:{s:${key}}`;
  }
}
