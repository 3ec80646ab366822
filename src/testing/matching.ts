/**
 * What a step sends, and whether a message is what a step expected: the
 * same rules for raw clients and `berth/client` clients.
 */
import { isDeepStrictEqual } from 'node:util';
import type { MessageSpec } from './scenario.js';

/** A message as a client received it. */
export interface Received {
  /** Its text, for a text message. */
  readonly text: string | undefined;
  readonly bytes: Buffer;
  readonly binary: boolean;
}

/** What `expect` may say of a message. */
export interface Expected extends MessageSpec {
  readonly pattern?: string;
  readonly length?: number;
}

/** The data a `send` or `broadcast` step names, or why it names none. */
export function payload(spec: MessageSpec): string | Buffer | Error {
  if (spec.text !== undefined) return spec.text;
  if (spec.json !== undefined) return JSON.stringify(spec.json);
  if (spec.bytes !== undefined) return Buffer.alloc(spec.bytes, 0x62);
  return new Error('a message needs text, json or bytes');
}

/** How a message reads in a timeline or a failure: its text, or its size. */
export const shown = (message: { readonly text: string | undefined; readonly bytes: Buffer }) =>
  message.text ?? `${message.bytes.length} bytes`;

export const describe = (data: string | Buffer) => (typeof data === 'string' ? data : `${data.length} bytes`);

/** Why `message` is not what `expected` says, or undefined if it is. */
export function mismatch(message: Received, expected: Expected): string | undefined {
  const text = shown(message);
  if (expected.text !== undefined && message.text !== expected.text)
    return `got ${JSON.stringify(text)}, expected ${JSON.stringify(expected.text)}`;
  if (expected.pattern !== undefined && (message.text === undefined || !new RegExp(expected.pattern).test(message.text)))
    return `got ${JSON.stringify(text)}, expected a match of /${expected.pattern}/`;
  if (expected.length !== undefined && message.bytes.length !== expected.length)
    return `got ${message.bytes.length} bytes, expected ${expected.length}`;
  if (expected.bytes !== undefined && (!message.binary || message.bytes.length !== expected.bytes))
    return `got ${text}, expected ${expected.bytes} binary bytes`;
  if (expected.json !== undefined && !containsJson(message.text, expected.json))
    return `got ${message.text === undefined ? text : message.text}, expected JSON containing ${JSON.stringify(expected.json)}`;
  return undefined;
}

/** True if `text` is JSON that contains `expected` (see `contains`). */
export function containsJson(text: string | undefined, expected: unknown): boolean {
  let value: unknown;
  try {
    value = JSON.parse(text ?? '');
  } catch {
    return false;
  }
  return contains(value, expected);
}

/** True if `actual` has every field of `expected`, recursively (arrays must match element by element). */
export function contains(actual: unknown, expected: unknown): boolean {
  if (typeof expected !== 'object' || expected === null) return isDeepStrictEqual(actual, expected);
  if (typeof actual !== 'object' || actual === null) return false;
  if (Array.isArray(expected))
    return Array.isArray(actual) && actual.length === expected.length && expected.every((item, i) => contains(actual[i], item));
  return Object.entries(expected).every(([key, value]) => contains((actual as Record<string, unknown>)[key], value));
}

/** Whether a stream name matches a step's `stream`: exactly, or by prefix for `conn:*`. */
export function streamMatches(stream: string, pattern: string | undefined): boolean {
  if (pattern === undefined) return true;
  return pattern.endsWith('*') ? stream.startsWith(pattern.slice(0, -1)) : stream === pattern;
}
