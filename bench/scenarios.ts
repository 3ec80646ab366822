/**
 * The scenarios and their sizes, full and `--quick`. A scenario id with a
 * `/` is a variant of the scenario before it (`--only broadcast-1mb` selects
 * both broadcast rows).
 */
import type { MetricName } from './metrics.js';
import type { SystemName } from './protocol.js';
import type { Scenario } from './scenario-types.js';

export type {
  BroadcastScenario,
  ChurnScenario,
  ClusterResumeScenario,
  ClusterScenario,
  ClusterSpreadScenario,
  HeartbeatScenario,
  IdleScenario,
  ResumeScenario,
  Scenario,
} from './scenario-types.js';

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
    case 'cluster-resume':
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
  const clusterDurable = [
    'deliveries_per_s',
    'server_cpu_us_per_delivery',
    'redis_cpu_us_per_message',
    'p99_ms',
    'delivered_fraction',
  ] as const;
  // cluster-resume: 3 nodes × 10 rooms × this many clients; each node sends one message to every room
  // every 250 ms, 12 a second per room across the cluster.
  const resumePerNode = quick ? 40 : 200;
  const resumeInterval = 250;
  const clusterResume = {
    nodes: 3,
    rooms: 10,
    perRoomPerNode: Number(process.env.BENCH_CR_PER_ROOM) || resumePerNode,
    clientProcesses: 2,
    before: 5,
    during: quick ? 40 : 80,
    intervalMs: resumeInterval,
    endAfter: 8,
    after: 5,
    metrics: [
      'resumes_per_s',
      'server_cpu_us_per_resume',
      'lost_messages',
      'duplicated_messages',
      'recovered_fraction',
      'recovery_p99_ms',
    ] as readonly MetricName[],
    windowMs: 60_000,
  } as const;
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
      id: 'cluster-fanout-durable',
      kind: 'cluster',
      title:
        'cluster-fanout with durable streams: berth `durable: true`, Socket.IO on its Redis Streams adapter with connection-state recovery',
      durable: true,
      v1: true,
      nodes: 2,
      perNode: n / 2,
      plan: { turns: burstTurns, perTurn: 10, payloadBytes: 100, intervalMs: 0, sampleRss: false },
      metrics: clusterDurable,
      deliverTimeoutMs: 240_000,
    },
    {
      id: 'cluster-fanout-durable/non-durable',
      kind: 'cluster',
      title: `the same without durable streams (berth's Redis adapter as it is by default, Socket.IO's classic Redis adapter), berth's clients on berth.v1 too`,
      v1: true,
      nodes: 2,
      perNode: n / 2,
      plan: { turns: burstTurns, perTurn: 10, payloadBytes: 100, intervalMs: 0, sampleRss: false },
      metrics: clusterDurable,
      deliverTimeoutMs: 240_000,
    },
    {
      id: 'cluster-resume',
      kind: 'cluster-resume',
      title:
        `3 nodes on one Redis with durable streams, ${fmt(resumePerNode * 30)} real clients in 10 rooms spanning all nodes, every node sending to every room ` +
        `(one message every ${resumeInterval} ms each); the third node is SIGKILLed and its ${fmt(resumePerNode * 10)} clients come back through the other two`,
      ...clusterResume,
      end: 'kill',
    },
    {
      id: 'cluster-resume/graceful',
      kind: 'cluster-resume',
      title:
        'the same, the third node shut down gracefully (berth `runtime.close()`, Socket.IO `io.close()`, which saves its sessions in Redis)',
      ...clusterResume,
      end: 'graceful',
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
