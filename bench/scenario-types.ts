/** The kinds of scenario and what each one's sizes are (bench/scenarios.ts lists the scenarios). */
import type { MetricName } from './metrics.js';
import type { BroadcastPlan } from './protocol.js';

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
  /** Durable streams on the Redis (servers/system.ts) [default false]. */
  readonly durable?: boolean;
  /** berth's clients speak `berth.v1` instead of plain WebSocket (clients/berth-dialect.ts) [default false]. */
  readonly v1?: boolean;
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

/**
 * Nodes of one system on one Redis with durable streams, real clients spread
 * over them in rooms that span every node, every node publishing to every
 * room; the last node goes away (SIGKILL, or a graceful shutdown) and its
 * clients come back through the others by themselves (runs/cluster-resume.ts).
 */
export interface ClusterResumeScenario extends Base {
  readonly kind: 'cluster-resume';
  readonly nodes: number;
  readonly rooms: number;
  /** Clients of each room on each node. */
  readonly perRoomPerNode: number;
  /** Client processes holding every node's clients between them. */
  readonly clientProcesses: number;
  /** How the last node goes away: SIGKILL, or its system's own shutdown (berth `runtime.close()`, Socket.IO `io.close()`). */
  readonly end: 'kill' | 'graceful';
  /** Messages each node sends to each room first, at once; every client must have them all. */
  readonly before: number;
  /** Messages each node sends to each room next, one every `intervalMs`; the last node goes away after `endAfter` of them. */
  readonly during: number;
  readonly intervalMs: number;
  readonly endAfter: number;
  /** Messages each surviving node sends to each room once the moved clients are back. */
  readonly after: number;
  readonly metrics: readonly MetricName[];
  /** How long the moved clients have to come back; those still away then count as not recovered. */
  readonly windowMs: number;
}

export type Scenario =
  | BroadcastScenario
  | IdleScenario
  | HeartbeatScenario
  | ChurnScenario
  | ClusterScenario
  | ClusterSpreadScenario
  | ResumeScenario
  | ClusterResumeScenario;
