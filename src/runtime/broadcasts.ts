/**
 * Broadcasts, from the application or from another node: framed once, given
 * to this node's recipients in one supervisor event whatever their number,
 * numbered on their stream for `berth.v1` recipients (and for sessions that
 * wait for their clients), and carried to the other nodes.
 */
import type { EncodedFrame, Target } from '../../machines/types.js';
import type { BroadcastMessage } from '../cluster/adapter.js';
import type { Deflater } from '../delivery/deflate.js';
import { encode, toPayload, type SendData } from '../delivery/frame.js';
import type { Metrics } from '../observability/metrics.js';
import { streamOf, type Payload } from '../protocol/v1.js';
import { ErrorCode, toBerthError, type BerthError } from '../util/errors.js';
import type { BroadcastOptions } from './api.js';
import type { ClusterBridge } from './cluster-bridge.js';
import type { DurableDelivery } from './durable.js';
import type { Recovery } from './recovery/recovery.js';
import type { Streams } from './streams.js';
import type { SupervisorRunner } from './supervisor.js';

/** What broadcasting needs of its runtime. */
export interface BroadcastsHost {
  /** With durable streams: the engine numbers every broadcast, and feeds deliver it to `berth.v1` recipients. */
  readonly durable: DurableDelivery | undefined;
  readonly supervisor: SupervisorRunner;
  readonly streams: Streams;
  readonly recovery: Recovery;
  readonly bridge: ClusterBridge;
  readonly deflater: Deflater | undefined;
  readonly metrics: Metrics;
  report(error: BerthError): void;
}

export class Broadcasts {
  readonly #host: BroadcastsHost;

  constructor(host: BroadcastsHost) {
    this.#host = host;
  }

  /** The application's broadcast: to this node's recipients, then to the other nodes. */
  send(target: Target, data: SendData, options: BroadcastOptions | undefined): void {
    // Framed once here; every local recipient's outbox holds a reference to the same bytes.
    const frame = encode(data, options?.binary);
    const except = typeof options?.except === 'object' ? options.except.id : options?.except;
    const message: BroadcastMessage = { target, except, ...toPayload(data, options?.binary) };
    const { durable } = this.#host;
    this.#deliver(target, except, frame, true, message, durable === undefined);
    if (durable === undefined) this.#host.bridge.publish(message);
    else durable.send(message);
  }

  /** A broadcast another node published: framed once here, for this node's recipients. */
  received(message: BroadcastMessage): void {
    if (this.#host.durable !== undefined) return this.#host.durable.received(message);
    this.#host.metrics.crossNode('received');
    let frame: EncodedFrame;
    try {
      frame = encode(message.data, message.binary);
    } catch (error) {
      this.#host.report(toBerthError(ErrorCode.ADAPTER, 'adapter delivered a message that cannot be framed', error));
      return;
    }
    this.#deliver(message.target, message.except, frame, false, message);
  }

  /**
   * One supervisor event per broadcast, whatever the number of recipients.
   * `sentHere`: the broadcast was sent from this node, rather than received from another.
   * `numberHere`: its `berth.v1` recipients are given it here (not by the durable feeds).
   */
  #deliver(target: Target, except: string | undefined, frame: EncodedFrame, sentHere: boolean, payload: Payload, numberHere = true): void {
    const { supervisor, streams, recovery, deflater, metrics } = this.#host;
    // Once the supervisor has stopped (shut down, or failed) nobody local is left to receive it.
    if (!supervisor.active) {
      metrics.dropped('runtime-stopped', 1);
      return;
    }
    const startedAt = performance.now();
    // A room's (or everyone's) messages may share a compression context: compressed there now, in order.
    if (deflater !== undefined && target.kind !== 'user') deflater.share(frame, `raw ${streamOf(target)}`);
    supervisor.send({
      type: 'broadcast',
      target,
      except,
      frame,
      // Answered when the supervisor processes the broadcast: at once, or later in this same call when a
      // broadcast is sent from inside another (a `dropped` handler, an adapter's `track`) and waits its turn.
      delivered: (recipients, enveloped) => {
        metrics.broadcast(recipients, startedAt, sentHere);
        // A stream a dropped connection's session holds goes on being numbered and kept, for its resume;
        // and a member left out by `except` is owed its `skip` even when nobody else here takes it.
        if (!numberHere) return;
        if (enveloped.length > 0 || recovery.holds(target) || (except !== undefined && streams.skips(except, target))) {
          streams.broadcast(target, except, payload, enveloped);
        }
      },
    });
  }
}
