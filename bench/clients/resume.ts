/**
 * The clients of resume-storm: the real ones, `berth/client` for berth and
 * `socket.io-client` for Socket.IO, each over the `ws` package's WebSocket
 * (socket.io-client's websocket transport uses it in Node; berth/client is
 * given it). They connect, receive, and — after `drop()` destroys every TCP
 * socket under them at once, with no close frame — reconnect and resume by
 * themselves, with the same reconnect schedule for both (`BACKOFF`).
 *
 * Every message's per-room sequence number is checked: a count per client
 * and sequence number says what never arrived and what arrived twice, and a
 * first arrival below the highest number seen is a reordering. All of it in
 * typed arrays, so that 10 000 clients' bookkeeping is a few MB.
 */
import { io, type Socket } from 'socket.io-client';
import { WebSocket } from 'ws';
import { createClient, type BerthClient, type WebSocketClass } from '../../src/client.js';
import { HEADER_BYTES } from '../payload.js';
import { wallNow, type ConnectReport, type ResumeReport } from '../protocol.js';

export type ResumeSystem = 'berth' | 'socketio';

/**
 * One reconnect schedule for both clients: the n-th attempt (from 0) waits a
 * random time of up to 250 ms · 2ⁿ, at most 30 s. That is berth/client's
 * shipped default (full jitter); socket.io-client gets the same range with
 * `reconnectionDelay` 125 ms and `randomizationFactor` 1 (125 · 2ⁿ ± 100 %),
 * and `reconnectionDelayMax` 30 s.
 */
export const BACKOFF = { initialMs: 250, maxMs: 30_000 } as const;

/** socket.io-client's options for that schedule, over WebSocket only, one Engine.IO connection per client. */
export const SOCKET_IO_OPTIONS = {
  transports: ['websocket'],
  // Without it every io() to one URL shares a single Manager.
  forceNew: true,
  reconnectionDelay: BACKOFF.initialMs / 2,
  randomizationFactor: 1,
  reconnectionDelayMax: BACKOFF.maxMs,
};

const OPEN_TIMEOUT_MS = 30_000;

/**
 * Opens `size` clients, `concurrency` at a time: `start(slot, opened)` begins one, and it counts as
 * open once it calls `opened` within `OPEN_TIMEOUT_MS` (then `late(slot)` is told, and it counts as failed).
 */
export async function openClients(
  size: number,
  concurrency: number,
  start: (slot: number, opened: () => void) => void,
  late: (slot: number, timeoutMs: number) => void,
): Promise<{ opened: number; failed: number; ms: number }> {
  const started = performance.now();
  let next = 0;
  let opened = 0;
  let failed = 0;
  const openOne = (slot: number) =>
    new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        late(slot, OPEN_TIMEOUT_MS);
        resolve(false);
      }, OPEN_TIMEOUT_MS);
      start(slot, () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  const worker = async () => {
    while (next < size) {
      if (await openOne(next++)) opened++;
      else failed++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, size) }, worker));
  return { opened, failed, ms: performance.now() - started };
}

/** Where the sequence number sits in a benchmark payload (`{s:0000000042,…`). */
const SEQ_AT = 3;
const SEQ_DIGITS = 10;

/** `ws` sockets berth/client opened and that are not closed yet: what `drop()` cuts. */
const liveSockets = new Set<WebSocket>();

/** `ws`'s own WebSocket, only noting which sockets are open (one class for all clients, so ws's code stays monomorphic). */
class TrackedWebSocket extends WebSocket {
  constructor(url: string, protocols: string[]) {
    super(url, protocols);
    liveSockets.add(this);
    this.once('close', () => liveSockets.delete(this));
  }
}

/** The TCP socket under a `ws` WebSocket: destroyed, it goes away as a network drop would, without a close frame. */
function tcpOf(ws: unknown): { destroy(): void } | undefined {
  return (ws as { _socket?: { destroy(): void } } | undefined)?._socket ?? undefined;
}

/** The sequence number of a benchmark payload received as a string; -1 if it is not one. */
export function seqOf(text: string): number {
  if (text.length < HEADER_BYTES || text.charCodeAt(0) !== 0x7b || text.charCodeAt(1) !== 0x73) return -1;
  let seq = 0;
  for (let i = SEQ_AT; i < SEQ_AT + SEQ_DIGITS; i++) {
    const digit = text.charCodeAt(i) - 0x30;
    if (digit < 0 || digit > 9) return -1;
    seq = seq * 10 + digit;
  }
  return seq;
}

