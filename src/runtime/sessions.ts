/**
 * Sessions of `berth.v1` connections: a token per connection; what a dropped
 * connection leaves behind (user, rooms, the streams it was attached to and
 * where each stood) kept for the recovery window as a session actor, a child
 * of the supervisor; taken back, once, by the client that resumes with the
 * token. Every step is one synchronous section, so a resume cannot interleave
 * with another resume of the same token, with the expiry, or with a join.
 */
import { randomBytes } from 'node:crypto';
import { createActor, type Actor, type AnyActorRef } from 'xstate';
import { sessionMachine } from '../../machines/session.machine.js';
import type { Target } from '../../machines/types.js';
import type { StreamPosition } from '../history/store.js';
import { streamOf } from '../protocol/v1.js';
import type { Clock } from './options.js';

/** What a dropped connection leaves behind. */
export interface SessionRecord {
  readonly token: string;
  /** The connection it was. */
  readonly previous: string;
  readonly user: string | undefined;
  readonly rooms: readonly string[];
  /** Every stream the connection was attached to, and where it stood when it was attached. */
  readonly streams: ReadonlyMap<string, StreamPosition>;
}

interface Kept {
  readonly record: SessionRecord;
  readonly actor: Actor<typeof sessionMachine>;
}

export class Sessions {
  readonly #windowMs: number;
  readonly #maxSessions: number;
  readonly #parent: AnyActorRef;
  readonly #clock: Clock | undefined;
  readonly #kept = new Map<string, Kept>();
  /** How many detached sessions hold each stream: their streams' history must go on being written. */
  readonly #interest = new Map<string, number>();
  readonly #ended: (outcome: 'expired' | 'overflow') => void;

  constructor(options: {
    windowMs: number;
    maxSessions: number;
    parent: AnyActorRef;
    clock: Clock | undefined;
    ended: (outcome: 'expired' | 'overflow') => void;
  }) {
    this.#windowMs = options.windowMs;
    this.#maxSessions = options.maxSessions;
    this.#parent = options.parent;
    this.#clock = options.clock;
    this.#ended = options.ended;
  }

  /** A new, unguessable token (144 random bits). */
  static token(): string {
    return randomBytes(18).toString('base64url');
  }

  get size(): number {
    return this.#kept.size;
  }

  /**
   * Whether a detached session holds the stream of a broadcast's target. Asked of every broadcast with
   * no `berth.v1` recipient, so it costs nothing (no stream name built) while no session is detached.
   */
  interested(target: Target): boolean {
    return this.#interest.size > 0 && this.#interest.has(streamOf(target));
  }

  /** Keeps what a dropped connection leaves behind for the window; false if too many are kept already. */
  detach(record: SessionRecord): boolean {
    if (this.#kept.size >= this.#maxSessions) {
      this.#ended('overflow');
      return false;
    }
    const actor = createActor(sessionMachine, {
      parent: this.#parent,
      id: 'session',
      input: { token: record.token, windowMs: this.#windowMs },
      ...(this.#clock && { clock: this.#clock }),
    });
    actor.subscribe({
      complete: () => {
        const output = actor.getSnapshot().output;
        // Resumed sessions were taken already; an expired one goes now.
        if (output?.outcome === 'expired' && this.#forget(record.token)) this.#ended('expired');
      },
      error: () => this.#forget(record.token),
    });
    this.#kept.set(record.token, { record, actor });
    for (const stream of record.streams.keys()) this.#interest.set(stream, (this.#interest.get(stream) ?? 0) + 1);
    actor.start();
    return true;
  }

  /** The session of `token`, if it is kept, without taking it. */
  peek(token: string): SessionRecord | undefined {
    return this.#kept.get(token)?.record;
  }

  /** Takes a session back for its client: once; a second take of the same token finds nothing. */
  take(token: string): SessionRecord | undefined {
    const kept = this.#kept.get(token);
    if (kept === undefined) return undefined;
    this.#forget(token);
    kept.actor.send({ type: 'session.resume' });
    return kept.record;
  }

  /** Stops every session (the runtime is closing). */
  close(): void {
    for (const { actor } of this.#kept.values()) actor.stop();
    this.#kept.clear();
    this.#interest.clear();
  }

  #forget(token: string): boolean {
    const kept = this.#kept.get(token);
    if (kept === undefined) return false;
    this.#kept.delete(token);
    for (const stream of kept.record.streams.keys()) {
      const count = (this.#interest.get(stream) ?? 1) - 1;
      if (count <= 0) this.#interest.delete(stream);
      else this.#interest.set(stream, count);
    }
    return true;
  }
}
