/**
 * The only file that imports `ws`. It turns HTTP upgrades into sockets the
 * runtime drives through `TransportSocket`, and answers refused upgrades with
 * plain HTTP before any WebSocket handshake.
 */
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type ServerOptions, type Server as WsServer } from 'ws';
import { Refusal } from './admission.js';
import { CloseCode } from './close-codes.js';
import type { OutboxSocket } from '../delivery/outbox.js';
import type { CompressionSettings, PeerDeflateParams } from '../delivery/deflate.js';

/** Where a socket reports what happened on it. */
export interface SocketSink {
  message(data: string | Buffer, binary: boolean): void;
  pong(): void;
  /** The socket is fully closed; `code`/`reason` are from the peer's close frame, or 1006 and ''. */
  closed(code: number, reason: string): void;
  /** The transport failed; `closeCode` is what was sent to the peer, or 1006 if nothing could be. */
  error(error: Error, closeCode: number): void;
}

/** What the runtime may do with an open socket. */
export interface TransportSocket extends OutboxSocket {
  /** The subprotocol the handshake settled on, or '' for none. */
  readonly protocol: string;
  /**
   * What this peer's permessage-deflate settled for the server's side, if it negotiated the extension;
   * undefined if it did not (or limited the server to 8 bits, which zlib's raw deflate cannot make).
   */
  readonly deflate: PeerDeflateParams | undefined;
  /** Starts the closing handshake after everything already written; no-op unless open. */
  close(code: number, reason: string): void;
  /** Destroys the socket now. */
  terminate(): void;
  ping(): void;
}

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
  /** The subprotocol chosen whenever a client offers it. */
  protocol: string;
  /**
   * permessage-deflate, when on: offers are accepted with `client_no_context_takeover`, and with
   * `server_no_context_takeover` when targets share no contexts (`contexts: 0`) or the client asks.
   */
  compression: CompressionSettings | undefined;
}

/** The accept queue of a server berth listens on itself. */
const LISTEN_BACKLOG = 4096;

/** ws's own termination of a peer that sent more pings than it read pongs; its limit is ws's `maxPendingAutoPongs`. */
export const PONG_FLOOD = 'BERTH_ERR_PONG_FLOOD';
const MAX_PENDING_AUTO_PONGS = 60;
/** How long a paced socket may take to finish its closing handshake. */
const PACED_CLOSE_MS = 1000;

/**
 * ws reports protocol errors with a code; this is the close code it sent for
 * each (ws's receiver.js). Anything else ended the socket without a frame.
 */
const closeCodeOfWsError: Record<string, number> = {
  WS_ERR_INVALID_UTF8: CloseCode.INVALID_PAYLOAD,
  WS_ERR_UNSUPPORTED_MESSAGE_LENGTH: CloseCode.MESSAGE_TOO_BIG,
  WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH: CloseCode.MESSAGE_TOO_BIG,
  WS_ERR_TOO_MANY_BUFFERED_PARTS: CloseCode.POLICY_VIOLATION,
};

function closeCodeOf(error: Error & { code?: unknown }): number {
  const code = typeof error.code === 'string' ? error.code : '';
  if (code in closeCodeOfWsError) return closeCodeOfWsError[code]!;
  return code.startsWith('WS_ERR_') ? CloseCode.PROTOCOL_ERROR : CloseCode.ABNORMAL;
}

/** ws keeps the TCP socket it frames onto here; `ws` is pinned to ^8, where this holds. */
function rawSocketOf(ws: WebSocket): Duplex {
  const socket = (ws as unknown as { _socket?: Duplex })._socket;
  if (socket === undefined || typeof socket.write !== 'function' || typeof socket.cork !== 'function') {
    throw new Error('berth: this version of ws does not expose its socket; berth needs ws ^8');
  }
  return socket;
}

interface ServerSideParams {
  server_max_window_bits?: number;
  server_no_context_takeover?: boolean;
}

/**
 * What a peer that negotiated permessage-deflate settled for the server's side (read from ws's
 * extension, `_extensions`, as ws 8 keeps it): the window berth may compress with, the peer's
 * `server_max_window_bits`, else 15; and whether the peer keeps its inflate context between messages.
 * A peer that allowed only 8 bits gets plain frames: zlib's raw deflate makes windows of 9 bits at least.
 */
function deflateParamsOf(ws: WebSocket): PeerDeflateParams | undefined {
  const extensions = (ws as unknown as { _extensions?: Record<string, { params?: ServerSideParams }> })._extensions;
  const params = extensions?.['permessage-deflate']?.params;
  if (params === undefined) return undefined;
  const windowBits = params.server_max_window_bits ?? 15;
  return windowBits >= 9 ? { windowBits, contextTakeover: params.server_no_context_takeover !== true } : undefined;
}

interface InflatingExtension {
  params?: { client_no_context_takeover?: boolean };
  _inflate?: { close(): void } | null;
}

