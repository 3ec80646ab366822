/**
 * The clients of cluster-resume: real `berth/client` and `socket.io-client`
 * clients (as in resume-storm, with the same backoff), each with a home node
 * among the cluster's nodes, every connection attempt routed by the
 * Balancer. Every node publishes to every room with a sequence of its own
 * (`publisher × PUBLISHER_SPAN + k`); each client's copies of every
 * (publisher, k) are counted, so what never arrived and what arrived twice
 * is known per client. When a node goes away its clients come back through
 * the others by themselves; when each came back, whether it was recovered,
 * and when its first live message arrived (the first one sent after it was
 * back) are kept per client.
 */
import { io, type Socket } from 'socket.io-client';
import { createClient, type BerthClient, type WebSocketClass } from '../../src/client.js';
import { HOST, PUBLISHER_SPAN, wallNow, type ClusterResumeReport, type ConnectReport } from '../protocol.js';
import { Balancer, RoutedWebSocket, routeWebSockets } from './balancer.js';
import { BACKOFF, openClients, seqOf, SOCKET_IO_OPTIONS, type ResumeSystem } from './resume.js';

/** Where the send time sits in a benchmark payload (`{s:0000000042,t:1764100000000.123,…`). */
const TIME_AT = 16;
const TIME_END = TIME_AT + 17;
/** The client's slot in its URL (`c=<slot>`; the servers ignore it), so the router knows whose attempt it is. */
const SLOT_PARAM = /[?&]c=(\d+)/;

export interface ClusterGroup {
  readonly room: string;
  readonly node: number;
  readonly count: number;
}

export class ClusterResumeClients {
  readonly #system: ResumeSystem;
  readonly #balancer: Balancer;
  readonly #rooms: string[] = [];
  readonly #publishers: number;
  readonly #messages: number;
  readonly #roomOf: Uint16Array;
  readonly #home: Uint8Array;
  /** The node of each client's latest connection attempt. */
  readonly #at: Uint8Array;
  /** Copies received, per client, publisher and k (saturating at 255). */
  readonly #counts: Uint8Array;
  /** Highest k received per client and publisher; -1 for none. */
  readonly #highest: Int32Array;
  /** Per client: away since its last drop; drops; when it was last back; whether that return recovered it; its first live message after it. */
  readonly #away: Uint8Array;
  readonly #drops: Uint16Array;
  readonly #backAt: Float64Array;
  readonly #recovered: Uint8Array;
  readonly #watching: Uint8Array;
  readonly #liveAt: Float64Array;
  /** Targets of the current `waitReceived` a client still misses. */
  readonly #need: Uint8Array;
  readonly #berth: (BerthClient | undefined)[];
  readonly #socketio: (Socket | undefined)[];
  readonly #errors: string[] = [];

  #upTo: readonly number[] = [];
  #reached = 0;
  #duplicated = 0;
  #reordered = 0;
  #malformed = 0;
  #lostEvents = 0;
  #attempts = 0;
  #failedAttempts = 0;
  /** The node that went away, and when (wall ms); -1 and 0 before. */
  #downNode = -1;
  #downAt = 0;
  #movedBack = 0;
  readonly #countedBack: Uint8Array;
  #waiter: (() => void) | undefined;

  constructor(system: ResumeSystem, ports: readonly number[], groups: readonly ClusterGroup[], publishers: number, messages: number) {
    this.#system = system;
    this.#balancer = new Balancer(ports);
    this.#publishers = publishers;
    this.#messages = messages;
    const total = groups.reduce((sum, group) => sum + group.count, 0);
    this.#roomOf = new Uint16Array(total);
    this.#home = new Uint8Array(total);
    let slot = 0;
    for (const group of groups) {
      let room = this.#rooms.indexOf(group.room);
      if (room === -1) room = this.#rooms.push(group.room) - 1;
      for (let i = 0; i < group.count; i++, slot++) {
        this.#roomOf[slot] = room;
        this.#home[slot] = group.node;
      }
    }
    this.#at = Uint8Array.from(this.#home);
    this.#counts = new Uint8Array(total * publishers * messages);
    this.#highest = new Int32Array(total * publishers).fill(-1);
    this.#away = new Uint8Array(total);
    this.#drops = new Uint16Array(total);
    this.#backAt = new Float64Array(total);
    this.#recovered = new Uint8Array(total);
    this.#watching = new Uint8Array(total);
    this.#liveAt = new Float64Array(total);
    this.#need = new Uint8Array(total);
    this.#countedBack = new Uint8Array(total);
    this.#berth = new Array<BerthClient | undefined>(total);
    this.#socketio = new Array<Socket | undefined>(total);
    routeWebSockets(
      (url) => {
        const slot = Number(SLOT_PARAM.exec(url)?.[1] ?? -1);
        return slot < 0 || slot >= total ? url : this.#urlOf(slot, 'ws');
      },
      (kind) => {
        if (this.#downAt > 0) this.#tally(kind);
      },
    );
  }

  get size(): number {
    return this.#roomOf.length;
  }

  /** The URL of the client's next attempt: its home node while up, otherwise one the balancer picks. */
  #urlOf(slot: number, scheme: 'ws' | 'http'): string {
    const node = this.#balancer.route(this.#home[slot]!);
    this.#at[slot] = node;
    const port = this.#balancer.port(node);
    return scheme === 'ws' ? `ws://${HOST}:${port}/?room=${this.#rooms[this.#roomOf[slot]!]!}&c=${slot}` : `http://${HOST}:${port}`;
  }

