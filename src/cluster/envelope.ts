import type { Target } from '../../machines/types.js';
import type { AdapterNode, BroadcastMessage } from './adapter.js';
import { interestKeyOf } from './interest.js';

/**
 * A broadcast as it travels between nodes, whatever the engine: one version
 * byte, one flags byte, a 16-bit header length, a JSON header
 * `[origin, kind, name, except, epoch, seq]`, then the payload bytes as the
 * application gave them. The payload is never re-encoded: a receiving node
 * frames it once for all its recipients.
 *
 * `seq` numbers the publisher's broadcasts to one target (room, user, or
 * everyone), from 1 within an `epoch`: a receiving node that sees a number
 * skipped knows exactly how many of that publisher's broadcasts to that
 * target it missed. Positions after `seq` are reserved for fields a later
 * version adds (a stream's offset); a reader ignores what it does not know.
 */
const VERSION = 2;
const BINARY = 1;
const HEAD = 4;

/** The key a target's broadcasts are numbered under: `room:<r>`, `user:<u>`, or `all`. */
export type SequenceKey = ReturnType<typeof interestKeyOf> | 'all';

export function sequenceKeyOf(target: Target): NonNullable<SequenceKey> {
  return interestKeyOf(target) ?? 'all';
}

export interface Stamp {
  readonly epoch: number;
  readonly seq: number;
}

export interface WireMessage {
  readonly origin: string;
  readonly stamp: Stamp;
  readonly message: BroadcastMessage;
}

export function encodeWire(origin: string, stamp: Stamp, message: BroadcastMessage): Buffer {
  const { target } = message;
  const name = target.kind === 'room' ? target.room : target.kind === 'user' ? target.user : '';
  const header = Buffer.from(JSON.stringify([origin, target.kind, name, message.except ?? '', stamp.epoch, stamp.seq]));
  if (header.length > 0xffff) throw new RangeError('broadcast header longer than 65535 bytes (room or user name too long)');
  const payload = typeof message.data === 'string' ? Buffer.from(message.data) : message.data;
  const out = Buffer.allocUnsafe(HEAD + header.length + payload.byteLength);
  out[0] = VERSION;
  out[1] = message.binary ? BINARY : 0;
  out.writeUInt16BE(header.length, 2);
  header.copy(out, HEAD);
  out.set(payload, HEAD + header.length);
  return out;
}

/**
 * Whether a broadcast on the wire was published by `origin` (its bytes, as `Buffer.from(nodeId)`),
 * read from the header's first bytes without decoding anything: a node that hosts members of a room
 * gets its own publications to it back from the bus, and skips them for the cost of a comparison.
 */
export function isFrom(bytes: Uint8Array, origin: Buffer): boolean {
  // The header is JSON, `["<origin>",…`: node ids are hex, so they appear unescaped.
  const at = HEAD + 2;
  return (
    bytes.length > at + origin.length &&
    bytes[0] === VERSION &&
    bytes[HEAD] === 0x5b &&
    bytes[HEAD + 1] === 0x22 &&
    bytes[at + origin.length] === 0x22 &&
    origin.compare(bytes, at, at + origin.length) === 0
  );
}

/** Throws `TypeError` on anything that is not a broadcast of this version. */
export function decodeWire(input: Uint8Array): WireMessage {
  const bytes = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  if (bytes.length < HEAD || bytes[0] !== VERSION) throw new TypeError(`not a berth broadcast (version byte ${bytes[0]})`);
  const headerEnd = HEAD + bytes.readUInt16BE(2);
  if (headerEnd > bytes.length) throw new TypeError('berth broadcast truncated');
  const header: unknown = JSON.parse(bytes.toString('utf8', HEAD, headerEnd));
  if (
    !Array.isArray(header) ||
    header.length < 6 ||
    !header.slice(0, 4).every((part) => typeof part === 'string') ||
    !Number.isSafeInteger(header[4]) ||
    !Number.isSafeInteger(header[5]) ||
    (header[5] as number) < 1
  ) {
    throw new TypeError('berth broadcast header malformed');
  }
  const [origin, kind, name, except, epoch, seq] = header as [string, string, string, string, number, number];
  return {
    origin,
    stamp: { epoch, seq },
    message: {
      target: target(kind, name),
      except: except === '' ? undefined : except,
      // Text stays UTF-8 bytes: framing them as text needs no round trip through a string.
      data: bytes.subarray(headerEnd),
      binary: (bytes[1]! & BINARY) !== 0,
    },
  };
}

function target(kind: string, name: string): Target {
  if (kind === 'all') return { kind: 'all' };
  if (kind === 'room' && name !== '') return { kind: 'room', room: name };
  if (kind === 'user' && name !== '') return { kind: 'user', user: name };
  throw new TypeError(`berth broadcast target malformed (${kind})`);
}

