/**
 * The scenarios and their sizes, full and `--quick`. A scenario id with a
 * `/` is a variant of the scenario before it (`--only broadcast-1mb` selects
 * both broadcast rows).
 */
import type { MetricName } from './metrics.js';
import type { BroadcastPlan, SystemName } from './protocol.js';

interface Base {
  readonly id: string;
  /** What the row measures, with its sizes (for the report). */
  readonly title: string;
}

/** Connections join rooms, the server runs a broadcast plan, clients check every message. */
export interface BroadcastScenario extends Base {
  readonly kind: 'broadcast';
  readonly rooms: number;
  /** Fast connections per room. */
  readonly fastPerRoom: number;
  /** Connections per room that stop reading after the handshake. */
  readonly slowPerRoom: number;
  readonly plan: Omit<BroadcastPlan, 'rooms'>;
  readonly metrics: readonly MetricName[];
  /** Deadline for all fast clients to have everything. */
  readonly deliverTimeoutMs: number;
  /** Servers and clients negotiate permessage-deflate [default false]. */
  readonly compression?: boolean;
}

/** Server memory per idle open connection. */
export interface IdleScenario extends Base {
  readonly kind: 'idle';
  readonly connections: number;
}

/**
 * Idle connections under a fast heartbeat: every system pings each connection every
 * `intervalMs` and drops one that has not answered within `timeoutMs`; the server's CPU and
 * RSS are read over a `windowMs` window once every connection is open and settled.
 */
export interface HeartbeatScenario extends Base {
  readonly kind: 'heartbeat';
  readonly connections: number;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly windowMs: number;
}

/** Connect, join, one message, close; `concurrency` at a time. */
export interface ChurnScenario extends Base {
  readonly kind: 'churn';
  readonly cycles: number;
  /** Cycles run before the "before" heap reading, so lazy initialisation and JIT are not counted as growth. */
  readonly warmup: number;
  readonly concurrency: number;
  readonly timeoutMs: number;
}

/**
 * Nodes of one system on one Redis, `perNode` connections on each, all in one
 * room; the first node broadcasts, so every message crosses Redis once.
 */
export interface ClusterScenario extends Base {
  readonly kind: 'cluster';
  readonly nodes: number;
  readonly perNode: number;
  readonly plan: Omit<BroadcastPlan, 'rooms'>;
  readonly metrics: readonly MetricName[];
  readonly deliverTimeoutMs: number;
}

/**
 * Nodes of one system on one Redis, each with its own `roomsPerNode` rooms of
 * `perRoom` connections; every node broadcasts to its own rooms only, all at
 * once, so no message needs another node.
 */
export interface ClusterSpreadScenario extends Base {
  readonly kind: 'cluster-spread';
  readonly nodes: number;
  readonly roomsPerNode: number;
  readonly perRoom: number;
  /** Client processes holding every node's connections between them. */
  readonly clientProcesses: number;
  /** What each node sends to each of its rooms. */
  readonly plan: Omit<BroadcastPlan, 'rooms'>;
  readonly metrics: readonly MetricName[];
  readonly deliverTimeoutMs: number;
}

/**
 * Real clients in rooms; every TCP connection drops at once while the rooms
 * go on; the clients reconnect and resume by themselves.
 */
export interface ResumeScenario extends Base {
  readonly kind: 'resume';
  readonly rooms: number;
  readonly perRoom: number;
  /** Messages per room before the drop, which every client must have (Socket.IO recovers only after one). */
  readonly before: number;
  /** Messages per room from the drop on, one to every room each `intervalMs`. */
  readonly during: number;
  readonly intervalMs: number;
  /** Messages per room once every client is back. */
  readonly after: number;
  readonly metrics: readonly MetricName[];
  /**
   * How long after the drop the clients have to come back: full runs 2 minutes, the recovery window
   * of both systems (a session is gone after it anyway); clients still away then count as not recovered.
   */
  readonly windowMs: number;
}

export type Scenario =
  BroadcastScenario | IdleScenario | HeartbeatScenario | ChurnScenario | ClusterScenario | ClusterSpreadScenario | ResumeScenario;

/** Systems of the single-server scenarios (Socket.IO's sharded adapter is a cluster mode only). */
export const SERVER_SYSTEMS: readonly SystemName[] = ['berth', 'ws', 'socketio'];
/** Systems with a cluster mode over Redis (ws has none). */
export const CLUSTER_SYSTEMS: readonly SystemName[] = ['berth', 'socketio'];
/** cluster-spread: the cluster systems, and Socket.IO on its sharded adapter too. */
export const SPREAD_SYSTEMS: readonly SystemName[] = ['berth', 'socketio', 'socketio-sharded'];
/** Systems that resume a dropped connection's session (ws has no sessions). */
export const RESUME_SYSTEMS: readonly SystemName[] = ['berth', 'socketio'];
/** Systems a scenario runs on. */
export function systemsOf(scenario: Scenario): readonly SystemName[] {
  switch (scenario.kind) {
    case 'cluster':
      return CLUSTER_SYSTEMS;
    case 'cluster-spread':
      return SPREAD_SYSTEMS;
    case 'resume':
      return RESUME_SYSTEMS;
    default:
      return SERVER_SYSTEMS;
  }
}

