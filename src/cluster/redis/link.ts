import { EventEmitter } from 'node:events';
import { RESP_TYPES } from 'redis';
import type { RedisClient, RedisClusterClient } from './client.js';

type Listener = (bytes: Buffer, channel: Buffer | string) => void;

/** Command options under which bulk strings answer as Buffers (history payloads may be binary). */
const AS_BUFFERS = { typeMapping: { [RESP_TYPES.BLOB_STRING]: Buffer } } as const;

/** What a link tells: it is (back) up, so Redis may have lost what it held; it went down; a connection failed. */
export type LinkEvent = 'ready' | 'down' | 'error';

/**
 * One Redis server or one Redis Cluster, as the adapter uses it: commands
 * routed by their first key, pub/sub, and the link's state as three events.
 * On a cluster, room and user channels are sharded (`SSUBSCRIBE`,
 * `SPUBLISH`: each carried by the shard of its slot only); on one server
 * they are classic channels, which Redis 6 has too. The channel for
 * everyone is classic on both: it reaches the subscribers of every shard.
 */
export interface RedisLink {
  /** Whether room and user channels are sharded. */
  readonly sharded: boolean;
  /** Commands can be sent now (on a cluster: the topology is known and no master is reconnecting). */
  readonly isReady: boolean;
  readonly isOpen: boolean;
  /** Starts connecting; failures arrive as `error` events, and connecting is retried until `destroy`. */
  connect(): void;
  /** Sends one command to the server, or to the shard of `key`'s slot; `buffers`: bulk strings answer as Buffers. */
  send(key: string | undefined, args: ReadonlyArray<string | Buffer>, buffers?: boolean): Promise<unknown>;
  /** Sends one command to every master (`SCRIPT LOAD`), each on the connection later commands to its slots use. */
  everyMaster(args: readonly string[]): Promise<void>;
  publish(channel: string, bytes: Buffer, sharded: boolean): Promise<unknown>;
  subscribe(channel: string, listener: Listener, sharded: boolean): Promise<void>;
  unsubscribe(channel: string, listener: Listener, sharded: boolean): Promise<void>;
  /** Another link to the same Redis, for subscriptions, without an offline queue: the adapter owns it. */
  duplicate(): RedisLink;
  on(event: LinkEvent, listener: (error?: unknown) => void): void;
  once(event: LinkEvent, listener: (error?: unknown) => void): void;
  off(event: LinkEvent, listener: (error?: unknown) => void): void;
  /** Stops telling events and lets go of the client's listeners (a client the application owns lives on). */
  release(): void;
  close(): Promise<void>;
  destroy(): void;
}

/** A node-redis cluster client, told apart from a plain client by what only a cluster has. */
export function isCluster(client: RedisClient | RedisClusterClient): client is RedisClusterClient {
  return 'masters' in client && 'nodeClient' in client;
}

/** The link over a client of either kind. */
export function linkOf(client: RedisClient | RedisClusterClient, reconnectStrategy: (retries: number) => number): RedisLink {
  return isCluster(client) ? new ClusterLink(client, reconnectStrategy) : new ServerLink(client, reconnectStrategy);
}

class ServerLink extends EventEmitter implements RedisLink {
  readonly sharded = false;
  readonly #client: RedisClient;
  readonly #reconnectStrategy: (retries: number) => number;
  readonly #forward: Array<[string, (error?: unknown) => void]>;

  constructor(client: RedisClient, reconnectStrategy: (retries: number) => number) {
    super();
    this.#client = client;
    this.#reconnectStrategy = reconnectStrategy;
    this.#forward = [
      ['ready', () => this.emit('ready')],
      ['reconnecting', () => this.emit('down')],
      ['end', () => this.emit('down')],
      ['error', (error) => this.emit('error', error)],
    ];
    for (const [event, listener] of this.#forward) client.on(event, listener);
  }

  get isReady(): boolean {
    return this.#client.isReady;
  }

  get isOpen(): boolean {
    return this.#client.isOpen;
  }

