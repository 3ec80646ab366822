/**
 * The benchmark message: one string, the same for all three systems.
 *
 *   {s:0000000042,t:1764100000000.123,d:xxxx…x}
 *
 * `s` is the sequence number within its room, `t` the send time in ms
 * (`performance.timeOrigin + performance.now()`, comparable across processes
 * on one machine), both fixed width so a client reads them at fixed offsets
 * straight from the socket's bytes without decoding the message. It is
 * JSON-ish but has no double quotes on purpose: Socket.IO JSON-encodes the
 * string, and quotes would make its frame grow by escapes that the other two
 * do not pay; without them Socket.IO adds exactly its own 9 bytes (`42["m","…"]`).
 */

const SEQ_DIGITS = 10;
const TIME_WIDTH = 17; // 13 integer digits, '.', 3 decimals
/** `{s:` + seq + `,t:` + time + `,d:` */
export const HEADER_BYTES = 3 + SEQ_DIGITS + 3 + TIME_WIDTH + 3;
const SEQ_AT = 3;
const TIME_AT = SEQ_AT + SEQ_DIGITS + 3;

const OPEN_BRACE = 0x7b;
const LETTER_S = 0x73;
const ZERO = 0x30;

/** Builds messages of one size; the filler is built once. */
export function payloadMaker(bytes: number): (seq: number, sentAt: number) => string {
  if (bytes < HEADER_BYTES + 1) throw new RangeError(`payload must be at least ${HEADER_BYTES + 1} bytes`);
  const filler = 'x'.repeat(bytes - HEADER_BYTES - 1) + '}';
  return (seq, sentAt) => `{s:${String(seq).padStart(SEQ_DIGITS, '0')},t:${sentAt.toFixed(3).padStart(TIME_WIDTH, '0')},d:${filler}`;
}

/** The sequence number of a message whose first bytes sit at `at` in `bytes`; -1 if it is not one. */
export function readSeq(bytes: Uint8Array, at: number, available: number): number {
  if (available - at < HEADER_BYTES || bytes[at] !== OPEN_BRACE || bytes[at + 1] !== LETTER_S) return -1;
  let seq = 0;
  for (let i = at + SEQ_AT, end = i + SEQ_DIGITS; i < end; i++) {
    const digit = bytes[i]! - ZERO;
    if (digit < 0 || digit > 9) return -1;
    seq = seq * 10 + digit;
  }
  return seq;
}

/** The send time (ms) of a message already accepted by `readSeq`. */
export function readSentAt(bytes: Uint8Array, at: number): number {
  let whole = 0;
  const start = at + TIME_AT;
  for (let i = start, end = start + 13; i < end; i++) whole = whole * 10 + (bytes[i]! - ZERO);
  const fraction = (bytes[start + 14]! - ZERO) * 100 + (bytes[start + 15]! - ZERO) * 10 + (bytes[start + 16]! - ZERO);
  return whole + fraction / 1000;
}
