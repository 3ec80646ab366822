import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { CloseCause } from '../../machines/types.js';
import type { ErrorCodeValue } from '../util/errors.js';

/** Who reads the event-loop lag: each has a window of its own, reset only by its own reads. */
type LagReader = 'snapshot' | 'health' | 'scrape';

/** Upper bounds (seconds) of the broadcast fan-out latency buckets. */
const FANOUT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
/** Upper bounds of the outbox depth distribution (frames waiting per connection). */
const DEPTH_BUCKETS = [0, 1, 10, 100, 1000];

/** What the runtime knows at any moment; read when a snapshot or scrape is taken. */
export interface LiveCounts {
  connections: number;
  pending: number;
  rooms: number;
  users: number;
  /** Every connection's outbox depth and bytes. */
  outboxes(): Iterable<{ readonly depth: number; readonly bytes: number }>;
  /** Bytes the waiting frames hold, each frame once however many outboxes share it. */
  heldBytes: number;
}

/** A runtime's live counts, read from its registry, transport, directory and ledger whenever metrics are taken. */
export function liveCounts(runtime: {
  /** The registry's connections. */
  connections(): ReadonlyMap<string, { readonly outbox: { readonly depth: number; readonly bytes: number } }>;
  pending(): number;
  directory(): { readonly rooms: { readonly size: number }; readonly users: { readonly size: number } };
  readonly ledger: { readonly heldBytes: number };
}): LiveCounts {
  return {
    get connections() {
      return runtime.connections().size;
    },
    get pending() {
      return runtime.pending();
    },
    get rooms() {
      return runtime.directory().rooms.size;
    },
    get users() {
      return runtime.directory().users.size;
    },
    *outboxes() {
      for (const connection of runtime.connections().values()) yield connection.outbox;
    },
    get heldBytes() {
      return runtime.ledger.heldBytes;
    },
  };
}

/** Everything measured, as plain data (`runtime.metrics.snapshot()`). */
export interface MetricsSnapshot {
  readonly connections: { readonly current: number; readonly pending: number; readonly accepted: number };
  readonly rooms: number;
  readonly users: number;
  readonly outbox: {
    readonly depthMax: number;
    /** Bytes held by frames waiting in outboxes: a frame shared by many outboxes counts once. */
    readonly bytesQueued: number;
    /** The sum of each outbox's waiting bytes: a frame queued to 10 000 outboxes counts 10 000 times. */
    readonly bytesReferenced: number;
    /** Connections whose outbox holds at most `le` frames, for each bucket. */
    readonly depth: ReadonlyArray<{ readonly le: number; readonly connections: number }>;
  };
  /** Messages dropped, by reason (`rate-limit`, `outbox-overflow`). */
  readonly dropped: Readonly<Record<string, number>>;
  readonly refused: Readonly<Record<string, number>>;
  readonly closedByCode: Readonly<Record<string, number>>;
  readonly closedByCause: Readonly<Partial<Record<CloseCause, number>>>;
  readonly errors: Readonly<Partial<Record<ErrorCodeValue, number>>>;
  /** Sessions of berth.v1 connections by outcome: `detached`, `resumed`, `expired`, `overflow`, `unknown-session`, `lost`, `already-resumed`. */
  readonly sessions: Readonly<Record<string, number>>;
  /** Heartbeat pings sent, pongs received, and pongs missed (each ended its connection with cause `heartbeat`). */
  readonly heartbeat: { readonly pings: number; readonly pongs: number; readonly missed: number };
  readonly broadcasts: {
    /** Broadcasts sent from this node (those received from other nodes are `crossNode.received`). */
    readonly count: number;
    /** Frames queued to local recipients, by broadcasts from this node and from others. */
    readonly deliveries: number;
    /** Time from a broadcast call until its frames were handed to every recipient's socket. */
    readonly fanoutSeconds: {
      readonly count: number;
      readonly sum: number;
      readonly buckets: ReadonlyArray<{ readonly le: number; readonly count: number }>;
    };
  };
  readonly crossNode: {
    readonly published: number;
    readonly received: number;
    readonly dropped: number;
    /** Broadcasts of other nodes that never reached this node (gaps in their numbers), by target kind. */
    readonly lost: { readonly room: number; readonly user: number; readonly all: number };
    /** False while the adapter has lost its link to the other nodes. */
    readonly linkUp: boolean;
    /** Milliseconds since a broadcast was last dropped on the way out; null if none ever was. */
    readonly lastDroppedAgoMs: number | null;
    /** Milliseconds since a broadcast of another node was last found lost; null if none ever was. */
    readonly lastLostAgoMs: number | null;
    /** The adapter's last failure (a presence read or write, a publish, a malformed message) and how long ago; null if none. */
    readonly lastFailure: { readonly what: string; readonly agoMs: number } | null;
  };
  /** Event-loop delay p99 in milliseconds since the previous read of the same kind: `metrics.snapshot()` and `health()` keep separate windows, and so does the Prometheus gauge. */
  readonly eventLoopLagMs: number;
}