const KB = 1024;
const MB = 1024 * 1024;
const fmt = (n: number) => n.toLocaleString('en-US').replace(/,/g, ' ');

export function scenarios(quick: boolean): Scenario[] {
  const n = quick ? 2_000 : 10_000;
  const fanoutTurns = quick ? 50 : 100;
  const burstTurns = quick ? 20 : 100;
  // 50 messages per connection in either fanout-deflate variant (30 with --quick): ws and Socket.IO
  // deflate each of them once per connection, 500 000 zlib jobs at full size, about 190 µs each.
  const deflateTurns = quick ? 3 : 5;
  // cluster-spread keeps its sizes (6 nodes × 10 rooms × 50); --quick only sends less.
  const spreadTurns = quick ? 5 : 20;
  const rooms = 8;
  const slowFast = quick ? 200 : 1_000;
  const slowSlow = quick ? 10 : 50;
  // A never-reading loopback socket takes about 4 MiB into the kernel before the server has to
  // keep anything itself, so the slow clients must be sent more than that: 2 000 × 4 KiB = 8 MiB
  // each (1 KiB messages, as in the example, would never reach a server's own buffers).
  // Paced at 80 messages/s (full), well below every system's capacity on 2 cores, so that the
  // fast clients' p99 shows the slow clients rather than saturation.
  const slowMessages = quick ? 1_500 : 2_000;
  const slowBytes = 4 * KB;
  const slowPerTurn = quick ? 4 : 2;
  const slowInterval = quick ? 10 : 25;
  const fanout = ['deliveries_per_s', 'server_cpu_us_per_delivery', 'p99_ms', 'delivered_fraction'] as const;
  const fanoutWithMedian = ['deliveries_per_s', 'server_cpu_us_per_delivery', 'p50_ms', 'p99_ms', 'delivered_fraction'] as const;
  const big = ['peak_rss_delta_bytes', 'deliveries_per_s', 'server_cpu_us_per_delivery', 'delivered_fraction'] as const;
  const slow = ['p99_ms', 'peak_rss_delta_bytes', 'server_cpu_us_per_delivery', 'delivered_fraction'] as const;
  const deflate = ['server_cpu_us_per_delivery', 'wire_bytes_per_delivery', 'rss_bytes_per_conn', 'delivered_fraction'] as const;
  const chat = { payloadBytes: KB, payload: 'chat', intervalMs: 0, sampleRss: false } as const;
  const paced = (messages: number) => ({
    turns: messages / slowPerTurn,
    perTurn: slowPerTurn,
    payloadBytes: slowBytes,
    intervalMs: slowInterval,
    sampleRss: true,
  });
  return [
    {
      id: 'fanout-1',
      kind: 'broadcast',
      title: `${fmt(n)} connections in one room; ${fanoutTurns} turns of one 100 B message`,
      rooms: 1,
      fastPerRoom: n,
      slowPerRoom: 0,
      plan: { turns: fanoutTurns, perTurn: 1, payloadBytes: 100, intervalMs: 0, sampleRss: false },
      metrics: fanoutWithMedian,
      deliverTimeoutMs: 120_000,
    },
    {
      id: 'fanout-burst',
      kind: 'broadcast',
      title: `${fmt(n)} connections in one room; ${burstTurns} turns of ten 100 B messages`,
      rooms: 1,
      fastPerRoom: n,
      slowPerRoom: 0,
      plan: { turns: burstTurns, perTurn: 10, payloadBytes: 100, intervalMs: 0, sampleRss: false },
      metrics: fanout,
      deliverTimeoutMs: 240_000,
    },
    {
      id: 'fanout-deflate',
      kind: 'broadcast',
      title: `${fmt(n)} connections in one room, all with permessage-deflate; ${deflateTurns} turns of ten 1 KiB chat JSON messages`,
      rooms: 1,
      fastPerRoom: n,
      slowPerRoom: 0,
      plan: { turns: deflateTurns, perTurn: 10, ...chat },
      metrics: deflate,
      deliverTimeoutMs: 240_000,
      compression: true,
    },
    {
      id: 'fanout-deflate/1-per-turn',
      kind: 'broadcast',
      title: `the same, ${deflateTurns * 10} turns of one message`,
      rooms: 1,
      fastPerRoom: n,
      slowPerRoom: 0,
      plan: { turns: deflateTurns * 10, perTurn: 1, ...chat },
      metrics: deflate,
      deliverTimeoutMs: 240_000,
      compression: true,
    },
    {
      id: 'fanout-deflate/plain',
      kind: 'broadcast',
      title: `the same, ten a turn, with compression off in every system`,
      rooms: 1,
      fastPerRoom: n,
      slowPerRoom: 0,
      plan: { turns: deflateTurns, perTurn: 10, ...chat },
      metrics: deflate,
      deliverTimeoutMs: 240_000,
    },
    {
      id: 'broadcast-1mb',
      kind: 'broadcast',
      title: `one 1 MiB message to ${fmt(n)} connections`,
      rooms: 1,
      fastPerRoom: n,
      slowPerRoom: 0,
      plan: { turns: 1, perTurn: 1, payloadBytes: MB, intervalMs: 0, sampleRss: true },
      metrics: big,
      deliverTimeoutMs: 180_000,
    },
    {
      id: 'broadcast-1mb/small',
      kind: 'broadcast',
      title: `one 1 MiB message to ${fmt(n / 10)} connections`,
      rooms: 1,
      fastPerRoom: n / 10,
      slowPerRoom: 0,
      plan: { turns: 1, perTurn: 1, payloadBytes: MB, intervalMs: 0, sampleRss: true },
      metrics: big,
      deliverTimeoutMs: 60_000,
    },
    {
      id: 'concurrent-rooms',
      kind: 'broadcast',
      title: `${rooms} rooms of ${fmt(n / rooms)}; ${fanoutTurns} turns of one 100 B message to every room`,
      rooms,
      fastPerRoom: n / rooms,
      slowPerRoom: 0,
      plan: { turns: fanoutTurns, perTurn: 1, payloadBytes: 100, intervalMs: 0, sampleRss: false },
      metrics: fanoutWithMedian,
      deliverTimeoutMs: 120_000,
    },
    {
      id: 'cluster-fanout',
      kind: 'cluster',
      title: `2 nodes on one Redis, ${fmt(n / 2)} connections each, one room spanning both; ${burstTurns} turns of ten 100 B messages from the first node`,
      nodes: 2,
      perNode: n / 2,
      plan: { turns: burstTurns, perTurn: 10, payloadBytes: 100, intervalMs: 0, sampleRss: false },
      metrics: fanout,
      deliverTimeoutMs: 240_000,
    },
    {
      id: 'cluster-spread',
      kind: 'cluster-spread',
      title: `6 nodes on one Redis, each with its own 10 rooms of 50 connections; ${spreadTurns} turns of ten 200 B messages to each room, every node to its own rooms at once`,
      nodes: 6,
      roomsPerNode: 10,
      perRoom: 50,
      clientProcesses: 2,
      // Ten per turn, as in cluster-fanout: a room that talks sends several messages per event-loop turn.
      plan: { turns: spreadTurns, perTurn: 10, payloadBytes: 200, intervalMs: 0, sampleRss: false },
      metrics: ['unrelated_messages_per_node', 'deliveries_per_s', 'server_cpu_us_per_delivery', 'delivered_fraction'],
      deliverTimeoutMs: 120_000,
    },
    {
      id: 'resume-storm',
      kind: 'resume',
      title: `${fmt(n)} real clients in 10 rooms; every TCP connection dropped at once, 100 messages per room from the drop on (one every 10 ms), all reconnect and resume`,
      rooms: 10,
      perRoom: n / 10,
      before: 10,
      during: 100,
      intervalMs: 10,
      after: 10,
      metrics: ['resumes_per_s', 'server_cpu_us_per_resume', 'lost_messages', 'duplicated_messages', 'recovered_fraction'],
      windowMs: quick ? 60_000 : 120_000,
    },
    {
      id: 'idle-memory',
      kind: 'idle',
      title: `server memory per idle connection at ${fmt(n)}`,
      connections: n,
    },
    {
      id: 'idle-heartbeat',
      kind: 'heartbeat',
      title: `${fmt(n)} idle connections, a ping every second (1 s timeout), measured over ${quick ? 10 : 20} s`,
      connections: n,
      intervalMs: 1_000,
      timeoutMs: 1_000,
      windowMs: quick ? 10_000 : 20_000,
    },
    {
      id: 'churn',
      kind: 'churn',
      title: `${fmt(quick ? 2_000 : 20_000)} connect/join/message/close cycles, 50 in flight`,
      cycles: quick ? 2_000 : 20_000,
      warmup: quick ? 200 : 1_000,
      concurrency: 50,
      timeoutMs: quick ? 60_000 : 240_000,
    },
    {
      id: 'slow-client',
      kind: 'broadcast',
      title: `${fmt(slowFast)} fast + ${slowSlow} never-reading clients; ${fmt(slowMessages)} × ${slowBytes / KB} KiB, ${slowPerTurn} every ${slowInterval} ms`,
      rooms: 1,
      fastPerRoom: slowFast,
      slowPerRoom: slowSlow,
      plan: paced(slowMessages),
      metrics: slow,
      deliverTimeoutMs: 120_000,
    },
    {
      id: 'slow-client/baseline',
      kind: 'broadcast',
      title: `the same without the slow clients`,
      rooms: 1,
      fastPerRoom: slowFast,
      slowPerRoom: 0,
      plan: paced(slowMessages),
      metrics: slow,
      deliverTimeoutMs: 120_000,
    },
  ];
}

/** The scenario ids `--only` accepts: ids before any `/`. */
export const familyOf = (id: string): string => id.split('/')[0]!;