export class ResumeClients {
  readonly #system: ResumeSystem;
  readonly #port: number;
  readonly #rooms: string[];
  /** Sequence numbers per room. */
  readonly #messages: number;
  readonly #roomOf: Uint16Array;
  /** Copies received, per client and sequence number (saturating at 255). */
  readonly #counts: Uint8Array;
  /** Highest sequence number each client has received; -1 for none. */
  readonly #highest: Int32Array;
  readonly #back: Uint8Array;
  readonly #recovered: Uint8Array;
  /** `reconnecting` states each berth client went through since the drop. */
  readonly #reconnects: Uint8Array;
  readonly #berth: (BerthClient | undefined)[];
  readonly #socketio: (Socket | undefined)[];
  readonly #errors: string[] = [];

  #duplicated = 0;
  #reordered = 0;
  #malformed = 0;
  #attempts = 0;
  #failedAttempts = 0;
  #backCount = 0;
  #recoveredCount = 0;
  #droppedAt = 0;
  #lastBackAt = 0;
  readonly #backMs: number[] = [];
  /** The sequence number `waitReceived` waits for, and how many clients have it. */
  #upTo = 0;
  #reached = 0;
  #waiter: (() => void) | undefined;

  constructor(system: ResumeSystem, port: number, groups: readonly { room: string; count: number }[], messages: number) {
    this.#system = system;
    this.#port = port;
    this.#messages = messages;
    this.#rooms = groups.map((group) => group.room);
    const total = groups.reduce((sum, group) => sum + group.count, 0);
    this.#roomOf = new Uint16Array(total);
    let slot = 0;
    groups.forEach((group, room) => {
      for (let i = 0; i < group.count; i++) this.#roomOf[slot++] = room;
    });
    this.#counts = new Uint8Array(total * messages);
    this.#highest = new Int32Array(total).fill(-1);
    this.#back = new Uint8Array(total);
    this.#recovered = new Uint8Array(total);
    this.#reconnects = new Uint8Array(total);
    this.#berth = new Array<BerthClient | undefined>(total);
    this.#socketio = new Array<Socket | undefined>(total);
  }

  get size(): number {
    return this.#roomOf.length;
  }