function bump<K extends string>(counts: Partial<Record<K, number>>, key: K, by = 1): void {
  counts[key] = (counts[key] ?? 0) + by;
}

/**
 * berth's metrics: plain counters read synchronously by `snapshot()`
 * and `health()`, and the same values as prom-client metrics, produced at
 * scrape time, in a registry of the runtime's own that can also be
 * registered into the application's.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly #live: LiveCounts;
  /** One window per reader, so that no reader shortens another's. */
  readonly #lag: Record<LagReader, IntervalHistogram>;
  #accepted = 0;
  readonly #refused: Record<string, number> = {};
  readonly #closedByCode: Record<string, number> = {};
  readonly #closedByCause: Partial<Record<CloseCause, number>> = {};
  readonly #dropped: Record<string, number> = {};
  readonly #sessions: Record<string, number> = {};
  readonly #heartbeat = { pings: 0, pongs: 0, missed: 0 };
  readonly #errors: Partial<Record<ErrorCodeValue, number>> = {};
  #broadcasts = 0;
  #deliveries = 0;
  readonly #crossNode = { published: 0, received: 0, dropped: 0 };
  readonly #lost = { room: 0, user: 0, all: 0 };
  /** When (performance.now()) a broadcast was last dropped on the way out or found lost on the way in, and the adapter last failed at what. */
  readonly #crossNodeTrouble: {
    droppedAt: number | undefined;
    lostAt: number | undefined;
    failedAt: number | undefined;
    failure: string;
  } = {
    droppedAt: undefined,
    lostAt: undefined,
    failedAt: undefined,
    failure: '',
  };
  #linkUp = true;
  readonly #fanout = { count: 0, sum: 0, buckets: FANOUT_BUCKETS.map(() => 0) };
  /** Start times of broadcasts whose frames wait for the next flush. */
  #awaitingFlush: number[] = [];
  readonly #fanoutHistogram: Histogram;
  readonly #metrics: Array<Counter | Gauge | Histogram>;

  constructor(live: LiveCounts) {
    this.#live = live;
    const monitor = () => {
      const histogram = monitorEventLoopDelay({ resolution: 10 });
      histogram.enable();
      return histogram;
    };
    this.#lag = { snapshot: monitor(), health: monitor(), scrape: monitor() };
    const self = this;
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({
        name,
        help,
        registers: [],
        collect() {
          this.set(read());
        },
      });
    // Counters are kept as plain numbers (read synchronously by snapshot and health) and copied in at scrape time.
    const total = (name: string, help: string, read: () => number) =>
      new Counter({
        name,
        help,
        registers: [],
        collect() {
          this.reset();
          this.inc(read());
        },
      });
    const totals = (name: string, help: string, label: string, read: () => Record<string, number>) =>
      new Counter({
        name,
        help,
        labelNames: [label],
        registers: [],
        collect() {
          this.reset();
          for (const [key, value] of Object.entries(read())) this.inc({ [label]: key }, value);
        },
      });
    this.#fanoutHistogram = new Histogram({
      name: 'berth_broadcast_fanout_seconds',
      help: 'Time from a broadcast call until its frames were handed to every local recipient socket.',
      buckets: FANOUT_BUCKETS,
      registers: [],
    });
    this.#metrics = [
      gauge('berth_connections', 'Connections holding a socket (open or disconnecting).', () => live.connections),
      gauge('berth_connections_pending', 'Upgrades being admitted or completing their handshake.', () => live.pending),
      gauge('berth_rooms', 'Rooms with at least one member on this node.', () => live.rooms),
      gauge('berth_users', 'Users with at least one connection on this node.', () => live.users),
      gauge('berth_outbox_depth_max', 'Largest number of frames waiting in one outbox.', () => self.#outboxes().depthMax),
      gauge(
        'berth_outbox_bytes',
        'Bytes held by frames waiting in outboxes, each frame once however many outboxes share it.',
        () => live.heldBytes,
      ),
      gauge(
        'berth_outbox_bytes_referenced',
        'Sum of the bytes each outbox waits to write (a shared frame counted once per recipient).',
        () => self.#outboxes().bytesReferenced,
      ),
      new Gauge({
        name: 'berth_outbox_connections',
        help: 'Connections whose outbox holds at most depth_le frames.',
        labelNames: ['depth_le'],
        registers: [],
        collect() {
          for (const { le, connections } of self.#outboxes().depth) this.set({ depth_le: String(le) }, connections);
          this.set({ depth_le: '+Inf' }, live.connections);
        },
      }),
      gauge('berth_event_loop_lag_seconds', 'Event-loop delay p99 since the previous scrape.', () => self.#takeLag('scrape') / 1000),
      total('berth_connections_accepted_total', 'Connections accepted since start.', () => self.#accepted),
      totals('berth_upgrades_refused_total', 'Upgrades refused with an HTTP status.', 'status', () => self.#refused),
      totals('berth_connections_closed_total', 'Closed connections by close code.', 'code', () => self.#closedByCode),
      totals(
        'berth_connections_closed_by_cause_total',
        'Closed connections by cause.',
        'cause',
        () => self.#closedByCause as Record<string, number>,
      ),
      totals('berth_messages_dropped_total', 'Messages dropped, by reason.', 'reason', () => self.#dropped),
      totals('berth_errors_total', 'Errors reported, by code.', 'code', () => self.#errors as Record<string, number>),
      totals(
        'berth_sessions_total',
        'Sessions of berth.v1 connections, by what became of them: detached, resumed, expired, overflow (not kept: too many), unknown-session (a forged, expired or used token), lost, already-resumed.',
        'outcome',
        () => self.#sessions,
      ),
      totals(
        'berth_heartbeat_total',
        'Heartbeat pings sent, pongs received and pongs missed (each one ended its connection).',
        'kind',
        () => ({
          ...self.#heartbeat,
        }),
      ),
      total('berth_broadcasts_total', 'Broadcasts sent from this node.', () => self.#broadcasts),
      total('berth_deliveries_total', 'Frames queued to local recipients by broadcasts.', () => self.#deliveries),
      totals('berth_cross_node_messages_total', 'Broadcasts carried between nodes, by direction.', 'direction', () => ({
        out: self.#crossNode.published,
        in: self.#crossNode.received,
      })),
      total('berth_cross_node_dropped_total', 'Broadcasts the adapter failed to carry to other nodes.', () => self.#crossNode.dropped),
      totals(
        'berth_cross_node_lost_total',
        "Broadcasts of other nodes that never reached this node (gaps in their publishers' numbers), by target kind.",
        'target',
        () => self.#lost,
      ),
      gauge('berth_cluster_link_up', '1 while the adapter is linked to the other nodes, 0 while broadcasts stay local.', () =>
        self.#linkUp ? 1 : 0,
      ),
      this.#fanoutHistogram,
    ];
    for (const metric of this.#metrics) this.registry.registerMetric(metric);
  }

  /** Adds berth's metrics to the application's registry as well. */
  register(registry: Registry): void {
    for (const metric of this.#metrics) registry.registerMetric(metric);
  }

  /** The metrics in Prometheus text format. */
  prometheus(): Promise<string> {
    return this.registry.metrics();
  }

  accepted(): void {
    this.#accepted++;
  }

  refused(status: number): void {
    bump(this.#refused, String(status));
  }

  closed(code: number, cause: CloseCause): void {
    bump(this.#closedByCode, String(code));
    bump(this.#closedByCause, cause);
  }

  dropped(reason: string, count: number): void {
    bump(this.#dropped, reason, count);
  }

  /** A session was kept, resumed, refused or ended (`berth_sessions_total{outcome}`). */
  session(outcome: string): void {
    bump(this.#sessions, outcome);
  }

  /** Heartbeat pings sent, pongs received, pongs missed (`berth_heartbeat_total{kind}`). */
  heartbeat(kind: 'pings' | 'pongs' | 'missed', count: number): void {
    this.#heartbeat[kind] += count;
  }

  error(code: ErrorCodeValue): void {
    bump(this.#errors, code);
  }

  crossNode(direction: 'published' | 'received' | 'dropped', count = 1): void {
    this.#crossNode[direction] += count;
    if (direction === 'dropped') this.#crossNodeTrouble.droppedAt = performance.now();
  }

  /** `count` broadcasts of another node to a target of this kind never reached this node. */
  lost(kind: 'room' | 'user' | 'all', count: number): void {
    this.#lost[kind] += count;
    this.#crossNodeTrouble.lostAt = performance.now();
  }

  /** The adapter failed at `what` (`health()` says degraded for a while after). */
  adapterFailed(what: string): void {
    this.#crossNodeTrouble.failedAt = performance.now();
    this.#crossNodeTrouble.failure = what;
  }

  /** Records the cluster link's state; true if it changed. */
  link(up: boolean): boolean {
    if (up === this.#linkUp) return false;
    this.#linkUp = up;
    return true;
  }

  /** A broadcast (sent from this node, or received from another) queued its frame to `recipients` local outboxes at `startedAt`. */
  broadcast(recipients: number, startedAt: number, sentHere: boolean): void {
    if (sentHere) this.#broadcasts++;
    this.#deliveries += recipients;
    if (recipients > 0) this.#awaitingFlush.push(startedAt);
  }

  /** The outboxes were flushed: every broadcast queued before now has reached its sockets. */
  flushed(): void {
    if (this.#awaitingFlush.length === 0) return;
    const now = performance.now();
    for (const startedAt of this.#awaitingFlush) {
      const seconds = (now - startedAt) / 1000;
      this.#fanoutHistogram.observe(seconds);
      this.#fanout.count++;
      this.#fanout.sum += seconds;
      const bucket = FANOUT_BUCKETS.findIndex((le) => seconds <= le);
      if (bucket !== -1) this.#fanout.buckets[bucket]!++;
    }
    this.#awaitingFlush = [];
  }

  /** Event-loop delay p99 in ms since the last call; resets the window. */
  #takeLag(reader: LagReader): number {
    const lag = this.#lag[reader];
    const p99 = lag.count > 0 ? lag.percentile(99) / 1e6 : 0;
    lag.reset();
    return p99;
  }

  #outboxes(): MetricsSnapshot['outbox'] {
    let depthMax = 0;
    let bytesReferenced = 0;
    const depth = DEPTH_BUCKETS.map((le) => ({ le, connections: 0 }));
    for (const outbox of this.#live.outboxes()) {
      if (outbox.depth > depthMax) depthMax = outbox.depth;
      bytesReferenced += outbox.bytes;
      for (const bucket of depth) if (outbox.depth <= bucket.le) bucket.connections++;
    }
    return { depthMax, bytesQueued: this.#live.heldBytes, bytesReferenced, depth };
  }

  /** O(connections): walks every outbox. */
  snapshot(reader: 'snapshot' | 'health' = 'snapshot'): MetricsSnapshot {
    let cumulative = 0;
    return {
      connections: { current: this.#live.connections, pending: this.#live.pending, accepted: this.#accepted },
      rooms: this.#live.rooms,
      users: this.#live.users,
      outbox: this.#outboxes(),
      dropped: { ...this.#dropped },
      refused: { ...this.#refused },
      closedByCode: { ...this.#closedByCode },
      closedByCause: { ...this.#closedByCause },
      errors: { ...this.#errors },
      sessions: { ...this.#sessions },
      heartbeat: { ...this.#heartbeat },
      broadcasts: {
        count: this.#broadcasts,
        deliveries: this.#deliveries,
        fanoutSeconds: {
          count: this.#fanout.count,
          sum: this.#fanout.sum,
          buckets: FANOUT_BUCKETS.map((le, i) => ({ le, count: (cumulative += this.#fanout.buckets[i]!) })),
        },
      },
      crossNode: { ...this.#crossNode, lost: { ...this.#lost }, linkUp: this.#linkUp, ...this.#crossNodeTroubleNow() },
      eventLoopLagMs: this.#takeLag(reader),
    };
  }

  #crossNodeTroubleNow(): Pick<MetricsSnapshot['crossNode'], 'lastDroppedAgoMs' | 'lastLostAgoMs' | 'lastFailure'> {
    const now = performance.now();
    const { droppedAt, lostAt, failedAt, failure } = this.#crossNodeTrouble;
    return {
      lastDroppedAgoMs: droppedAt === undefined ? null : Math.round(now - droppedAt),
      lastLostAgoMs: lostAt === undefined ? null : Math.round(now - lostAt),
      lastFailure: failedAt === undefined ? null : { what: failure, agoMs: Math.round(now - failedAt) },
    };
  }

  /** Stops the event-loop monitor. */
  stop(): void {
    for (const lag of Object.values(this.#lag)) lag.disable();
  }
}
