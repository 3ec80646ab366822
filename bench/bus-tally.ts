/**
 * What a cluster node's Redis subscriber received, counted per channel in
 * the server process. The count comes from node-redis's own diagnostics
 * channel (`node-redis:pubsub`, direction `in`: one event for every pub/sub
 * message the client hands to a listener, whether it came by SUBSCRIBE,
 * PSUBSCRIBE or SSUBSCRIBE). berth's adapter and both Socket.IO adapters
 * subscribe through node-redis, so the one instrument serves all three and
 * nothing in an adapter is patched.
 */
import { subscribe } from 'node:diagnostics_channel';
import type { BusCounts } from './protocol.js';

const PUBSUB_CHANNEL = 'node-redis:pubsub';

/** The part of node-redis's pub/sub event the tally reads. */
interface PubSubEvent {
  readonly direction: string;
  readonly channel: Buffer | string;
}

export class BusTally {
  readonly #perChannel = new Map<string, number>();

  constructor() {
    subscribe(PUBSUB_CHANNEL, this.#count);
  }

  /**
   * Messages received since the tally started; `unrelated` are those on any channel but that of
   * a room this node hosts (`roomOf` names the room a channel carries, `hosts` says whether the
   * node has a member of it, both asked now). Counting everything else as unrelated, not only other
   * rooms' channels, means a node that got room traffic on a catch-all channel would show it too.
   */
  counts(roomOf: (channel: string) => string | undefined, hosts: (room: string) => boolean): BusCounts {
    let received = 0;
    let unrelated = 0;
    for (const [channel, count] of this.#perChannel) {
      received += count;
      const room = roomOf(channel);
      if (room === undefined || !hosts(room)) unrelated += count;
    }
    return { received, unrelated };
  }

  readonly #count = (message: unknown): void => {
    const event = message as PubSubEvent;
    if (event.direction !== 'in') return;
    const channel = String(event.channel);
    this.#perChannel.set(channel, (this.#perChannel.get(channel) ?? 0) + 1);
  };
}
