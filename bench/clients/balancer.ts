/**
 * The load balancer in front of a cluster's nodes as cluster-resume's clients
 * see it: each client has a home node and connects there while it is up; a
 * node found down sends its clients round-robin to the nodes still up. A
 * node is found down as a load balancer's health check finds it: a TCP
 * connection to it that fails (refused, reset, or not connected within
 * `CHECK_TIMEOUT_MS`). The check runs when one of the clients' connections
 * to a node ends or fails (at most one check per node at a time), so it
 * costs nothing while the cluster is quiet; a deploy takes a node out
 * before it shuts down (`drain`), as an orchestrator tells its load
 * balancer. berth/client and socket.io-client consult the same balancer
 * before every connection attempt, so the two systems are routed alike.
 */
import { connect } from 'node:net';
import { WebSocket } from 'ws';
import { HOST } from '../protocol.js';

const CHECK_TIMEOUT_MS = 2_000;

export class Balancer {
  readonly #ports: readonly number[];
  readonly #down: boolean[];
  readonly #checking: boolean[];
  readonly #drained: boolean[];
  #next = 0;

  constructor(ports: readonly number[]) {
    this.#ports = ports;
    this.#down = ports.map(() => false);
    this.#checking = ports.map(() => false);
    this.#drained = ports.map(() => false);
  }

  /** The node a client whose home is `home` connects to now. */
  route(home: number): number {
    if (!this.#down[home]) return home;
    const up: number[] = [];
    for (let node = 0; node < this.#ports.length; node++) if (!this.#down[node]) up.push(node);
    if (up.length === 0) return home;
    return up[this.#next++ % up.length]!;
  }

  port(node: number): number {
    return this.#ports[node]!;
  }

  /** Takes `node` out for good: it is being shut down. */
  drain(node: number): void {
    this.#drained[node] = true;
    this.#down[node] = true;
  }

  /** A connection to `node` ended or failed: is the node still there? */
  check(node: number): void {
    if (this.#checking[node] || this.#drained[node]) return;
    this.#checking[node] = true;
    const socket = connect(this.#ports[node]!, HOST);
    const done = (down: boolean) => {
      if (!this.#checking[node]) return;
      clearTimeout(timer);
      this.#down[node] = down || this.#drained[node]!;
      this.#checking[node] = false;
      socket.destroy();
    };
    const timer = setTimeout(() => done(true), CHECK_TIMEOUT_MS);
    socket.once('connect', () => done(false));
    socket.once('error', () => done(true));
  }
}

/** Set by the clients of this process: where a berth/client attempt connects, and what to tell of how its socket ended. */
let router: ((url: string) => string) | undefined;
let ended: ((kind: string) => void) | undefined;

export function routeWebSockets(route: (url: string) => string, end: (kind: string) => void): void {
  router = route;
  ended = end;
}

/** `ws`'s WebSocket, connecting where the router says (berth/client opens one per attempt). */
export class RoutedWebSocket extends WebSocket {
  constructor(url: string, protocols: string[]) {
    super(router === undefined ? url : router(url), protocols);
    let open = false;
    this.once('open', () => (open = true));
    this.once('error', (error: NodeJS.ErrnoException) => ended?.(`socket error ${error.code ?? error.message}`));
    this.once('close', (code: number, reason: Buffer) => ended?.(`${open ? 'close' : 'close before open'} ${code} ${reason.toString()}`));
  }
}
