const none: ReadonlySet<string> = new Set();

/**
 * A live, read-only view of the supervisor's room set of one connection: it
 * answers from the set as it is now, and has no `add`, `delete` or `clear`
 * (a cast cannot reach the set behind it either).
 */
export class RoomsView implements ReadonlySet<string> {
  readonly #read: () => ReadonlySet<string> | undefined;

  constructor(read: () => ReadonlySet<string> | undefined) {
    this.#read = read;
  }

  get #rooms(): ReadonlySet<string> {
    return this.#read() ?? none;
  }

  get size(): number {
    return this.#rooms.size;
  }

  has(room: string): boolean {
    return this.#rooms.has(room);
  }

  forEach(callback: (room: string, again: string, set: ReadonlySet<string>) => void, thisArg?: unknown): void {
    for (const room of this.#rooms) callback.call(thisArg, room, room, this);
  }

  *entries(): SetIterator<[string, string]> {
    for (const room of this.#rooms) yield [room, room];
  }

  *keys(): SetIterator<string> {
    yield* this.#rooms;
  }

  *values(): SetIterator<string> {
    yield* this.#rooms;
  }

  [Symbol.iterator](): SetIterator<string> {
    return this.values();
  }

  get [Symbol.toStringTag](): string {
    return 'RoomsView';
  }

  toJSON(): string[] {
    return [...this.#rooms];
  }
}