/**
 * Frees the inflate context of a peer's compressed message once the message is whole. berth answers
 * every offer with `client_no_context_takeover` (RFC 7692 §7.1.1.2 lets a server ask it of every
 * client), so no message depends on an earlier one and the context need not outlive it: a connection
 * keeps no inflate memory (window, zlib's state, a 16 KiB output buffer) between messages, where ws
 * would keep it for the connection's life. ws makes a new one for the next compressed message.
 */
function releaseInflate(ws: WebSocket): void {
  const extension = (ws as unknown as { _extensions?: Record<string, InflatingExtension> })._extensions?.['permessage-deflate'];
  if (extension?._inflate == null || extension.params?.client_no_context_takeover !== true) return;
  extension._inflate.close();
  extension._inflate = null;
}

/**
 * Lowers the `client_max_window_bits` a permessage-deflate offer lets the server choose to `bits` (RFC
 * 7692 §7.1.2.2: only an offer that carries the parameter may be answered with it). ws would answer
 * a fixed number only to such offers and refuse the handshake of any other, so the offer is
 * rewritten before ws reads it, and offers without the parameter are left as they are.
 */
export function limitClientWindow(header: string, bits: number): string {
  return header
    .split(',')
    .map((offer) =>
      /^\s*permessage-deflate\b/i.test(offer)
        ? offer.replace(
            /\bclient_max_window_bits\b(\s*=\s*"?(\d+)"?)?/i,
            (_whole, _value, given: string | undefined) =>
              `client_max_window_bits=${Math.min(bits, given === undefined ? 15 : Number(given))}`,
          )
        : offer,
    )
    .join(',');
}

/**
 * ws lets a server construct its own WebSocket subclass (the `WebSocket`
 * option). This one hands its events straight to berth's sink: no listener
 * closures and no listener table per connection.
 */
class SinkWebSocket extends WebSocket {
  sink: SocketSink | undefined;
  /** Set when berth itself terminates the socket; any other `terminate()` is ws's own doing. */
  terminatedByBerth = false;

  /**
   * ws terminates a socket itself in one case: more than `maxPendingAutoPongs`
   * of its pongs wait to be written (the peer floods pings, or does not read
   * what they answer). That is the peer's failure, not a plain drop: it is
   * reported as a socket error (nothing could be sent, so 1006) before the
   * socket's close.
   */
  override terminate(): void {
    const sink = this.sink;
    if (!this.terminatedByBerth && sink !== undefined && this.readyState === WebSocket.OPEN) {
      const error = Object.assign(
        new Error(`the peer sent pings faster than their pongs could be written (more than ${MAX_PENDING_AUTO_PONGS} pending)`),
        {
          code: PONG_FLOOD,
        },
      );
      sink.error(error, CloseCode.ABNORMAL);
    }
    super.terminate();
  }

  override emit(event: string | symbol, ...args: unknown[]): boolean {
    const sink = this.sink;
    if (sink === undefined) {
      // Nothing is attached before the handshake completes; an early error must not throw.
      return event === 'error' ? false : super.emit(event, ...args);
    }
    switch (event) {
      case 'message': {
        // Default binaryType delivers one Buffer per message.
        const [data, binary] = args as [Buffer, boolean];
        releaseInflate(this);
        sink.message(binary ? data : data.toString('utf8'), binary);
        return true;
      }
      case 'pong':
        sink.pong();
        return true;
      case 'error': {
        const error = args[0] as Error;
        sink.error(error, closeCodeOf(error));
        return true;
      }
      case 'close':
        sink.closed(args[0] as number, (args[1] as Buffer).toString('utf8'));
        return true;
      default:
        return super.emit(event, ...args);
    }
  }
}

/**
 * A ws connection whose data frames berth writes itself: frames come
 * pre-built (once per broadcast, shared by every recipient) and go straight
 * onto the TCP socket, several per write. ws still reads, answers pings and
 * runs the closing handshake; its frames are written whole and synchronously
 * (no compression), so they never split one of ours.
 */
class WsSocket implements TransportSocket {
  readonly #ws: SinkWebSocket;
  readonly #socket: Duplex;
  readonly deflate: PeerDeflateParams | undefined;

  constructor(ws: SinkWebSocket) {
    this.#ws = ws;
    this.#socket = rawSocketOf(ws);
    this.deflate = deflateParamsOf(ws);
  }

  get isOpen(): boolean {
    return this.#ws.readyState === 1;
  }

  get protocol(): string {
    return this.#ws.protocol;
  }

  get writableLength(): number {
    return this.#socket.writableLength;
  }

  write(chunks: readonly Uint8Array[], done: (error?: Error | null) => void): void {
    const socket = this.#socket;
    const last = chunks.length - 1;
    if (last === 0) {
      socket.write(chunks[0]!, done);
      return;
    }
    // Corked, the chunks leave in one writev.
    socket.cork();
    for (let i = 0; i < last; i++) socket.write(chunks[i]!);
    socket.write(chunks[last]!, done);
    socket.uncork();
  }

