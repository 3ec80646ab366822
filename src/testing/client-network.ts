/**
 * The network a scenario's `berth/client` client runs over: a WebSocket
 * class the client is given (`createClient(url, { WebSocket })`) whose every
 * socket is a `ws` connection to the server under test, over loopback TCP or
 * in memory. The scenario can drop the connection (no close frame), keep the
 * network down so that the client's reconnects wait, bring it back, and hold
 * what the client writes until a concurrent group's order lets it go.
 */
import type WebSocket from 'ws';

/** Opens a `ws` connection to the server for one socket of the client, in the subprotocols it asks for; `tag` names it. */
export type Dial = (protocols: readonly string[]) => { readonly ws: WebSocket; readonly tag: string };

/** What the network tells its client's driver. */
export interface NetworkEvents {
  /** A socket of the client started connecting, as `tag`. */
  dialled(tag: string): void;
  /** The client wrote a frame on the connection `tag` (held or not). */
  wrote(tag: string, frame: string | Uint8Array): void;
  /** Anything changed that a step may be waiting for. */
  changed(): void;
}

const CONNECTING = 0;
const OPEN = 1;
const CLOSED = 3;

/** The class a client creates its sockets with: what `createClient` takes as `WebSocket`. */
export type NetworkSocketClass = new (url: string, protocols: string[]) => NetworkSocket;

export class ClientNetwork {
  /** The class to give `createClient` as its `WebSocket`. */
  readonly WebSocket: NetworkSocketClass;
  readonly #dial: Dial;
  readonly #events: NetworkEvents;
  #down = false;
  /** While true, what the client writes waits in its socket until `release`. */
  #holding = false;
  /** The socket the client opened last. */
  #current: NetworkSocket | undefined;

  constructor(dial: Dial, events: NetworkEvents) {
    this.#dial = dial;
    this.#events = events;
    this.WebSocket = socketClass(this);
  }

  /** True after `drop`, until `up`. */
  get down(): boolean {
    return this.#down;
  }

  /** True after `up(true)`, until `release`. */
  get holding(): boolean {
    return this.#holding;
  }

  /** The connection the client has now, if it is connected. */
  get tag(): string | undefined {
    return this.#current?.tag;
  }

  /** Frames the client wrote that wait for `release`. */
  get held(): number {
    return this.#current?.held?.length ?? 0;
  }

  /** Drops the client's connection without a close frame; its reconnects wait until `up`. False if it had none open. */
  drop(): boolean {
    this.#down = true;
    return this.#current?.drop() ?? false;
  }

  /** Cuts the client's connection without a close frame, the network staying up: it reconnects at once. False if it had none open. */
  cut(): boolean {
    return this.#current?.drop() ?? false;
  }

  /** The network is back: a waiting reconnect goes through. With `hold`, what the client then writes waits for `release`. */
  up(hold: boolean): void {
    this.#down = false;
    this.#holding = hold;
    const socket = this.#current;
    if (socket !== undefined && socket.readyState === CONNECTING && !socket.dialled) this.connect(socket);
  }

  /** Writes what was held, in order, and stops holding. */
  release(): void {
    this.#holding = false;
    this.#current?.release();
  }

  /** Ends every socket at once (the run is over). */
  terminate(): void {
    this.#current?.terminate();
  }

  /** Called by a socket the client creates. */
  opened(socket: NetworkSocket): void {
    this.#current = socket;
    if (!this.#down) this.connect(socket);
  }

  connect(socket: NetworkSocket): void {
    const { ws, tag } = this.#dial(socket.protocols);
    socket.wire(ws, tag, this.#holding);
    this.#events.dialled(tag);
  }

  get events(): NetworkEvents {
    return this.#events;
  }
}

/** A WebSocket class whose sockets all go over `network`. */
function socketClass(network: ClientNetwork): NetworkSocketClass {
  return class extends NetworkSocket {
    constructor(_url: string, protocols: string[]) {
      super(network, protocols);
    }
  };
}

/**
 * One socket of the client: the shape of a browser's WebSocket (what
 * berth/client needs of one) over a `ws` connection, or over none yet while
 * the network is down.
 */
export class NetworkSocket {
  binaryType = 'arraybuffer';
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  readonly protocols: readonly string[];
  tag: string | undefined;
  /** Frames written while the network holds them. */
  held: Array<string | Uint8Array> | undefined;
  readonly #network: ClientNetwork;
  #ws: WebSocket | undefined;
  /** Closed before it ever reached the server. */
  #abandoned = false;

  constructor(network: ClientNetwork, protocols: string[]) {
    this.#network = network;
    this.protocols = [...protocols];
    network.opened(this);
  }

  get dialled(): boolean {
    return this.#ws !== undefined;
  }

  get readyState(): number {
    if (this.#abandoned) return CLOSED;
    return this.#ws?.readyState ?? CONNECTING;
  }

  wire(ws: WebSocket, tag: string, hold: boolean): void {
    this.#ws = ws;
    this.tag = tag;
    if (hold) this.held = [];
    ws.on('open', () => this.onopen?.({}));
    ws.on('message', (data: Buffer, binary: boolean) => {
      // What a browser's WebSocket with binaryType 'arraybuffer' hands over: a string, or an ArrayBuffer.
      const event = binary ? data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) : data.toString('utf8');
      this.onmessage?.({ data: event });
    });
    ws.on('close', (code: number, reason: Buffer) => {
      this.onclose?.({ code, reason: reason.toString() });
      this.#network.events.changed();
    });
    ws.on('error', (error) => this.onerror?.(error));
  }

  send(data: string | Uint8Array): void {
    if (this.held !== undefined) this.held.push(data);
    else this.#ws?.send(data);
    if (this.tag !== undefined) this.#network.events.wrote(this.tag, data);
  }

  /** Writes what was held. */
  release(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const data of held) if (this.#ws?.readyState === OPEN) this.#ws.send(data);
  }

  close(code?: number, reason?: string): void {
    if (this.#ws !== undefined) this.#ws.close(code, reason);
    else this.#abandon();
  }

  /** What the client calls when it gives up waiting for a close: the socket goes at once. */
  terminate(): void {
    if (this.#ws !== undefined) this.#ws.terminate();
    else this.#abandon();
  }

  /** Destroys the TCP (or in-memory) connection under the WebSocket: no close frame either way. */
  drop(): boolean {
    const socket = (this.#ws as unknown as { _socket?: { destroy(): void } } | undefined)?._socket;
    if (socket === undefined) return false;
    socket.destroy();
    return true;
  }

  /** A browser's WebSocket closed before it connected: 1006, after the current task. */
  #abandon(): void {
    if (this.#abandoned) return;
    this.#abandoned = true;
    queueMicrotask(() => {
      this.onclose?.({ code: 1006, reason: '' });
      this.#network.events.changed();
    });
  }
}
