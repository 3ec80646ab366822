/**
 * The runtime's side of its adapter: the node an adapter serves, every call
 * into the adapter guarded (a failure is reported and counted, never thrown
 * into the caller), and presence answered by the adapter or, without one
 * that knows the cluster, by this node's own directory.
 */
import type { Target } from '../../machines/types.js';
import type { Adapter, AdapterNode, BroadcastMessage } from '../cluster/adapter.js';
import { directoryPresence } from '../cluster/local-presence.js';
import { guardPresence, type Presence, type PresenceChange } from '../cluster/presence.js';
import type { SupervisorDirectory } from '../../machines/supervisor.machine.js';
import type { Metrics } from '../observability/metrics.js';
import { ErrorCode, toBerthError, type BerthError } from '../util/errors.js';
import { isThenable } from '../util/thenable.js';

/** What the bridge needs of its runtime. */
export interface ClusterBridgeHost {
  readonly nodeId: string;
  readonly adapter: Adapter;
  readonly metrics: Metrics;
  /** A broadcast another node published, for this node's connections. */
  deliver(message: BroadcastMessage): void;
  /** Broadcasts another node published never reached this one (the runtime's `lost` event). */
  lost(target: Target, count: number, origin: string): void;
  report(error: BerthError): void;
  /** The supervisor's directory, for this node's own presence. */
  directory(): SupervisorDirectory;
  /** Another node's resume takes over the session of this node's connection `id`. */
  replace(id: string): void;
}

export class ClusterBridge {
  readonly presence: Presence;
  /** Settles once the adapter is attached; rejects if attaching failed. */
  readonly attached: Promise<void>;
  readonly #host: ClusterBridgeHost;

  constructor(host: ClusterBridgeHost) {
    this.#host = host;
    const { metrics } = host;
    const node: AdapterNode = {
      nodeId: host.nodeId,
      deliver: (message) => host.deliver(message),
      dropped: (count) => metrics.crossNode('dropped', count),
      lost: (target, count, origin) => {
        metrics.lost(target.kind, count);
        host.lost(target, count, origin);
      },
      linkChanged: (up, error) => this.#linkChanged(up, error),
      failed: (error, what) => this.#failed(error, what),
      presence: directoryPresence(host.nodeId, () => host.directory()),
      replace: (id) => host.replace(id),
    };
    this.presence = guardPresence(host.adapter.presence ?? node.presence);
    // A throwing attach rejects like a failing one, rather than escaping with the port already bound.
    this.attached = new Promise<void>((resolve) => resolve(host.adapter.attach(node)));
  }

  /** Carries a broadcast to the other nodes; one that cannot be carried is counted as dropped. */
  publish(message: BroadcastMessage): void {
    this.#host.metrics.crossNode('published');
    void this.#call(
      () => this.#host.adapter.publish(message),
      'publish',
      () => this.#host.metrics.crossNode('dropped'),
    );
  }

  /**
   * Tells the adapter of a presence change. Answers, when the adapter's `track` returned a promise
   * (a subscription, say), whether it succeeded: a join waits for it, and one whose subscription
   * failed is no join (it is reported and counted as `presence update` failed).
   */
  track(change: PresenceChange): Promise<boolean> | undefined {
    const { adapter } = this.#host;
    if (adapter.track === undefined) return undefined;
    return this.#call(() => adapter.track!(change), 'presence update');
  }

  /** Detaches from the cluster; a failure is reported. */
  async close(): Promise<void> {
    try {
      await this.#host.adapter.close();
    } catch (error) {
      this.#host.report(toBerthError(ErrorCode.ADAPTER, 'adapter close failed', error));
    }
  }

  /** Calls the adapter; a failure is reported. Answers, for a call that returned a promise, whether it succeeded. */
  #call(call: () => void | Promise<void>, what: string, onFailure?: () => void): Promise<boolean> | undefined {
    const fail = (error: unknown) => {
      onFailure?.();
      this.#failed(error, what);
      return false;
    };
    try {
      const result = call();
      // Adapters may return any thenable, not only native promises.
      if (isThenable(result)) return Promise.resolve(result).then(() => true, fail);
    } catch (error) {
      fail(error);
      return Promise.resolve(false);
    }
    return undefined;
  }

  #linkChanged(up: boolean, error: unknown): void {
    if (!this.#host.metrics.link(up)) return;
    // Reported once per outage, not once per broadcast it drops.
    if (!up)
      this.#host.report(toBerthError(ErrorCode.ADAPTER, 'cluster link down, broadcasts stay on this node', error ?? 'no cause given'));
  }

  /** The adapter failed at `what`: reported, and health says so for a while (`health.clusterTroubleMs`). */
  #failed(error: unknown, what: string): void {
    this.#host.metrics.adapterFailed(what);
    this.#host.report(toBerthError(ErrorCode.ADAPTER, `adapter ${what} failed`, error));
  }
}