  onceDrain(listener: () => void): void {
    this.#socket.once('drain', listener);
  }

  close(code: number, reason: string): void {
    if (this.isOpen) this.#ws.close(code, reason);
  }

  terminate(): void {
    this.#ws.terminatedByBerth = true;
    this.#ws.terminate();
  }

  ping(): void {
    if (this.isOpen) this.#ws.ping();
  }
}

/** Writes a complete HTTP response on a raw upgrade socket and closes it. */
export function refuseUpgrade(socket: Duplex, refusal: Refusal): void {
  if (socket.destroyed) return;
  const body = `${refusal.reason}\n`;
  const headers: Record<string, string | number> = {
    Connection: 'close',
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    ...refusal.headers,
  };
  const head = Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}`)
    .join('\r\n');
  socket.once('finish', () => socket.destroy());
  socket.end(`HTTP/1.1 ${refusal.status} ${http.STATUS_CODES[refusal.status] ?? ''}\r\n${head}\r\n\r\n${body}`);
}

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
      // ws negotiates and inflates what clients send; berth compresses what it sends itself, once per message.
      perMessageDeflate:
        options.compression === undefined
          ? false
          : {
              // With shared contexts, a client that asks for server_no_context_takeover gets it and the rest
              // keep their inflate context (ws answers as the client asked); without, everyone gets it.
              ...(options.compression.contexts === 0 && { serverNoContextTakeover: true }),
              // So that the inflate context of a client's message can be freed once it is whole (`releaseInflate`).
              clientNoContextTakeover: true,
              // Never used: berth writes its data frames itself; ws's own are control frames.
              threshold: Number.MAX_SAFE_INTEGER,
            },
      maxPayload: options.maxPayload,
      // One close timeout governs: the documented closeTimeoutMs, not ws's own 30 s.
      closeTimeout: options.closeTimeoutMs,
      maxPendingAutoPongs: MAX_PENDING_AUTO_PONGS,
      // berth's own protocol when offered; otherwise ws's choice, the first offered, as before it existed.
      handleProtocols: (offered) => (offered.has(options.protocol) ? options.protocol : (offered.values().next().value ?? false)),
    };
    this.#wss = new WebSocketServer(serverOptions) as WsServer<typeof SinkWebSocket>;
    this.#ownsServer = options.port !== undefined;
    this.listening = Promise.resolve();
    if (options.port !== undefined) {
      // A request whose headers have not arrived within handshakeTimeoutMs is answered 408 and
      // closed (Node's defaults keep it 60–90 s); the check runs every quarter of it.
      const timeout = options.handshakeTimeoutMs;
      const serverTimeouts = {
        headersTimeout: timeout,
        requestTimeout: timeout,
        connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.round(timeout / 4))),
      };
      const server = http.createServer(serverTimeouts, (_request, response) => {
        response.writeHead(426, { 'Content-Type': 'text/plain; charset=utf-8', Upgrade: 'websocket' });
        response.end('This endpoint speaks WebSocket.\n');
      });
      this.listening = new Promise((resolve, reject) => {
        server.once('error', reject);
        // A deep accept queue (the kernel caps it at net.core.somaxconn): when every client of a
        // dropped network comes back at once, their handshakes wait in it instead of being lost
        // (Node's default is 511), which leaves a client waiting for TCP to retransmit.
        server.listen({ port: options.port, host: options.host, backlog: LISTEN_BACKLOG }, () => {
          server.off('error', reject);
          resolve();
        });
      });
      this.#server = server;
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

    const decide = (decision: Grant | Refusal) => {
      if (socket.destroyed) return settle();
      if (decision instanceof Refusal) {
        if (decision.pace !== undefined && this.#offersProtocol(request)) {
          this.#pace(request, socket, head, decision.pace, settle, onEarlyError);
          return;
        }
        settle();
        refuseUpgrade(socket, decision);
        return;
      }
      const offer = request.headers['sec-websocket-extensions'];
      const compression = this.#options.compression;
      if (compression !== undefined && compression.inboundWindowBits < 15 && offer !== undefined) {
        request.headers['sec-websocket-extensions'] = limitClientWindow(offer, compression.inboundWindowBits);
      }
      this.#wss.handleUpgrade(request, socket, head, (ws) => {
        settle();
        socket.off('error', onEarlyError);
        // Nothing of the upgrade (request, head, these closures) stays reachable from the socket.
        socket.off('close', settle);
        const transportSocket = new WsSocket(ws);
        ws.sink = this.#hooks.open(transportSocket, request, decision);
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
  #pace(
    request: http.IncomingMessage,
    socket: Duplex,
    head: Buffer,
    pace: NonNullable<Refusal['pace']>,
    settle: () => void,
    onEarlyError: () => void,
  ): void {
    this.#wss.handleUpgrade(request, socket, head, (ws) => {
      settle();
      socket.off('error', onEarlyError);
      socket.off('close', settle);
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
