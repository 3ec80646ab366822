/**
 * An open ws connection as the runtime drives it: ws reads, answers pings and
 * runs the closing handshake, and reports to berth's sink; berth writes its
 * pre-built data frames onto the TCP socket itself.
 */
import type { Duplex } from 'node:stream';
import { WebSocket } from 'ws';
import { CloseCode } from '../close-codes.js';
import type { OutboxSocket } from '../../delivery/outbox.js';
import type { PeerDeflateParams } from '../../delivery/deflate.js';
import { deflateParamsOf, rawSocketOf, releaseInflate } from './ws-internals.js';

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
  /**
   * The transport's own subprotocol (`berth.v1`) if the handshake settled on it, else '': a raw
   * client, whatever other subprotocol the handshake echoed to it.
   */
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

/** The `code` of an `ERR_SOCKET` error's `cause` when ws terminated a peer that sent more pings than it read pongs (ws's `maxPendingAutoPongs`). */
export const PONG_FLOOD = 'ERR_PONG_FLOOD';
/** What the server gives ws as `maxPendingAutoPongs`. */
export const MAX_PENDING_AUTO_PONGS = 60;

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

/**
 * ws lets a server construct its own WebSocket subclass (the `WebSocket`
 * option). This one hands its events straight to berth's sink: no listener
 * closures and no listener table per connection.
 */
export class SinkWebSocket extends WebSocket {
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
        { code: PONG_FLOOD },
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
export class WsSocket implements TransportSocket {
  readonly #ws: SinkWebSocket;
  readonly #socket: Duplex;
  readonly protocol: string;
  readonly deflate: PeerDeflateParams | undefined;

  /** `ownProtocol` is the subprotocol berth speaks: the socket's `protocol` is it, or ''. */
  constructor(ws: SinkWebSocket, ownProtocol: string) {
    this.#ws = ws;
    this.#socket = rawSocketOf(ws);
    // Another subprotocol the handshake echoed (a raw client's `chat`) means nothing to the runtime.
    this.protocol = ws.protocol === ownProtocol ? ownProtocol : '';
    this.deflate = deflateParamsOf(ws);
  }

  get isOpen(): boolean {
    return this.#ws.readyState === 1;
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