  /** Opens every client, `concurrency` at a time; each is ready once open (berth: welcomed; Socket.IO: connected). */
  async open(concurrency: number): Promise<ConnectReport> {
    const report = await openClients(
      this.size,
      concurrency,
      (slot, opened) => (this.#system === 'berth' ? this.#openBerth(slot, opened) : this.#openSocketIo(slot, opened)),
      (slot, timeoutMs) => this.#note(`client ${slot} not open after ${timeoutMs} ms`),
    );
    return { ...report, retries: this.#failedAttempts, firstErrors: this.#errors.slice(0, 5) };
  }

  #openBerth(slot: number, opened: () => void): void {
    // The host and port are the router's to fill in, attempt by attempt.
    const client = createClient(`ws://balancer.invalid/?room=${this.#rooms[this.#roomOf[slot]!]!}&c=${slot}`, {
      WebSocket: RoutedWebSocket as unknown as WebSocketClass,
      backoff: BACKOFF,
    });
    this.#berth[slot] = client;
    const stream = `room:${this.#rooms[this.#roomOf[slot]!]!}`;
    let ready = false;
    let wasOpen = false;
    client.on('state', (state) => {
      if (state === 'open') {
        wasOpen = true;
        if (!ready) {
          ready = true;
          opened();
        }
      }
      if (state === 'connecting' && this.#downAt > 0) this.#attempts++;
      if (state === 'reconnecting') {
        // From open: a drop. From an attempt: that attempt failed.
        if (wasOpen) this.#dropped(slot);
        else if (this.#downAt > 0) this.#failedAttempts++;
        wasOpen = false;
        this.#balancer.check(this.#at[slot]!);
      }
    });
    let lastOffset = -1;
    let lastEpoch = '';
    client.on('message', ({ stream: from, data, offset, epoch }) => {
      // BENCH_DEBUG: a stream offset seen again (or going back) is the server's duplicate, not the harness's.
      if (process.env.BENCH_DEBUG && epoch === lastEpoch && offset <= lastOffset) {
        this.#note(`client ${slot}: ${from} offset ${offset} after ${lastOffset}${this.#since()}`);
      }
      lastOffset = offset;
      lastEpoch = epoch;
      if (from !== stream || typeof data !== 'string') this.#malformed++;
      else this.#received(slot, data);
    });
    client.on('resumed', ({ recovered, reason }) => {
      if (!recovered) this.#note(`client ${slot} not recovered: ${reason ?? 'no reason'}`);
      this.#cameBack(slot, recovered);
    });
    client.on('lost', ({ stream: lost, reason }) => {
      this.#lostEvents++;
      this.#note(`client ${slot}: lost ${lost} (${reason})`);
    });
    client.on('error', ({ code, message }) => this.#note(`client ${slot}: server error ${code}: ${message}`));
  }

  #openSocketIo(slot: number, opened: () => void): void {
    const socket = io(this.#urlOf(slot, 'http'), {
      ...SOCKET_IO_OPTIONS,
      query: { room: this.#rooms[this.#roomOf[slot]!]!, c: String(slot) },
    });
    this.#socketio[slot] = socket;
    let ready = false;
    socket.on('connect', () => {
      if (!ready) {
        ready = true;
        opened();
        return;
      }
      if (!socket.recovered) this.#note(`client ${slot} not recovered`);
      this.#cameBack(slot, socket.recovered);
    });
    socket.on('disconnect', (reason) => {
      if (this.#drops[slot] === 0 && slot % 500 === 0) this.#note(`client ${slot}: disconnect ${reason}${this.#since()}`);
      this.#dropped(slot);
      this.#balancer.check(this.#at[slot]!);
    });
    socket.on('m', (data: unknown) => {
      if (typeof data !== 'string') this.#malformed++;
      else this.#received(slot, data);
    });
    // The Manager opens each attempt's Engine.IO connection on its `uri`: the balancer's choice for this attempt.
    socket.io.on('reconnect_attempt', () => {
      (socket.io as unknown as { uri: string }).uri = this.#urlOf(slot, 'http');
      if (this.#downAt > 0) this.#attempts++;
    });
    socket.on('connect_error', (error) => {
      if (this.#downAt > 0) {
        this.#failedAttempts++;
        this.#tally(`connect_error ${error.message}`);
      }
      this.#balancer.check(this.#at[slot]!);
      this.#note(`client ${slot}: connect_error ${error.message} on node ${this.#at[slot]! + 1}${this.#since()}`);
    });
  }

  #received(slot: number, data: string): void {
    const seq = seqOf(data);
    const publisher = Math.floor(seq / PUBLISHER_SPAN);
    const k = seq - publisher * PUBLISHER_SPAN;
    if (seq < 0 || publisher >= this.#publishers || k >= this.#messages) {
      this.#malformed++;
      return;
    }
    if (this.#watching[slot] === 1 && Number(data.slice(TIME_AT, TIME_END)) >= this.#backAt[slot]!) {
      this.#liveAt[slot] = wallNow();
      this.#watching[slot] = 0;
    }
    const line = slot * this.#publishers + publisher;
    const at = line * this.#messages + k;
    const count = this.#counts[at]!;
    if (count < 255) this.#counts[at] = count + 1;
    if (count > 0) {
      this.#duplicated++;
      if (process.env.BENCH_DEBUG && this.#duplicated <= 20) {
        const away = this.#backAt[slot]! > 0 ? ` (back at +${Math.round(this.#backAt[slot]! - this.#downAt)} ms)` : '';
        this.#note(
          `client ${slot} (home node ${this.#home[slot]! + 1}, on ${this.#at[slot]! + 1}) got node ${publisher + 1}'s ${k} again${this.#since()}${away}`,
        );
      }
      return;
    }
    if (k < this.#highest[line]!) this.#reordered++;
    else this.#highest[line] = k;
    if (k === this.#upTo[publisher]! - 1 && this.#need[slot]! > 0 && --this.#need[slot]! === 0 && ++this.#reached === this.size)
      this.#waiter?.();
  }

  #dropped(slot: number): void {
    this.#away[slot] = 1;
    if (this.#drops[slot]! < 65_535) this.#drops[slot]!++;
    this.#watching[slot] = 0;
  }

  #cameBack(slot: number, recovered: boolean): void {
    this.#away[slot] = 0;
    this.#backAt[slot] = wallNow();
    this.#recovered[slot] = recovered ? 1 : 0;
    this.#watching[slot] = 1;
    this.#countBack(slot);
  }

  #countBack(slot: number): void {
    if (this.#downAt === 0 || this.#home[slot] !== this.#downNode || this.#countedBack[slot] === 1) return;
    if (this.#away[slot] === 1 || !(this.#backAt[slot]! >= this.#downAt)) return;
    this.#countedBack[slot] = 1;
    this.#movedBack++;
    this.#waiter?.();
  }

  /** Resolves once every client has k = upTo[p] - 1 of every publisher p with upTo[p] > 0, or after `timeoutMs`. */
  waitReceived(upTo: readonly number[], timeoutMs: number): Promise<ClusterResumeReport> {
    this.#upTo = upTo;
    this.#reached = 0;
    for (let slot = 0; slot < this.size; slot++) {
      let need = 0;
      for (let p = 0; p < this.#publishers; p++) {
        const last = (upTo[p] ?? 0) - 1;
        if (last >= 0 && this.#counts[(slot * this.#publishers + p) * this.#messages + last] === 0) need++;
      }
      this.#need[slot] = need;
      if (need === 0) this.#reached++;
    }
    return this.#wait(() => this.#reached === this.size, timeoutMs);
  }

  /**
   * Node `node` went away at `at` (`drain`: is being shut down, and the balancer takes it out first):
   * resolves once every client whose home it was is back, or after `timeoutMs`.
   */
  waitBack(node: number, at: number, drain: boolean, timeoutMs: number): Promise<ClusterResumeReport> {
    if (drain) this.#balancer.drain(node);
    this.#downNode = node;
    this.#downAt = at;
    for (let slot = 0; slot < this.size; slot++) this.#countBack(slot);
    const moved = this.#moved();
    return this.#wait(() => this.#movedBack === moved, timeoutMs);
  }

  #moved(): number {
    let moved = 0;
    for (let slot = 0; slot < this.size; slot++) if (this.#home[slot] === this.#downNode) moved++;
    return moved;
  }

  #wait(done: () => boolean, timeoutMs: number): Promise<ClusterResumeReport> {
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

  /** What the clients have; publisher p's k = 0..bounds[p][room]-1 are checked (none without a bound). */
  report(bounds: readonly Readonly<Record<string, number>>[] = []): ClusterResumeReport {
    let missing = 0;
    let haveAll = 0;
    let recovered = 0;
    let strayDrops = 0;
    let lastBackAt = 0;
    const backMs: number[] = [];
    const liveMs: number[] = [];
    const highest = Array.from({ length: this.#publishers }, () => Object.fromEntries(this.#rooms.map((room) => [room, -1])));
    const missingBy = Array.from({ length: this.#publishers }, () => 0);
    for (let slot = 0; slot < this.size; slot++) {
      const room = this.#rooms[this.#roomOf[slot]!]!;
      let gaps = 0;
      for (let p = 0; p < this.#publishers; p++) {
        const line = slot * this.#publishers + p;
        highest[p]![room] = Math.max(highest[p]![room]!, this.#highest[line]!);
        const bound = bounds[p]?.[room] ?? 0;
        for (let k = 0; k < bound; k++) {
          if (this.#counts[line * this.#messages + k] === 0) {
            gaps++;
            missingBy[p]!++;
          }
        }
      }
      if (gaps > 0 && process.env.BENCH_DEBUG && missing < 2_000) this.#note(`client ${slot} (home ${this.#home[slot]}) misses ${gaps}`);
      missing += gaps;
      if (gaps === 0) haveAll++;
      if (this.#home[slot] === this.#downNode) {
        if (this.#countedBack[slot] === 1) {
          backMs.push(this.#backAt[slot]! - this.#downAt);
          lastBackAt = Math.max(lastBackAt, this.#backAt[slot]!);
          if (this.#recovered[slot] === 1) recovered++;
        }
        if (this.#liveAt[slot]! > this.#downAt) liveMs.push(this.#liveAt[slot]! - this.#downAt);
      } else if (this.#drops[slot]! > 0) strayDrops++;
    }
    const { user, system } = process.cpuUsage();
    return {
      clients: this.size,
      moved: this.#downNode === -1 ? 0 : this.#moved(),
      back: this.#movedBack,
      recovered,
      strayDrops,
      lastBackAt,
      backMs,
      liveMs,
      haveAll,
      reached: this.#reached,
      missing,
      missingBy,
      duplicated: this.#duplicated,
      reordered: this.#reordered,
      malformed: this.#malformed,
      lostEvents: this.#lostEvents,
      attempts: this.#attempts,
      failedAttempts: this.#failedAttempts,
      highest,
      firstErrors: [...[...this.#ends].map(([kind, count]) => `${count} × ${kind}`), ...this.#errors.slice(0, 10)],
      cpuUs: user + system,
    };
  }

  /** Closes every client for good. */
  closeAll(): void {
    for (const client of this.#berth) client?.close();
    for (const socket of this.#socketio) socket?.disconnect();
  }

  /** How the connections and attempts ended after the node went away, by kind (in the report's notes). */
  readonly #ends = new Map<string, number>();

  #tally(kind: string): void {
    this.#ends.set(kind, (this.#ends.get(kind) ?? 0) + 1);
  }

  /** ` at +N ms` after the node went away, for notes. */
  #since(): string {
    return this.#downAt === 0 ? '' : ` at +${Math.round(wallNow() - this.#downAt)} ms`;
  }

  #note(error: string): void {
    if (this.#errors.length < 50) this.#errors.push(error);
  }
}
