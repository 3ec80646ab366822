import { within } from '../../util/timers.js';
import type { Adapter, AdapterNode, BroadcastMessage, PresenceChange } from '../adapter.js';
import type { DurableStreams } from '../durable.js';
import { Envelopes } from '../envelope.js';
import { Interest, interestKeyOf, type InterestKey } from '../interest.js';
import type { Presence } from '../presence.js';
import { Receipts } from '../receipts.js';
import { CLOSE_TIMEOUT_MS, PresenceLimitError, type Engine, type EngineContext, type EngineFactory } from './engine.js';
import type { ClusterSettings } from './options.js';

/** The adapter of an engine (`medium` names it in messages) that runs with `settings`: the engine is made once the adapter is attached. */
export function engineAdapter<S extends ClusterSettings>(
  medium: string,
  settings: S,
  Engine: new (settings: S, context: EngineContext) => Engine,
): Adapter {
  return new EngineAdapter(settings, medium, (context) => new Engine(settings, context));
}

/**
 * The adapter every engine (Redis, NATS) runs inside: the engine connects, carries bytes, subscribes
 * and keeps presence; this owns the rest, once for all of them. `attach` waits for the first link
 * (or its first failure, or `connectTimeoutMs`); a broadcast is numbered (`Envelopes`), dropped and
 * counted while the link is down or the publish backlog is full, and counted when the server says it
 * reached nobody although another node hosts its target (`Receipts`); `track` subscribes to a room
 * or user while this node hosts someone of it (`Interest`); presence reads fail at once while the
 * link is down and give up after `presenceTimeoutMs`; a heartbeat runs every `heartbeatIntervalMs`;
 * `close` takes presence away, then lets the engine go.
 */
export class EngineAdapter implements Adapter {
  readonly #settings: ClusterSettings;
  /** The medium's name in messages: 'Redis', 'NATS'. */
  readonly #medium: string;
  readonly #create: EngineFactory;
  #engine: Engine | undefined;
  #node: AdapterNode | undefined;
  #envelopes: Envelopes | undefined;
  #interest: Interest | undefined;
  #receipts: Receipts | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #backlogBytes = 0;
  #up = false;
  #lastError: unknown;
  #closed = false;
  /** Set once `attach` has settled: the link's state while first connecting is not news. */
  #attached = false;
  /** Settles `attach` once the link is first up, or an attempt first failed. */
  #firstLink: () => void = () => {};
  /** Subscriptions under way: a change that needs one waits for it too. */
  readonly #subscribing = new Map<InterestKey, Promise<void>>();
  /** Wanted, but refused (or unanswered) with the link up: the next change that needs one asks again. */
  readonly #refused = new Set<InterestKey>();

  constructor(settings: ClusterSettings, medium: string, create: EngineFactory) {
    this.#settings = settings;
    this.#medium = medium;
    this.#create = create;
  }

  /** Reads the cluster; rejects until the adapter is attached, at once while the link is down, and after `presenceTimeoutMs`. */
  readonly presence: Presence = {
    nodes: () => this.#read('nodes', (presence) => presence.nodes()),
    rooms: () => this.#read('rooms', (presence) => presence.rooms()),
    roomSize: (room) => this.#read('roomSize', (presence) => presence.roomSize(room)),
    roomMembers: (room) => this.#read('roomMembers', (presence) => presence.roomMembers(room)),
    roomUsers: (room) => this.#read('roomUsers', (presence) => presence.roomUsers(room)),
    userConnections: (user) => this.#read('userConnections', (presence) => presence.userConnections(user)),
    onlineUsers: () => this.#read('onlineUsers', (presence) => presence.onlineUsers()),
  };

  get durable(): DurableStreams | undefined {
    return this.#engine?.durable;
  }

