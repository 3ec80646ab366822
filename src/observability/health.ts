import type { MetricsSnapshot } from './metrics.js';

/** When `health()` reports `degraded`. */
export interface HealthThresholds {
  /** An outbox holding more frames than this. [default half of outbox.maxMessages] */
  readonly maxOutboxDepth?: number;
  /** Event-loop delay p99 above this many milliseconds. [default 200] */
  readonly maxEventLoopLagMs?: number;
  /**
   * A broadcast dropped on its way to other nodes or lost on its way here, or an adapter failure (a presence read or write, a
   * publish), within this many milliseconds: long enough for a probe polling every few seconds to see
   * it, short enough to clear once the cluster is well again. [default 10000]
   */
  readonly clusterTroubleMs?: number;
}

/** A health snapshot: `status` first, then why, then counts and totals since start. */
export interface Health {
  /** `ok`; `degraded` while a threshold is passed (still serving); `closing` during `runtime.close()`; `closed` after. */
  readonly status: 'ok' | 'degraded' | 'closing' | 'closed';
  /** Why it is degraded; empty otherwise. */
  readonly reasons: readonly string[];
  readonly nodeId: string;
  readonly uptimeSeconds: number;
  readonly connections: { readonly current: number; readonly pending: number; readonly max: number | null };
  readonly rooms: number;
  readonly users: number;
  /** `bytesQueued`: bytes the waiting frames hold, each shared frame once; `bytesReferenced`: counted once per recipient. */
  readonly outbox: { readonly depthMax: number; readonly bytesQueued: number; readonly bytesReferenced: number };
  readonly eventLoopLagMs: number;
  /**
   * The adapter's link to the other nodes; broadcasts dropped on the way out since start, and those of
   * other nodes that never arrived (gaps in their numbers), all target kinds together.
   */
  readonly cluster: { readonly linkUp: boolean; readonly dropped: number; readonly lost: number };
  readonly totals: {
    readonly accepted: number;
    readonly refused: MetricsSnapshot['refused'];
    readonly closedByCode: MetricsSnapshot['closedByCode'];
    readonly closedByCause: MetricsSnapshot['closedByCause'];
    readonly dropped: MetricsSnapshot['dropped'];
    readonly errors: MetricsSnapshot['errors'];
  };
}

export function healthOf(
  metrics: MetricsSnapshot,
  facts: { state: 'running' | 'closing' | 'closed'; nodeId: string; uptimeSeconds: number; maxConnections: number },
  thresholds: Required<HealthThresholds>,
): Health {
  const reasons: string[] = [];
  if (metrics.outbox.depthMax > thresholds.maxOutboxDepth) {
    reasons.push(`an outbox holds ${metrics.outbox.depthMax} frames (threshold ${thresholds.maxOutboxDepth})`);
  }
  if (metrics.eventLoopLagMs > thresholds.maxEventLoopLagMs) {
    reasons.push(`event-loop delay p99 ${metrics.eventLoopLagMs.toFixed(1)} ms (threshold ${thresholds.maxEventLoopLagMs} ms)`);
  }
  const { crossNode } = metrics;
  if (!crossNode.linkUp) {
    reasons.push('cluster link down: broadcasts reach this node only');
  }
  if (crossNode.lastDroppedAgoMs !== null && crossNode.lastDroppedAgoMs < thresholds.clusterTroubleMs) {
    reasons.push(`broadcasts to other nodes dropped (last ${crossNode.lastDroppedAgoMs} ms ago; ${crossNode.dropped} since start)`);
  }
  const lost = crossNode.lost.room + crossNode.lost.user + crossNode.lost.all;
  if (crossNode.lastLostAgoMs !== null && crossNode.lastLostAgoMs < thresholds.clusterTroubleMs) {
    reasons.push(`broadcasts from other nodes lost (last ${crossNode.lastLostAgoMs} ms ago; ${lost} since start)`);
  }
  if (crossNode.lastFailure !== null && crossNode.lastFailure.agoMs < thresholds.clusterTroubleMs) {
    reasons.push(`adapter ${crossNode.lastFailure.what} failed ${crossNode.lastFailure.agoMs} ms ago`);
  }
  const status = facts.state !== 'running' ? facts.state : reasons.length > 0 ? 'degraded' : 'ok';
  return {
    status,
    reasons,
    nodeId: facts.nodeId,
    uptimeSeconds: facts.uptimeSeconds,
    connections: {
      current: metrics.connections.current,
      pending: metrics.connections.pending,
      max: Number.isFinite(facts.maxConnections) ? facts.maxConnections : null,
    },
    rooms: metrics.rooms,
    users: metrics.users,
    outbox: { depthMax: metrics.outbox.depthMax, bytesQueued: metrics.outbox.bytesQueued, bytesReferenced: metrics.outbox.bytesReferenced },
    eventLoopLagMs: metrics.eventLoopLagMs,
    cluster: { linkUp: metrics.crossNode.linkUp, dropped: metrics.crossNode.dropped, lost },
    totals: {
      accepted: metrics.connections.accepted,
      refused: metrics.refused,
      closedByCode: metrics.closedByCode,
      closedByCause: metrics.closedByCause,
      dropped: metrics.dropped,
      errors: metrics.errors,
    },
  };
}