  /** Opens every client, `concurrency` at a time; each is ready once open (berth: welcomed; Socket.IO: connected). */
  async open(concurrency: number): Promise<ConnectReport> {
    const report = await openClients(
      this.size,
      concurrency,
      (slot, opened) => {
        const room = this.#rooms[this.#roomOf[slot]!]!;
        if (this.#system === 'berth') this.#openBerth(slot, room, opened);
        else this.#openSocketIo(slot, room, opened);
      },
      (slot, timeoutMs) => this.#note(`client ${slot} not open after ${timeoutMs} ms`),
    );
    return { ...report, retries: this.#failedAttempts, firstErrors: this.#errors.slice(0, 5) };
  }

  #openBerth(slot: number, room: string, opened: () => void): void {
    const client = createClient(`ws://127.0.0.1:${this.#port}/?room=${encodeURIComponent(room)}`, {
      WebSocket: TrackedWebSocket as unknown as WebSocketClass,
      backoff: BACKOFF,
    });
    this.#berth[slot] = client;
    const stream = `room:${room}`;
    let ready = false;
    client.on('state', (state) => {
      if (state === 'open' && !ready) {
        ready = true;
        opened();
      }
      if (state === 'connecting' && this.#droppedAt > 0) this.#attempts++;
      // The drop itself is the first reconnect; any further one before the client is back is an attempt that failed.
      if (state === 'reconnecting' && this.#droppedAt > 0 && this.#back[slot] === 0 && this.#wasAway(slot)) this.#failedAttempts++;
    });
    client.on('message', ({ stream: from, data }) => {
      if (from !== stream || typeof data !== 'string') this.#malformed++;
      else this.#received(slot, seqOf(data));
    });
    client.on('resumed', ({ recovered, reason }) => {
      if (!recovered) this.#note(`client ${slot} not recovered: ${reason ?? 'no reason'}`);
      this.#cameBack(slot, recovered);
    });
    client.on('error', ({ code, message }) => this.#note(`client ${slot}: server error ${code}: ${message}`));
  }

  #openSocketIo(slot: number, room: string, opened: () => void): void {
    const socket = io(`http://127.0.0.1:${this.#port}`, { ...SOCKET_IO_OPTIONS, query: { room } });
    this.#socketio[slot] = socket;
    let ready = false;
    socket.on('connect', () => {
      if (!ready) {
        ready = true;
        opened();
        return;
      }
      if (this.#droppedAt === 0) return;
      if (!socket.recovered) this.#note(`client ${slot} not recovered`);
      this.#cameBack(slot, socket.recovered);
    });
    socket.on('m', (data: unknown) => {
      if (typeof data !== 'string') this.#malformed++;
      else this.#received(slot, seqOf(data));
    });
    socket.io.on('reconnect_attempt', () => this.#attempts++);
    socket.on('connect_error', (error) => {
      if (this.#droppedAt > 0) this.#failedAttempts++;
      this.#note(`client ${slot}: connect_error ${error.message}`);
    });
  }

  /** Whether this is a berth client's second or later `reconnecting` since the drop: the first is the drop itself. */
  #wasAway(slot: number): boolean {
    const count = this.#reconnects[slot]!;
    if (count < 255) this.#reconnects[slot] = count + 1;
    return count > 0;
  }

  #received(slot: number, seq: number): void {
    if (seq < 0 || seq >= this.#messages) {
      this.#malformed++;
      return;
    }
    const at = slot * this.#messages + seq;
    const count = this.#counts[at]!;
    if (count < 255) this.#counts[at] = count + 1;
    if (count > 0) {
      this.#duplicated++;
      return;
    }
    if (seq < this.#highest[slot]!) this.#reordered++;
    else this.#highest[slot] = seq;
    if (seq === this.#upTo - 1 && ++this.#reached === this.size) this.#waiter?.();
  }

  #cameBack(slot: number, recovered: boolean): void {
    if (this.#back[slot] === 1) return;
    this.#back[slot] = 1;
    this.#backCount++;
    if (recovered) {
      this.#recovered[slot] = 1;
      this.#recoveredCount++;
    }
    this.#lastBackAt = wallNow();
    this.#backMs.push(this.#lastBackAt - this.#droppedAt);
    if (this.#backCount === this.size) this.#waiter?.();
  }

  /** Resolves once every client has received sequence number `upTo - 1` (the last of a phase), or after `timeoutMs`. */
  waitReceived(upTo: number, timeoutMs: number): Promise<ResumeReport> {
    this.#upTo = upTo;
    this.#reached = 0;
    for (let slot = 0; slot < this.size; slot++) if (this.#counts[slot * this.#messages + upTo - 1]! > 0) this.#reached++;
    return this.#wait(() => this.#reached === this.size, timeoutMs);
  }

  /** Resolves once every client is back after the drop, or after `timeoutMs`. */
  waitBack(timeoutMs: number): Promise<ResumeReport> {
    return this.#wait(() => this.#backCount === this.size, timeoutMs);
  }

  #wait(done: () => boolean, timeoutMs: number): Promise<ResumeReport> {
    if (done()) return Promise.resolve(this.report());
    return new Promise((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        this.#waiter = undefined;
        resolve(this.report());
      };
      const timer = setTimeout(finish, timeoutMs);
      this.#waiter = () => {
        if (done()) finish();
      };
    });
  }

  /** Destroys the TCP socket under every client in one synchronous loop; the clients see a drop (1006, "transport close"). */
  drop(): ResumeReport {
    this.#droppedAt = wallNow();
    let dropped = 0;
    if (this.#system === 'berth') {
      for (const ws of [...liveSockets]) {
        const tcp = tcpOf(ws);
        if (tcp === undefined) continue;
        tcp.destroy();
        dropped++;
      }
    } else {
      for (const socket of this.#socketio) {
        const transport = (socket?.io.engine as unknown as { transport?: { ws?: unknown } } | undefined)?.transport;
        const tcp = tcpOf(transport?.ws);
        if (tcp === undefined) continue;
        tcp.destroy();
        dropped++;
      }
    }
    if (dropped !== this.size) this.#note(`drop: ${dropped} of ${this.size} clients had an open socket`);
    return this.report();
  }

  report(upTo = this.#upTo): ResumeReport {
    let missing = 0;
    let haveAll = 0;
    for (let slot = 0; slot < this.size; slot++) {
      let gaps = 0;
      const base = slot * this.#messages;
      for (let seq = 0; seq < upTo; seq++)
        if (this.#counts[base + seq] === 0) {
          if (gaps === 0 && missing < 2000 && process.env.BENCH_DEBUG) this.#note(`client ${slot} misses ${seq}`);
          gaps++;
        }
      missing += gaps;
      if (gaps === 0) haveAll++;
    }
    const { user, system } = process.cpuUsage();
    return {
      clients: this.size,
      back: this.#backCount,
      recovered: this.#recoveredCount,
      droppedAt: this.#droppedAt,
      lastBackAt: this.#lastBackAt,
      backMs: this.#backMs,
      haveAll,
      reached: this.#reached,
      missing,
      duplicated: this.#duplicated,
      reordered: this.#reordered,
      malformed: this.#malformed,
      attempts: this.#attempts,
      failedAttempts: this.#failedAttempts,
      firstErrors: this.#errors.slice(0, 10),
      cpuUs: user + system,
    };
  }

  /** Closes every client for good (deliberately: no session is kept). */
  closeAll(): void {
    for (const client of this.#berth) client?.close();
    for (const socket of this.#socketio) socket?.disconnect();
  }

  #note(error: string): void {
    if (this.#errors.length < 50) this.#errors.push(error);
  }
}
