/**
 * A `berth/client` client as a scenario drives it: created over a
 * `ClientNetwork`, with a short fixed backoff, and everything it does and
 * sees — states, welcomes, resumes, every stream message, its close — kept
 * for the steps that expect them and written to the timeline.
 */
import type { ClientEvents, StreamMessage } from '../client/api.js';
import { createClient, type BerthClient } from '../client/client.js';
import { decodeClientFrame, InvalidMessage } from '../protocol/v1.js';
import { ClientNetwork, type Dial } from './client-network.js';
import type { Received } from './matching.js';
import type { Timeline } from './timeline.js';

/** A stream message as the scenario keeps it: with its text or bytes, and whether a step has expected it yet. */
export interface KeptMessage extends Received {
  readonly stream: string;
  readonly offset: number;
  readonly epoch: string;
  taken: boolean;
}

export type Resumed = ClientEvents['resumed'];

/**
 * The client's backoff: a millisecond at most, so that a reconnect takes no
 * real time to speak of. The client's timers run on real time, not on the
 * scenario's simulated clock; with the network down its reconnect waits in
 * `connecting`, so the scenario decides when it gets back, not its timers.
 */
const BACKOFF = { initialMs: 1, maxMs: 1 };

export class ClientDriver {
  readonly name: string;
  readonly client: BerthClient;
  readonly network: ClientNetwork;
  readonly messages: KeptMessage[] = [];
  readonly resumes: Resumed[] = [];
  /** How many of `resumes` a step has expected. */
  resumesTaken = 0;
  /** The connection the last `drop` step took away. */
  dropped: string | undefined;
  /** Set once the client closed for good. */
  closed: { code: number; reason: string } | undefined;
  /** `berth.v1` messages (`msg`) written on each connection: what the server should have received once they arrive. */
  readonly #written = new Map<string, number>();
  /** Connections on which the client sent a `resume`. */
  readonly #resumedOn = new Set<string>();
  readonly #timeline: Timeline;

  constructor(name: string, url: string, dial: Dial, timeline: Timeline, changed: () => void) {
    this.name = name;
    this.#timeline = timeline;
    this.network = new ClientNetwork(dial, {
      dialled: (tag) => timeline.add(name, 'connect', `berth/client socket as ${tag}`),
      wrote: (tag, frame) => this.#wrote(tag, frame),
      changed,
    });
    const client = createClient(url, { WebSocket: this.network.WebSocket, backoff: BACKOFF, closeTimeoutMs: 1000 });
    this.client = client;
    client.on('state', (state) => {
      timeline.add(name, 'state', state);
      changed();
    });
    client.on('welcome', ({ id }) => timeline.add(name, 'session', `welcome as ${id}`));
    client.on('resumed', (resumed) => {
      this.resumes.push(resumed);
      timeline.add(name, 'session', describeResumed(resumed));
      changed();
    });
    client.on('message', (message) => {
      this.messages.push(keep(message));
      timeline.add(name, 'received', `${message.stream} #${message.offset}: ${shownData(message.data)}`);
      changed();
    });
    client.on('error', ({ code, message }) => timeline.add(name, 'received', `error ${code}: ${message}`));
    client.on('close', (close) => {
      this.closed = close;
      timeline.add(name, 'closed', `for good: ${close.code}${close.reason ? ` "${close.reason}"` : ''}`);
      changed();
    });
  }

  get state(): BerthClient['state'] {
    return this.client.state;
  }

  /** `msg` frames written on connection `tag` so far. */
  written(tag: string): number {
    return this.#written.get(tag) ?? 0;
  }

  /** Whether the client asked for its session on connection `tag`. */
  resumedOn(tag: string): boolean {
    return this.#resumedOn.has(tag);
  }

  /** The streams the client holds a position of, of rooms only: the rooms it believes it is in. */
  rooms(): string[] {
    return [...this.client.positions.keys()].filter((stream) => stream.startsWith('room:')).map((stream) => stream.slice(5));
  }

  /** Closes the client and its socket at once (the run is over). */
  stop(): void {
    this.client.close();
    this.network.terminate();
  }

  #wrote(tag: string, frame: string | Uint8Array): void {
    let kind: string;
    try {
      kind = decodeClientFrame(typeof frame === 'string' ? frame : Buffer.from(frame), typeof frame !== 'string').kind;
    } catch (error) {
      if (!(error instanceof InvalidMessage)) throw error;
      kind = 'invalid';
    }
    if (kind === 'msg') this.#written.set(tag, this.written(tag) + 1);
    if (kind === 'resume') {
      this.#resumedOn.add(tag);
      this.#timeline.add(this.name, 'sent', `resume (${this.network.held > 0 ? 'held for the concurrent group' : 'at once'})`);
    }
  }
}

function keep(message: StreamMessage): KeptMessage {
  const binary = typeof message.data !== 'string';
  const bytes = typeof message.data === 'string' ? Buffer.from(message.data) : Buffer.from(message.data);
  return {
    stream: message.stream,
    offset: message.offset,
    epoch: message.epoch,
    text: binary ? undefined : (message.data as string),
    bytes,
    binary,
    taken: false,
  };
}

const shownData = (data: string | Uint8Array) => (typeof data === 'string' ? data : `${data.byteLength} bytes`);

/** A `resumed` event in a few words: `recovered`, or why not and what was lost. */
export function describeResumed(resumed: Resumed): string {
  if (resumed.recovered) return 'resumed: recovered';
  const lost = resumed.lost.map(({ stream, reason }) => `${stream} (${reason})`).join(', ');
  return `resumed: not recovered, ${resumed.reason ?? 'no reason'}${lost ? `; lost ${lost}` : ''}`;
}
