import { seededRandom } from '../src/util/random.js';
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

/**
 * Whether `payload` is, after its header, exactly the body of a message of its size and
 * sequence number `seq` — the padded one or the chat one — for a client that inflated it.
 */
export function isPayloadOf(payload: string, seq: number): boolean {
  const bytes = Buffer.byteLength(payload);
  const body = payload.slice(HEADER_BYTES);
  if (body === fillerBody(bytes)) return true;
  if (bytes < HEADER_BYTES + 64) return false;
  let chat = chatBodies.get(bytes);
  if (chat === undefined) chatBodies.set(bytes, (chat = chatPayloadMaker(bytes).body));
  return body === chat(seq);
}
const fillerBodies = new Map<number, string>();
const fillerBody = (bytes: number): string => {
  let body = fillerBodies.get(bytes);
  if (body === undefined) fillerBodies.set(bytes, (body = payloadMaker(bytes)(0, 0).slice(HEADER_BYTES)));
  return body;
};
const chatBodies = new Map<number, (seq: number) => string>();

const NAMES = [
  'alice',
  'bob',
  'carol',
  'dave',
  'erin',
  'frank',
  'grace',
  'heidi',
  'ivan',
  'judy',
  'mallory',
  'niaj',
  'olivia',
  'peggy',
  'rupert',
  'sybil',
  'trent',
  'victor',
  'walter',
  'yusuf',
  'zoe',
  'amara',
  'bilal',
  'chen',
];
const WORDS = (
  'the a to and of in is it you that for on with this we be are have not at can do so but what just ' +
  'meeting today tomorrow deploy build release fixed broken test tests review merge branch server client room ' +
  'message latency queue socket thanks ok sure sounds good looks great agreed later lunch coffee call sync ' +
  'ticket issue bug crash retry timeout config staging production rollback metrics dashboard alert page ' +
  'night weekend monday friday minutes hour soon done ready waiting blocked update notes doc draft'
).split(' ');
const EMOJI = ['👍', '🎉', '😂', '🙏', '🔥', '👀'];

/**
 * Builds chat messages of exactly `bytes` UTF-8 bytes: the header of `payloadMaker` (so the
 * receiver reads them the same way), then a chat room's recent messages as JSON —
 * `d:[{"id":…,"user":{"id":…,"name":"…"},"text":"…","at":…,"reactions":{…}},…]}` — with
 * ids, names, words and reactions drawn from the sequence number, so consecutive messages
 * share their vocabulary and keys but not their content, as a room's traffic does. The
 * body (everything after the header) depends on the sequence number only: `body(seq)`.
 */
export function chatPayloadMaker(bytes: number): { make(seq: number, sentAt: number): string; body(seq: number): string } {
  if (bytes < HEADER_BYTES + 64) throw new RangeError(`a chat payload must be at least ${HEADER_BYTES + 64} bytes`);
  const budget = bytes - HEADER_BYTES;
  const body = (seq: number): string => {
    // Deterministic, so a client can rebuild what the server sent from the sequence number alone.
    const next = seededRandom(seq + 1);
    const pick = <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)]!;
    const items: string[] = [];
    let length = 2; // `[` and `]}`'s `]`, the `}` is added below
    for (let i = 0; ; i++) {
      const user = Math.floor(next() * NAMES.length);
      const words = Array.from({ length: 3 + Math.floor(next() * 12) }, () => pick(WORDS)).join(' ');
      const reactions = next() < 0.3 ? `,"reactions":{"${pick(EMOJI)}":${1 + Math.floor(next() * 9)}}` : '';
      const item =
        `{"id":${seq * 16 + i},"user":{"id":${10_000 + user * 37},"name":"${NAMES[user]}"},` +
        `"text":"${words}","at":${1_764_100_000_000 + seq * 1_000 + i * 17}${reactions}}`;
      // The last item takes what is left, its text cut or padded with words to the exact size.
      const rest = budget - length - 1 - (items.length > 0 ? 1 : 0);
      if (Buffer.byteLength(item) < rest - 200) {
        items.push(item);
        length += Buffer.byteLength(item) + (items.length > 1 ? 1 : 0);
        continue;
      }
      const head = `{"id":${seq * 16 + i},"user":{"id":${10_000 + user * 37},"name":"${NAMES[user]}"},"text":"`;
      const tail = `","at":${1_764_100_000_000 + seq * 1_000 + i * 17}}`;
      let text = words;
      const room = rest - head.length - tail.length;
      while (text.length < room) text += ` ${pick(WORDS)}`;
      items.push(`${head}${text.slice(0, Math.max(0, room)).trimEnd().padEnd(room, '.')}${tail}`);
      return `[${items.join(',')}]}`;
    }
  };
  const maker = payloadMaker(HEADER_BYTES + 1);
  return {
    make: (seq, sentAt) => `${maker(seq, sentAt).slice(0, HEADER_BYTES)}${body(seq)}`,
    body,
  };
}