  connect(): void {
    if (!this.#client.isOpen) this.#client.connect().catch(() => {}); // failures arrive as 'error' events
  }

  send(_key: string | undefined, args: ReadonlyArray<string | Buffer>, buffers = false): Promise<unknown> {
    return this.#client.sendCommand(args, buffers ? AS_BUFFERS : undefined);
  }

  async everyMaster(args: readonly string[]): Promise<void> {
    await this.#client.sendCommand(args);
  }

  publish(channel: string, bytes: Buffer): Promise<unknown> {
    return this.#client.sendCommand(['PUBLISH', channel, bytes]);
  }

  subscribe(channel: string, listener: Listener): Promise<void> {
    return this.#client.subscribe(channel, listener, true);
  }

  unsubscribe(channel: string, listener: Listener): Promise<void> {
    return this.#client.unsubscribe(channel, listener, true);
  }

  duplicate(): RedisLink {
    const reconnectStrategy = this.#reconnectStrategy;
    return new ServerLink(
      this.#client.duplicate({ disableOfflineQueue: true, socket: { reconnectStrategy } }) as RedisClient,
      reconnectStrategy,
    );
  }

  release(): void {
    for (const [event, listener] of this.#forward) this.#client.off(event, listener);
    this.removeAllListeners();
  }

  close(): Promise<void> {
    return this.#client.close();
  }

  destroy(): void {
    this.#client.destroy();
  }
}

interface NodeInfo {
  readonly host: string;
  readonly port: number;
}

/**
 * A cluster client tells of its topology once (`connect`) and of each of its
 * connections to the masters (`node-*`): the link is up while the topology
 * is known and no master's connection is reconnecting, and it is `ready`
 * again when the last one that was is back, since that master may have
 * restarted empty. A cluster client does not retry its first discovery by
 * itself: the link does, as a plain client retries its connection.
 */
class ClusterLink extends EventEmitter implements RedisLink {
  readonly sharded = true;
  readonly #cluster: RedisClusterClient;
  readonly #reconnectStrategy: (retries: number) => number;
  /** Masters (`host:port`) whose connection is reconnecting. */
  readonly #down = new Set<string>();
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- node-redis types its cluster events loosely
  readonly #forward: Array<[string, (...args: any[]) => void]>;
  #retry: NodeJS.Timeout | undefined;
  #connecting = false;
  #stopped = false;

  constructor(cluster: RedisClusterClient, reconnectStrategy: (retries: number) => number) {
    super();
    this.#cluster = cluster;
    this.#reconnectStrategy = reconnectStrategy;
    const address = (node: NodeInfo) => `${node.host}:${node.port}`;
    const lost = (_error: unknown, node: NodeInfo) => this.#lost(address(node));
    this.#forward = [
      ['connect', () => this.emit('ready')],
      ['disconnect', () => this.emit('down')],
      ['error', (error: unknown) => this.emit('error', error)],
      ['node-error', (error: unknown, node: NodeInfo) => (lost(error, node), this.emit('error', error))],
      ['node-reconnecting', (node: NodeInfo) => lost(undefined, node)],
      ['node-ready', (node: NodeInfo) => this.#back(address(node))],
      // A connection closed for good (the master left the topology): nothing to wait for.
      ['node-disconnect', (node: NodeInfo) => this.#back(address(node))],
    ];
    for (const [event, listener] of this.#forward) cluster.on(event, listener);
  }

  get isReady(): boolean {
    return this.#cluster.isReady && this.#down.size === 0;
  }

  get isOpen(): boolean {
    return this.#cluster.isOpen || this.#connecting;
  }

  connect(retries = 0): void {
    if (this.#cluster.isOpen || this.#stopped) return;
    this.#connecting = true;
    this.#cluster.connect().then(
      () => (this.#connecting = false),
      (error: unknown) => {
        this.emit('error', error);
        this.#retry = setTimeout(() => this.connect(retries + 1), this.#reconnectStrategy(retries));
      },
    );
  }

  send(key: string | undefined, args: ReadonlyArray<string | Buffer>, buffers = false): Promise<unknown> {
    return this.#cluster.sendCommand(key, false, [...args], buffers ? AS_BUFFERS : undefined);
  }

  async everyMaster(args: readonly string[]): Promise<void> {
    await Promise.all(this.#cluster.masters.map(async (master) => (await this.#cluster.nodeClient(master)).sendCommand(args)));
  }

  async publish(channel: string, bytes: Buffer, sharded: boolean): Promise<unknown> {
    if (sharded) return this.#cluster.sendCommand(channel, false, ['SPUBLISH', channel, bytes]);
    // Any master would carry a classic PUBLISH to every shard, but two masters could deliver one
    // node's publications in the wrong order: always the same one, that of the channel's slot.
    return (await this.#cluster.getNodeClientForKey(channel)).sendCommand(['PUBLISH', channel, bytes]);
  }

  subscribe(channel: string, listener: Listener, sharded: boolean): Promise<void> {
    return sharded ? this.#cluster.sSubscribe(channel, listener, true) : this.#cluster.subscribe(channel, listener, true);
  }

  unsubscribe(channel: string, listener: Listener, sharded: boolean): Promise<void> {
    if (sharded) return this.#cluster.sUnsubscribe(channel, listener, true);
    // node-redis types the cluster's UNSUBSCRIBE listener for either mode; this one is in buffer mode.
    return this.#cluster.unsubscribe(channel, listener as (message: Buffer | string) => void, true);
  }

  duplicate(): RedisLink {
    const reconnectStrategy = this.#reconnectStrategy;
    const defaults = this.#cluster._options.defaults ?? {};
    const duplicate = this.#cluster.duplicate({
      // Subscriptions only: the duplicate connects to a master once a channel of its slots is subscribed.
      minimizeConnections: true,
      defaults: { ...defaults, disableOfflineQueue: true, socket: { ...defaults.socket, reconnectStrategy } },
    });
    return new ClusterLink(duplicate, reconnectStrategy);
  }

  release(): void {
    for (const [event, listener] of this.#forward) this.#cluster.off(event, listener);
    this.removeAllListeners();
  }

  close(): Promise<void> {
    this.#stop();
    return this.#cluster.close();
  }

  destroy(): void {
    this.#stop();
    this.#cluster.destroy();
  }

  #stop(): void {
    this.#stopped = true;
    this.#connecting = false;
    clearTimeout(this.#retry);
  }

  #lost(address: string): void {
    const wasUp = this.isReady;
    this.#down.add(address);
    if (wasUp) this.emit('down');
  }

  #back(address: string): void {
    if (!this.#down.delete(address)) return;
    if (this.isReady) this.emit('ready');
  }
}
