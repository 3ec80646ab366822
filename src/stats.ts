import type { CloseCause } from '../machines/types.js';
import type { ErrorCodeValue } from './errors.js';

/** A health snapshot: `status` first, then counts, then totals since start. */
export interface Health {
  /** `ok` while admitting; `closing` during `runtime.close()`; `closed` after. */
  readonly status: 'ok' | 'closing' | 'closed';
  readonly nodeId: string;
  readonly uptimeSeconds: number;
  readonly connections: {
    /** Connections holding a socket (open or disconnecting). */
    readonly current: number;
    /** Handshakes being decided (authentication) or completing. */
    readonly pending: number;
    readonly max: number | null;
  };
  readonly rooms: number;
  readonly users: number;
  readonly totals: {
    readonly accepted: number;
    /** Refused upgrades by HTTP status. */
    readonly refused: Readonly<Record<string, number>>;
    /** Closed connections by close code. */
    readonly closedByCode: Readonly<Record<string, number>>;
    /** Closed connections by cause. */
    readonly closedByCause: Readonly<Partial<Record<CloseCause, number>>>;
    /** Dropped incoming messages by reason. */
    readonly dropped: Readonly<Record<string, number>>;
    /** Errors reported, by code. */
    readonly errors: Readonly<Partial<Record<ErrorCodeValue, number>>>;
  };
}

export interface Gauges {
  status: Health['status'];
  nodeId: string;
  connections: number;
  pending: number;
  maxConnections: number;
  rooms: number;
  users: number;
}

/** Counters behind `runtime.health()`. */
export class Stats {
  readonly #started = performance.now();
  #accepted = 0;
  readonly #refused: Record<string, number> = {};
  readonly #closedByCode: Record<string, number> = {};
  readonly #closedByCause: Partial<Record<CloseCause, number>> = {};
  readonly #dropped: Record<string, number> = {};
  readonly #errors: Partial<Record<ErrorCodeValue, number>> = {};

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
    this.#dropped[reason] = (this.#dropped[reason] ?? 0) + count;
  }

  error(code: ErrorCodeValue): void {
    bump(this.#errors, code);
  }

  health(gauges: Gauges): Health {
    return {
      status: gauges.status,
      nodeId: gauges.nodeId,
      uptimeSeconds: Math.round((performance.now() - this.#started) / 1000),
      connections: {
        current: gauges.connections,
        pending: gauges.pending,
        max: Number.isFinite(gauges.maxConnections) ? gauges.maxConnections : null,
      },
      rooms: gauges.rooms,
      users: gauges.users,
      totals: {
        accepted: this.#accepted,
        refused: { ...this.#refused },
        closedByCode: { ...this.#closedByCode },
        closedByCause: { ...this.#closedByCause },
        dropped: { ...this.#dropped },
        errors: { ...this.#errors },
      },
    };
  }
}

function bump<K extends string>(counts: Partial<Record<K, number>>, key: K): void {
  counts[key] = (counts[key] ?? 0) + 1;
}
