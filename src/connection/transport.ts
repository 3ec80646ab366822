/**
 * The transport: turns HTTP upgrades into sockets the runtime drives through
 * `TransportSocket`, and answers refused upgrades with plain HTTP before any
 * WebSocket handshake. With the files of `transport/` (the socket, the HTTP
 * server, permessage-deflate, ws's private fields), the only code of the
 * runtime that imports `ws`.
 */
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type ServerOptions, type Server as WsServer } from 'ws';
import { Refusal } from './admission.js';
import type { CompressionSettings } from '../delivery/deflate.js';
import { chooseSubprotocol } from '../protocol/v1.js';
import { deflateOption, limitOffer } from './transport/deflate-offer.js';
import { refuseUpgrade, standaloneServer } from './transport/http.js';
import { MAX_PENDING_AUTO_PONGS, SinkWebSocket, WsSocket, type SocketSink, type TransportSocket } from './transport/socket.js';

export type { SocketSink, TransportSocket };

/** What the transport needs from the runtime. */
export interface TransportHooks<Grant> {
  /** Decides an upgrade; may be async (authentication). The request's socket is held meanwhile. */
  admit(request: http.IncomingMessage): Grant | Refusal | Promise<Grant | Refusal>;
  /** A socket completed its handshake; returns the sink that will receive its events. */
  open(socket: TransportSocket, request: http.IncomingMessage, grant: Grant): SocketSink;
  /** `authenticate` or another admission step threw. */
  admissionFailed(error: unknown, request: http.IncomingMessage): void;
}

export interface TransportOptions {
  port?: number | undefined;
  host?: string | undefined;
  server?: http.Server | undefined;
  path?: string | undefined;
  maxPayload: number;
  /** How long ws waits for the peer to end its TCP side after the closing handshake. */
  closeTimeoutMs: number;
  /** How long berth's own server waits for an upgrade request's headers. */
  handshakeTimeoutMs: number;
  /** The subprotocol chosen whenever a client offers it; a socket's `protocol` is it or ''. */
  protocol: string;
  /** permessage-deflate, when on (`deflateOption`). */
  compression: CompressionSettings | undefined;
}

/** How long a paced socket may take to finish its closing handshake. */
const PACED_CLOSE_MS = 1000;

/**
 * Accepts upgrades on a standalone port or on an existing server, through
 * the runtime's admission hook, and hands open sockets to the runtime.
 */
export class Transport<Grant> {
  readonly #wss: WsServer<typeof SinkWebSocket>;
  readonly #hooks: TransportHooks<Grant>;
  readonly #options: TransportOptions;
  /** Ours (standalone `port`), the application's (`server`), or none (it calls `handleUpgrade`). */
  readonly #server: http.Server | undefined;
  readonly #ownsServer: boolean;
  /** Upgrades admitted or being decided whose handshake has not completed. */
  #pending = 0;
  readonly #pendingSockets = new Set<Duplex>();
  readonly listening: Promise<void>;

  constructor(options: TransportOptions, hooks: TransportHooks<Grant>) {
    this.#options = options;
    this.#hooks = hooks;
    // `closeTimeout` and `maxPendingAutoPongs` are ws 8 options its typings do not list yet.
    const serverOptions: ServerOptions & { closeTimeout: number; maxPendingAutoPongs: number } = {
      WebSocket: SinkWebSocket,
      noServer: true,
      clientTracking: false,
      perMessageDeflate: deflateOption(options.compression),
      maxPayload: options.maxPayload,
      // One close timeout governs: the documented closeTimeoutMs, not ws's own 30 s.
      closeTimeout: options.closeTimeoutMs,
      maxPendingAutoPongs: MAX_PENDING_AUTO_PONGS,
      handleProtocols: (offered) => chooseSubprotocol(offered, options.protocol),
    };
    this.#wss = new WebSocketServer(serverOptions) as WsServer<typeof SinkWebSocket>;
    this.#ownsServer = options.port !== undefined;
    this.listening = Promise.resolve();
    if (options.port !== undefined) {
      const { server, listening } = standaloneServer({
        port: options.port,
        host: options.host,
        handshakeTimeoutMs: options.handshakeTimeoutMs,
      });
      this.#server = server;
      this.listening = listening;
    } else {
      this.#server = options.server;
    }
    this.#server?.on('upgrade', this.handleUpgrade);
  }

