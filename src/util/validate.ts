/** Checks on what callers pass: misuse throws at once, naming the argument. */

/** Rooms and users are non-empty strings. */
export function assertName(what: 'room' | 'user', value: unknown): asserts value is string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new TypeError(`${what} must be a non-empty string, got ${describe(value)}`);
  }
}

/** A value's kind, for error messages. */
export function describe(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
}
