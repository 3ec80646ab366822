/** Where a stream stood: the last offset numbered, and the epoch of its history. */
export interface SessionStreamPosition {
  readonly offset: number;
  readonly epoch: string;
}

/** What a dropped `berth.v1` connection leaves behind. */
export interface SessionRecord {
  /** The hash of the session's token, never the token (a credential). */
  readonly token: string;
  /** The connection it was. */
  readonly previous: string;
  /**
   * The connections whose sessions `previous` had itself resumed, newest first: a message sent with
   * `except` naming one of them was not for this session either.
   */
  readonly resumedFrom?: readonly string[];
  readonly user: string | undefined;
  readonly rooms: readonly string[];
  /** Every stream the connection was attached to, and where it stood when it was attached. */
  readonly streams: ReadonlyMap<string, SessionStreamPosition>;
}

/** Plain-data view of the kept sessions, as `toJSON()` (and so the inspector) shows them; never their tokens. */
export interface SessionsView {
  sessions: Array<{ previous: string; user: string | undefined; rooms: readonly string[]; streams: string[] }>;
  interest: Record<string, number>;
}

/**
 * The supervisor's sessions: every detached session by token, with its actor,
 * and how many of them hold each stream (whose history must therefore go on
 * being written). Mutated in place by the supervisor's actions, one event at
 * a time, like the directory.
 */
export class SessionRegistry<Ref = unknown> {
  readonly #kept = new Map<string, { readonly record: SessionRecord; readonly ref: Ref }>();
  readonly #interest = new Map<string, number>();

  get size(): number {
    return this.#kept.size;
  }

  /** Whether a kept session holds this stream. */
  interested(stream: string): boolean {
    return this.#interest.has(stream);
  }

  /** Whether any session is kept: while none is, nobody needs a stream's name. */
  get holdsAny(): boolean {
    return this.#interest.size > 0;
  }

  keep(record: SessionRecord, ref: Ref): void {
    this.#kept.set(record.token, { record, ref });
    for (const stream of record.streams.keys()) this.#interest.set(stream, (this.#interest.get(stream) ?? 0) + 1);
  }

  get(token: string): { readonly record: SessionRecord; readonly ref: Ref } | undefined {
    return this.#kept.get(token);
  }

  /** Forgets a session; false if it was not kept (taken already, or never). */
  forget(token: string): boolean {
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

  /** Every kept session's actor. */
  refs(): Ref[] {
    return [...this.#kept.values()].map(({ ref }) => ref);
  }

  clear(): void {
    this.#kept.clear();
    this.#interest.clear();
  }

  toJSON(): SessionsView {
    return {
      sessions: [...this.#kept.values()].map(({ record }) => ({
        previous: record.previous,
        user: record.user,
        rooms: record.rooms,
        streams: [...record.streams.keys()],
      })),
      interest: Object.fromEntries(this.#interest),
    };
  }
}