  /** Upgrades whose handshake has not completed yet; they count against `maxConnections`. */
  get pending(): number {
    return this.#pending;
  }

  /** Handles one upgrade request; bound so it can be passed to a server's `upgrade` event. */
  readonly handleUpgrade = (request: http.IncomingMessage, socket: Duplex, head: Buffer): void => {
    if (!this.#matchesPath(request)) {
      // Another upgrade handler on a shared server may own this path; a caller of handleUpgrade gets an answer.
      if (this.#server === undefined || this.#server.listenerCount('upgrade') <= 1) {
        refuseUpgrade(socket, new Refusal(400, 'unknown WebSocket path'));
      }
      return;
    }
    this.#pending++;
    this.#pendingSockets.add(socket);
    let settled = false;
    const settle = () => {
      if (settled) return;
      settled = true;
      this.#pending--;
      this.#pendingSockets.delete(socket);
    };
    // Until ws takes over, an error on the raw socket must not crash the process.
    const onEarlyError = () => socket.destroy();
    socket.on('error', onEarlyError);
    socket.once('close', settle);
    // ws has the socket now: nothing of the upgrade (request, head, these closures) stays reachable from it.
    const handedOver = () => {
      settle();
      socket.off('error', onEarlyError);
      socket.off('close', settle);
    };

    const decide = (decision: Grant | Refusal) => {
      if (socket.destroyed) return settle();
      if (decision instanceof Refusal) {
        if (decision.pace !== undefined && this.#offersProtocol(request)) {
          this.#pace(request, socket, head, decision.pace, handedOver);
          return;
        }
        settle();
        refuseUpgrade(socket, decision);
        return;
      }
      limitOffer(request, this.#options.compression);
      this.#wss.handleUpgrade(request, socket, head, (ws) => {
        handedOver();
        ws.sink = this.#hooks.open(new WsSocket(ws, this.#options.protocol), request, decision);
      });
    };
    const fail = (error: unknown) => {
      settle();
      this.#hooks.admissionFailed(error, request);
      refuseUpgrade(socket, new Refusal(500, 'admission failed'));
    };

    let decision: Grant | Refusal | Promise<Grant | Refusal>;
    try {
      decision = this.#hooks.admit(request);
    } catch (error) {
      fail(error);
      return;
    }
    if (decision instanceof Promise) decision.then(decide, fail);
    else decide(decision);
  };

  /** Address of the standalone server, or of the attached one. */
  address(): ReturnType<http.Server['address']> {
    return this.#server?.address() ?? null;
  }

  /** Stops listening for upgrades; refuses handshakes still waiting for admission; closes an owned server. */
  async close(): Promise<void> {
    const server = this.#server;
    server?.off('upgrade', this.handleUpgrade);
    for (const socket of this.#pendingSockets) socket.destroy();
    if (server !== undefined && this.#ownsServer) {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    }
  }

  /** Whether the client offered berth's own subprotocol. */
  #offersProtocol(request: http.IncomingMessage): boolean {
    const offered = request.headers['sec-websocket-protocol'];
    return offered !== undefined && offered.split(',').some((name) => name.trim() === this.#options.protocol);
  }

  /**
   * Completes the handshake and closes at once with `pace.code` and
   * `retry-after=<seconds>`: the refusal, in a form a browser can read. The
   * socket is never handed to the runtime.
   */
  #pace(request: http.IncomingMessage, socket: Duplex, head: Buffer, pace: NonNullable<Refusal['pace']>, handedOver: () => void): void {
    this.#wss.handleUpgrade(request, socket, head, (ws) => {
      handedOver();
      // No sink: an error on the way out (the peer gone already) is nobody's news.
      ws.on('error', () => {});
      ws.close(pace.code, `retry-after=${pace.retryAfterSeconds}`);
      // A peer that never answers the close must not hold a socket the server is too full to give: a second at most.
      const cut = setTimeout(() => ws.terminate(), PACED_CLOSE_MS).unref();
      ws.once('close', () => clearTimeout(cut));
    });
  }

  #matchesPath(request: http.IncomingMessage): boolean {
    const path = this.#options.path;
    if (path === undefined) return true;
    const url = request.url ?? '/';
    const query = url.indexOf('?');
    return (query === -1 ? url : url.slice(0, query)) === path;
  }
}
