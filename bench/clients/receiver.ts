/**
 * The receiving side of the broadcast scenarios: opens a client process's
 * share of the connections, then checks every benchmark message as it
 * arrives — exactly once and in order per connection, by its sequence
 * number — records its latency, and notes the moment the last fast
 * connection has everything. Per-connection state lives in typed arrays
 * indexed by slot, so the hot path allocates nothing.
 *
 * With compression, the connections offer permessage-deflate. One in
 * `INFLATE_EVERY` inflates every compressed message and checks it whole
 * against what the server sent (rebuilt from its size and sequence number).
 * The others, where the server compresses each message on its own
 * (`server_no_context_takeover`), count compressed messages without reading
 * them, each one the next delivery of its connection; where it compresses
 * against earlier messages they must inflate everything (no later message,
 * nor a Socket.IO ping, can be read without every one before it), and read
 * it as a plain message. Every connection's socket bytes are counted.
 */
import { LatencyHistogram } from '../histogram.js';
import { isPayloadOf, readSentAt, readSeq } from '../payload.js';
import type { ConnectionGroup, ConnectReport, DeliveryReport } from '../protocol.js';
import { READY, UNKNOWN, type Dialect } from './dialect.js';
import { pingsAnswered, WireConnection, wireBytes, type WireHandler } from './wire.js';

/** One connection in this many inflates and checks what it receives compressed; the rest count it. */
export const INFLATE_EVERY = 50;

const HANDSHAKE_TIMEOUT_MS = 15_000;
const ATTEMPTS = 4;

export class Receiver implements WireHandler {
  readonly #dialect: Dialect;
  readonly #rooms: string[];
  /** The server port of each room's connections. */
  readonly #ports: number[];
  readonly #connections: (WireConnection | undefined)[];
  /** Room index of each slot. */
  readonly #roomOf: Uint16Array;
  readonly #slow: Uint8Array;
  readonly #ready: Uint8Array;
  readonly #closed: Uint8Array;
  /** Next sequence number each slot expects. */
  readonly #next: Uint32Array;
  /** Messages each room's members expect in the current phase. */
  #expected: Uint32Array;
  readonly #opening: (((ok: boolean) => void) | undefined)[];
  readonly #errors: string[] = [];
  readonly #compression: boolean;

  #delivered = 0;
  #expectedTotal = 0;
  #duplicates = 0;
  #gaps = 0;
  #malformed = 0;
  #closedEarly = 0;
  #slowDelivered = 0;
  #inflated = 0;
  #checkedWhole = 0;
  #counted = 0;
  /** `wireBytes` when the phase began. */
  #wireFrom = 0;
  /** Fast connections still missing messages. */
  #pending = 0;
  #completedAt = 0;
  #latency = new LatencyHistogram();
  #waiter: (() => void) | undefined;

  /** `compression`: offer permessage-deflate [default false]. */
  constructor(port: number, dialect: Dialect, groups: readonly ConnectionGroup[], compression = false) {
    this.#dialect = dialect;
    this.#compression = compression;
    this.#rooms = groups.map((group) => group.room);
    this.#ports = groups.map((group) => group.port ?? port);
    const total = groups.reduce((sum, group) => sum + group.fast + group.slow, 0);
    this.#connections = new Array<WireConnection | undefined>(total);
    this.#opening = new Array<((ok: boolean) => void) | undefined>(total);
    this.#roomOf = new Uint16Array(total);
    this.#slow = new Uint8Array(total);
    this.#ready = new Uint8Array(total);
    this.#closed = new Uint8Array(total);
    this.#next = new Uint32Array(total);
    this.#expected = new Uint32Array(groups.length);
    let slot = 0;
    groups.forEach((group, room) => {
      // Slow connections are spread evenly among the fast ones rather than opened last.
      const count = group.fast + group.slow;
      const stride = group.slow > 0 ? Math.floor(count / group.slow) : 0;
      let slow = 0;
      for (let i = 0; i < count; i++, slot++) {
        this.#roomOf[slot] = room;
        if (slow < group.slow && i % stride === 0) {
          this.#slow[slot] = 1;
          slow++;
        }
      }
    });
  }