/** How many targets a publisher keeps numbering at once; the least recently used one past it starts a new epoch when used again. */
const MAX_NUMBERED_TARGETS = 100_000;

/**
 * What every adapter does with broadcasts on the wire, whatever carries them:
 * `seal` numbers and encodes this node's, `open` decodes another node's,
 * skips this node's own echoes, counts what a gap in a publisher's numbers
 * says was missed (`AdapterNode.lost`), and delivers.
 *
 * A receiving node keeps the last number it saw per publisher and target
 * while it is subscribed to that target; `forget` drops them when it
 * unsubscribes, so a later subscription starts from whatever comes first.
 * The first broadcast seen from a publisher on a target is taken as it is:
 * what came before the subscription was never this node's to receive.
 */
export class Envelopes {
  readonly #node: AdapterNode;
  readonly #origin: Buffer;
  /** This node's numbering, by target key, in least recently used order. */
  readonly #numbering = new Map<string, { epoch: number; seq: number }>();
  #epochs = 0;
  /** The last stamp seen, by target key, then by publisher. */
  readonly #seen = new Map<string, Map<string, Stamp>>();

  constructor(node: AdapterNode) {
    this.#node = node;
    this.#origin = Buffer.from(node.nodeId);
  }

  /** This node's next broadcast to `message.target`, numbered and encoded; `key` is the target's, if the caller has it. */
  seal(message: BroadcastMessage, key: string = sequenceKeyOf(message.target)): Buffer {
    return encodeWire(this.#node.nodeId, this.#next(key), message);
  }

  /**
   * A broadcast to `target` that will not be sent (the link is down, the backlog full): its number is
   * used up all the same, so that the nodes that should have received it count it as lost.
   */
  skip(target: Target): void {
    this.#next(sequenceKeyOf(target));
  }

  /** Bytes from the bus: delivered to this node, unless they are its own or malformed (reported as `failed`). */
  open(bytes: Uint8Array, channel: string): void {
    if (isFrom(bytes, this.#origin)) return;
    let wire: WireMessage;
    try {
      wire = decodeWire(bytes);
    } catch (error) {
      this.#node.failed(error, `receive on ${channel}`);
      return;
    }
    if (wire.origin === this.#node.nodeId) return;
    const key = sequenceKeyOf(wire.message.target);
    let publishers = this.#seen.get(key);
    if (publishers === undefined) this.#seen.set(key, (publishers = new Map()));
    const last = publishers.get(wire.origin);
    const { stamp } = wire;
    if (last !== undefined && last.epoch === stamp.epoch) {
      // Already seen (a bus that delivers twice): delivered once only.
      if (stamp.seq <= last.seq) return;
      if (stamp.seq > last.seq + 1) this.#node.lost(wire.message.target, stamp.seq - last.seq - 1, wire.origin);
    }
    publishers.set(wire.origin, stamp);
    this.#node.deliver(wire.message);
  }

  /**
   * A message of a durable stream, `<offset> <epoch> <broadcast>` as the engine published it: delivered
   * with its position, this node's own included (its recipients with an envelope get it from here).
   */
  openDurable(bytes: Uint8Array, channel: string): void {
    let delivered: BroadcastMessage;
    try {
      const first = bytes.indexOf(0x20);
      const second = bytes.indexOf(0x20, first + 1);
      if (first < 1 || second < first + 2) throw new TypeError('durable message without its position');
      const text = Buffer.from(bytes.buffer, bytes.byteOffset, second).toString('latin1');
      const offset = Number(text.slice(0, first));
      if (!Number.isSafeInteger(offset) || offset < 1) throw new TypeError(`durable message offset malformed (${text.slice(0, first)})`);
      const { origin, message } = decodeWire(bytes.subarray(second + 1));
      delivered = { ...message, position: { offset, epoch: text.slice(first + 1) }, origin };
    } catch (error) {
      this.#node.failed(error, `receive on ${channel}`);
      return;
    }
    this.#node.deliver(delivered);
  }

  /** This node no longer receives `target`'s broadcasts: what it saw of them is forgotten. */
  forget(key: string): void {
    this.#seen.delete(key);
  }

  /** A publisher left the cluster: what was seen of it is forgotten. */
  forgetPublisher(origin: string): void {
    for (const publishers of this.#seen.values()) publishers.delete(origin);
  }

  #next(key: string): Stamp {
    let numbering = this.#numbering.get(key);
    if (numbering === undefined) {
      numbering = { epoch: ++this.#epochs, seq: 0 };
      if (this.#numbering.size >= MAX_NUMBERED_TARGETS) this.#numbering.delete(this.#numbering.keys().next().value!);
    } else {
      // Kept in least recently used order: moved to the end.
      this.#numbering.delete(key);
    }
    this.#numbering.set(key, numbering);
    numbering.seq++;
    return { epoch: numbering.epoch, seq: numbering.seq };
  }
}