  async attach(node: AdapterNode): Promise<void> {
    this.#node = node;
    const envelopes = (this.#envelopes = new Envelopes(node));
    const linked = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, this.#settings.connectTimeoutMs);
      this.#firstLink = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    const interest = () => this.#interest;
    const engine = (this.#engine = this.#create({
      node,
      settings: this.#settings,
      get wanted() {
        return interest()?.wanted ?? new Set();
      },
      receive: (bytes, channel) => envelopes.open(bytes, channel),
      receiveDurable: (bytes, channel) => envelopes.openDurable(bytes, channel),
      link: (up, error) => this.#link(up, error),
    }));
    this.#interest = new Interest(
      engine.presence.local,
      {
        want: (key) => this.#subscribe(key),
        drop: (key) => {
          envelopes.forget(key);
          this.#refused.delete(key);
          engine.unsubscribe(key);
        },
      },
      this.#settings.unsubscribeLingerMs,
    );
    this.#receipts = new Receipts({
      othersHost: async (target) => {
        const { local } = engine.presence;
        if (target.kind === 'all') return (await this.presence.nodes()).length > 1;
        if (target.kind === 'room') return (await this.presence.roomSize(target.room)) > (local.rooms.get(target.room)?.size ?? 0);
        return (await this.presence.userConnections(target.user)).length > (local.users.get(target.user)?.size ?? 0);
      },
      // Counted as dropped: it left this node and reached no other.
      unreceived: (_target, count) => node.dropped(count),
    });
    this.#heartbeat = setInterval(() => this.#beat(), this.#settings.heartbeatIntervalMs).unref();
    engine.start();
    await linked;
    this.#attached = true;
    if (!this.#up)
      node.linkChanged(false, this.#lastError ?? new Error(`no ${this.#medium} connection within ${this.#settings.connectTimeoutMs} ms`));
  }

  publish(message: BroadcastMessage): void {
    const node = this.#node;
    const envelopes = this.#envelopes;
    const engine = this.#engine;
    if (node === undefined || envelopes === undefined || engine === undefined) return;
    if (!this.#up || this.#backlogBytes > this.#settings.maxPublishBacklogBytes) {
      // Its number is used up all the same: the nodes that should have received it count it as lost.
      envelopes.skip(message.target);
      node.dropped(1);
      return;
    }
    const key = interestKeyOf(message.target);
    const wire = envelopes.seal(message, key ?? 'all');
    let carried: Promise<number | undefined>;
    try {
      carried = engine.publish(key, wire);
    } catch (error) {
      // Larger than the server takes, say.
      node.dropped(1);
      node.failed(error, 'publish');
      return;
    }
    this.#backlogBytes += wire.length;
    carried.then(
      (receivers) => {
        this.#backlogBytes -= wire.length;
        if (receivers !== undefined) this.#receipts?.published(message.target, key ?? 'all', receivers);
      },
      (error: unknown) => {
        this.#backlogBytes -= wire.length;
        node.dropped(1);
        if (this.#up) node.failed(error, 'publish');
      },
    );
  }

  /**
   * Writes the change to presence. If this node needs a subscription for it (the first member of a
   * room here, the first connection of a user), returns a promise that resolves once the server has
   * it, and rejects if the server refused it, or did not answer within `presenceTimeoutMs`, while the
   * link was up. A change that needs a subscription still under way waits for it too; one that needs
   * a subscription refused earlier asks for it again. While the link is down it returns undefined (or
   * resolves): the subscription is made once the link is back.
   */
  track(change: PresenceChange): Promise<void> | undefined {
    const engine = this.#engine;
    const interest = this.#interest;
    if (engine === undefined || interest === undefined) return undefined;
    const subscribed = interest.changed(change, engine.presence.track(change));
    if (subscribed !== undefined) return subscribed;
    const key = neededBy(change);
    if (key === undefined || !interest.wanted.has(key)) return undefined;
    return this.#subscribing.get(key) ?? (this.#refused.has(key) ? this.#subscribe(key) : undefined);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#heartbeat);
    this.#interest?.close();
    const engine = this.#engine;
    if (engine === undefined) return;
    try {
      await within(engine.presence.close(), CLOSE_TIMEOUT_MS, 'removing presence');
    } finally {
      this.#up = false;
      await engine.close();
    }
  }

  #link(up: boolean, error: unknown): void {
    if (this.#closed) return;
    if (error !== undefined) this.#lastError = error;
    this.#up = up;
    // A first failed attempt settles `attach` too: the runtime starts local-only rather than wait.
    if (up || error !== undefined) this.#firstLink();
    if (this.#attached) this.#node!.linkChanged(up, up ? undefined : this.#lastError);
  }

  #read<T>(what: string, read: (presence: Presence) => Promise<T>): Promise<T> {
    const engine = this.#engine;
    if (engine === undefined) return Promise.reject(new Error(`the ${this.#medium} adapter is not attached to a runtime`));
    // Fail at once rather than wait for a server that is gone.
    if (!this.#up) return Promise.reject(new Error(`not connected to ${this.#medium}`));
    // A stalled server answers nothing: the read gives up, and says so.
    const pending = within(read(engine.presence), this.#settings.presenceTimeoutMs, `presence read (${what})`);
    pending.catch((error: unknown) => {
      // A read refused for its size is the caller's question being too large, not the cluster failing.
      if (!(error instanceof PresenceLimitError)) this.#node?.failed(error, 'presence read');
    });
    return pending;
  }

  /** Subscribes to `key`'s channel; the promise rejects only if it failed while the link stayed up. */
  #subscribe(key: InterestKey): Promise<void> | undefined {
    const engine = this.#engine!;
    const made = engine.subscribe(key);
    if (made === undefined) return undefined;
    const channel = engine.channelOf(key);
    const settled = () => {
      if (this.#subscribing.get(key) === subscribing) this.#subscribing.delete(key);
    };
    const subscribing = within(made, this.#settings.presenceTimeoutMs, `subscribing to ${channel}`).then(
      () => {
        settled();
        this.#refused.delete(key);
      },
      (error: unknown) => {
        settled();
        // The link went down first: the engine makes it once the link is back, as if asked while it was down.
        if (!this.#up || this.#closed || !this.#interest!.wanted.has(key)) return;
        this.#refused.add(key);
        const why = error instanceof Error ? error.message : String(error);
        throw new Error(`${this.#medium} did not subscribe this node to ${channel} with the link up: ${why}`, { cause: error });
      },
    );
    this.#subscribing.set(key, subscribing);
    return subscribing;
  }

  #beat(): void {
    this.#engine?.beat().catch((error: unknown) => {
      if (this.#up) this.#node?.failed(error, 'heartbeat');
    });
  }
}

/** The room or user a change would make this node subscribe to. */
function neededBy(change: PresenceChange): InterestKey | undefined {
  if (change.kind === 'join') return `room:${change.room}`;
  if ((change.kind === 'connect' || change.kind === 'bind') && change.user !== undefined) return `user:${change.user}`;
  return undefined;
}