  /** Opens every connection, `concurrency` handshakes at a time, retrying a failed one a few times. */
  async connect(concurrency: number): Promise<ConnectReport> {
    const started = performance.now();
    let next = 0;
    let opened = 0;
    let failed = 0;
    let retries = 0;
    const worker = async () => {
      while (next < this.#connections.length) {
        const slot = next++;
        for (let attempt = 1; ; attempt++) {
          if (await this.#open(slot)) {
            opened++;
            break;
          }
          if (attempt === ATTEMPTS) {
            failed++;
            break;
          }
          retries++;
          await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, this.#connections.length) }, worker));
    return { opened, failed, retries, firstErrors: this.#errors.slice(0, 5), ms: performance.now() - started };
  }

  #open(slot: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#note(`handshake timed out after ${HANDSHAKE_TIMEOUT_MS} ms`);
        this.#connections[slot]?.destroy();
      }, HANDSHAKE_TIMEOUT_MS);
      this.#opening[slot] = (ok) => {
        clearTimeout(timer);
        this.#opening[slot] = undefined;
        resolve(ok);
      };
      const index = this.#roomOf[slot]!;
      this.#connections[slot] = new WireConnection(
        slot,
        {
          port: this.#ports[index]!,
          path: this.#dialect.path(this.#rooms[index]!),
          protocol: this.#dialect.protocol,
          ...(this.#compression && { compression: slot % INFLATE_EVERY === 0 ? 'inflate' : 'count' }),
        },
        this,
      );
    });
  }

  /** Starts a phase: every connection of `room` must now receive sequence numbers 0..n-1. */
  expect(perRoom: Record<string, number>): void {
    this.#expected = Uint32Array.from(this.#rooms, (room) => perRoom[room] ?? 0);
    this.#next.fill(0);
    this.#delivered = this.#duplicates = this.#gaps = this.#malformed = this.#slowDelivered = 0;
    this.#inflated = this.#checkedWhole = this.#counted = 0;
    this.#wireFrom = wireBytes.count;
    this.#completedAt = 0;
    this.#latency = new LatencyHistogram();
    this.#expectedTotal = 0;
    this.#pending = 0;
    for (let slot = 0; slot < this.#next.length; slot++) {
      if (this.#slow[slot] === 1) continue;
      const expected = this.#expected[this.#roomOf[slot]!]!;
      // A fast connection already closed still counts as expecting: its loss must show.
      this.#expectedTotal += expected;
      if (expected > 0 && this.#closed[slot] === 0) this.#pending++;
    }
    if (this.#pending === 0) this.#completedAt = performance.timeOrigin + performance.now();
  }

  /** Resolves once every fast connection is done, or after `timeoutMs`. */
  wait(timeoutMs: number): Promise<DeliveryReport> {
    if (this.#pending === 0) return Promise.resolve(this.report());
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiter = undefined;
        resolve(this.report());
      }, timeoutMs);
      this.#waiter = () => {
        clearTimeout(timer);
        this.#waiter = undefined;
        resolve(this.report());
      };
    });
  }

  report(): DeliveryReport {
    let incomplete = 0;
    for (let slot = 0; slot < this.#next.length; slot++) {
      if (this.#slow[slot] === 0 && this.#next[slot]! < this.#expected[this.#roomOf[slot]!]!) incomplete++;
    }
    const { user, system } = process.cpuUsage();
    return {
      delivered: this.#delivered,
      expected: this.#expectedTotal,
      duplicates: this.#duplicates,
      gaps: this.#gaps,
      malformed: this.#malformed,
      closedEarly: this.#closedEarly,
      incompleteConnections: incomplete,
      pings: pingsAnswered.count,
      firstErrors: this.#errors.slice(0, 5),
      completedAt: this.#pending === 0 ? this.#completedAt : 0,
      slowDelivered: this.#slowDelivered,
      latency: this.#latency.toSparse(),
      cpuUs: user + system,
      wireBytes: wireBytes.count - this.#wireFrom,
      inflated: this.#inflated,
      checkedWhole: this.#checkedWhole,
      counted: this.#counted,
    };
  }

  destroyAll(): void {
    for (const connection of this.#connections) connection?.destroy();
  }

  // WireHandler: the hot path.

  upgraded(connection: WireConnection): void {
    if (this.#dialect.upgraded(connection)) this.#becameReady(connection);
  }

  message(connection: WireConnection, length: number, now: number): void {
    const at = this.#dialect.inspect(connection, length);
    if (at < 0) {
      if (at === READY) this.#becameReady(connection);
      else if (at === UNKNOWN) this.#malformed++;
      return;
    }
    const slot = connection.slot;
    let seq = readSeq(connection.prefix, at, connection.prefixLength);
    const expected = this.#expected[this.#roomOf[slot]!]!;
    if (connection.inflated !== undefined) {
      this.#inflated++;
      if (slot % INFLATE_EVERY === 0 && seq >= 0 && !this.#intact(connection.inflated, seq)) seq = -1;
    }
    if (seq < 0 || seq >= expected) {
      this.#malformed++;
      return;
    }
    const next = this.#next[slot]!;
    if (seq < next) {
      this.#duplicates++;
      return;
    }
    if (this.#slow[slot] === 1) {
      this.#slowDelivered++;
      this.#next[slot] = seq + 1;
      return;
    }
    if (seq > next) this.#gaps += seq - next;
    else {
      this.#delivered++;
      this.#latency.record(now - readSentAt(connection.prefix, at));
    }
    this.#next[slot] = seq + 1;
    // A connection that skipped messages is finished too (incomplete), so a lossy run ends early.
    if (seq + 1 === expected) this.#connectionDone(now);
  }

  counted(connection: WireConnection, now: number): void {
    const slot = connection.slot;
    const next = this.#next[slot]!;
    const expected = this.#expected[this.#roomOf[slot]!]!;
    if (next >= expected) {
      this.#malformed++;
      return;
    }
    this.#counted++;
    this.#next[slot] = next + 1;
    if (this.#slow[slot] === 1) this.#slowDelivered++;
    else this.#delivered++;
    if (next + 1 === expected) this.#connectionDone(now);
  }

  /** Whether an inflated message is exactly the payload of `seq` that the server sent, in the dialect's packet. */
  #intact(message: Buffer, seq: number): boolean {
    const payload = this.#dialect.payloadOf(message.toString());
    if (payload === undefined) return false;
    const intact = isPayloadOf(payload, seq);
    if (intact) this.#checkedWhole++;
    else this.#note(`an inflated message of ${message.length} B is not the payload of ${seq}`);
    return intact;
  }

  closed(connection: WireConnection, error: Error | undefined): void {
    const slot = connection.slot;
    if (this.#connections[slot] !== connection) return;
    const opening = this.#opening[slot];
    if (opening !== undefined) {
      this.#note(error?.message ?? 'closed during handshake');
      opening(false);
      return;
    }
    this.#closed[slot] = 1;
    if (this.#slow[slot] === 1) return;
    this.#closedEarly++;
    this.#note(`connection ${slot} closed: ${error?.message ?? 'cleanly'}`);
    if (this.#next[slot]! < this.#expected[this.#roomOf[slot]!]!) this.#connectionDone(performance.timeOrigin + performance.now());
  }

  #becameReady(connection: WireConnection): void {
    const slot = connection.slot;
    if (this.#ready[slot] === 1) return;
    this.#ready[slot] = 1;
    if (this.#slow[slot] === 1) connection.pause();
    this.#opening[slot]?.(true);
  }

  #connectionDone(now: number): void {
    if (--this.#pending > 0) return;
    this.#completedAt = now;
    this.#waiter?.();
  }

  #note(error: string): void {
    if (this.#errors.length < 20) this.#errors.push(error);
  }
}
