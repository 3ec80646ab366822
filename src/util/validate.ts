/**
 * Checks on what callers pass. Misuse throws at once — `TypeError` for the
 * wrong kind of value, `RangeError` for one out of bounds — with a message
 * that names the argument in one style: `<name> must be <rule>, got <value>`.
 */

/** A value's kind, for error messages. */
export function describe(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
}

function shown(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : typeof value === 'object' ? describe(value) : String(value);
}

/** Longest room or user name, in UTF-16 code units: it travels in message headers of bounded size. */
export const MAX_NAME_LENGTH = 1024;

/** Rooms and users are non-empty strings of at most 1024 UTF-16 code units. */
export function assertName(what: 'room' | 'user', value: unknown): asserts value is string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new TypeError(`${what} must be a non-empty string, got ${describe(value)}`);
  }
  if (value.length > MAX_NAME_LENGTH) throw new RangeError(`${what} must be at most ${MAX_NAME_LENGTH} characters, got ${value.length}`);
}

/** An integer within `min`–`max`. */
export function integer(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new TypeError(`${name} must be an integer, got ${shown(value)}`);
  }
  if (value < min || value > max) throw new RangeError(`${name} must be within ${min}–${max}, got ${value}`);
  return value;
}

/** A finite number of at least `min` (exclusive when `min` is 0, the default). */
export function positive(name: string, value: unknown, min = 0): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new TypeError(`${name} must be a finite number, got ${shown(value)}`);
  }
  if (min === 0 ? value <= 0 : value < min) {
    throw new RangeError(`${name} must be ${min === 0 ? 'greater than 0' : `at least ${min}`}, got ${value}`);
  }
  return value;
}

/** Longest delay Node's timers keep: a longer one fires after 1 ms. */
const MAX_DELAY_MS = 2 ** 31 - 1;

/** A delay in milliseconds for a timer: finite, above 0, at most 2147483647. */
export function duration(name: string, value: unknown): number {
  positive(name, value);
  if ((value as number) > MAX_DELAY_MS) throw new RangeError(`${name} must be at most ${MAX_DELAY_MS} ms, got ${String(value)}`);
  return value as number;
}

/** One of a few strings. */
export function oneOf<const T extends string>(name: string, value: unknown, choices: readonly T[]): T {
  if (!choices.includes(value as T)) {
    const list = choices.map((choice) => `'${choice}'`);
    const rule = list.length === 2 ? `${list[0]} or ${list[1]}` : `${list.slice(0, -1).join(', ')} or ${list.at(-1)}`;
    throw new TypeError(`${name} must be ${rule}, got ${shown(value)}`);
  }
  return value as T;
}

/** A string that passes `test`; `rule` says what it must be. */
export function text(name: string, value: unknown, rule: string, test: (value: string) => boolean): string {
  if (typeof value !== 'string' || !test(value)) throw new TypeError(`${name} must be ${rule}, got ${shown(value)}`);
  return value;
}

/** A function, or nothing. */
export function optionalFunction(name: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'function') throw new TypeError(`${name} must be a function, got ${describe(value)}`);
}

/** An object (not null, not an array). */
export function object(name: string, value: unknown): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TypeError(`${name} must be an object, got ${describe(value)}`);
  }
}
