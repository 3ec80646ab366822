import { duration, integer, object, positive } from '../../util/validate.js';

/** Longest delay Node's timers keep. */
const MAX_DELAY_MS = 2 ** 31 - 1;

/** The options every engine's adapter takes (`createRedisAdapter`, `createNatsAdapter`), under one name and one rule each. */
export interface ClusterAdapterOptions {
  /** A node that stops renewing its heartbeat for this long is left out of presence. At least 1000. [default 10000] */
  readonly nodeTimeoutMs?: number;
  /** How often the heartbeat is renewed; at most half of `nodeTimeoutMs`. [default nodeTimeoutMs / 4] */
  readonly heartbeatIntervalMs?: number;
  /** How long `runtime.ready` waits for a first connection before starting local-only (health `degraded`). [default 5000] */
  readonly connectTimeoutMs?: number;
  /**
   * How long a presence read, or a subscription a join waits for, waits for the server before it rejects
   * with `ERR_ADAPTER` (a stalled server answers nothing; nothing is left hanging). [default 2000]
   */
  readonly presenceTimeoutMs?: number;
  /**
   * Most entries a presence read collects (`roomMembers`, `roomUsers`, `userConnections` count the
   * members they would return; `rooms`, `onlineUsers` and `nodes` what they would read). A read past it
   * rejects with `ERR_ADAPTER`, its cause a `RangeError`, before reading them; it is not counted as an
   * adapter failure. `roomSize` counts, and is never refused. [default 10000]
   */
  readonly maxPresenceEntries?: number;
  /**
   * Bytes of broadcasts handed to the server and not yet acknowledged. Past it (the server slow or
   * stalled) broadcasts are dropped and counted instead of queued in memory. [default 16777216]
   */
  readonly maxPublishBacklogBytes?: number;
  /**
   * How long a node stays subscribed to a room's (or user's) channel after its last local member left,
   * so that one leaving and coming back does not make the subscription flap; 0 unsubscribes at once. [default 2000]
   */
  readonly unsubscribeLingerMs?: number;
}

/** The options as an engine's adapter runs with them: checked, defaults filled in. */
export type ClusterSettings = Required<ClusterAdapterOptions>;

/**
 * Checks the options every engine takes (misuse throws `TypeError` or `RangeError` naming the option)
 * and fills in their defaults; an engine checks its own besides.
 */
export function clusterSettingsOf(options: ClusterAdapterOptions): ClusterSettings {
  object('options', options);
  const nodeTimeoutMs = positive('options.nodeTimeoutMs', options.nodeTimeoutMs ?? 10_000, 1000);
  const heartbeatIntervalMs = duration('options.heartbeatIntervalMs', options.heartbeatIntervalMs ?? Math.round(nodeTimeoutMs / 4));
  if (heartbeatIntervalMs > nodeTimeoutMs / 2) {
    throw new RangeError(`options.heartbeatIntervalMs must be at most half of options.nodeTimeoutMs, got ${heartbeatIntervalMs}`);
  }
  return {
    nodeTimeoutMs,
    heartbeatIntervalMs,
    connectTimeoutMs: duration('options.connectTimeoutMs', options.connectTimeoutMs ?? 5000),
    presenceTimeoutMs: duration('options.presenceTimeoutMs', options.presenceTimeoutMs ?? 2000),
    maxPresenceEntries: integer('options.maxPresenceEntries', options.maxPresenceEntries ?? 10_000, 1, Number.MAX_SAFE_INTEGER),
    maxPublishBacklogBytes: integer(
      'options.maxPublishBacklogBytes',
      options.maxPublishBacklogBytes ?? 16 * 1024 * 1024,
      1,
      Number.MAX_SAFE_INTEGER,
    ),
    unsubscribeLingerMs: integer('options.unsubscribeLingerMs', options.unsubscribeLingerMs ?? 2000, 0, MAX_DELAY_MS),
  };
}

/** Throws unless exactly one of `names` is given in `options` (where to connect: a URL, or a client of the caller's). */
export function exactlyOne<T extends object>(options: T, names: ReadonlyArray<keyof T & string>): void {
  if (names.filter((name) => options[name] !== undefined).length === 1) return;
  const listed = names.map((name) => `options.${name}`);
  throw new TypeError(`give exactly one of ${listed.slice(0, -1).join(', ')} or ${listed.at(-1)}`);
}
