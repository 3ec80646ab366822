/**
 * A minimal WebSocket client (RFC 6455) over a raw TCP socket, for holding
 * 10 000 connections in one process and reading millions of frames without
 * allocating per frame:
 *
 * - every socket reads into one shared buffer (`onread`), which is fully
 *   parsed before the next read, so no chunk is allocated or copied;
 * - a data message is never assembled: the parser keeps its first
 *   `PREFIX_BYTES` (enough for the sequence number and send time, behind
 *   Socket.IO's packet prefix or berth.v1's message header) and counts the rest, so a 1 MB message costs
 *   a 64-byte copy instead of a 1 MB buffer per connection;
 * - frames the client sends are built (and masked, as clients must) once.
 *
 * It speaks just what the benchmark needs: the upgrade, unfragmented or
 * fragmented data frames, ping/pong, the closing handshake and, when asked,
 * permessage-deflate (inflate.ts): a compressed message (RSV1) is either
 * inflated whole, then read as a plain one, or only counted. The same client
 * serves all three systems; Socket.IO's Engine.IO layer sits on top of it
 * (socketio-dialect.ts).
 */
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { HOST } from '../protocol.js';
import { DEFLATE_OFFER, MessageInflater, parseAnswer } from './inflate.js';

/** Bytes of each data message kept for the reader. */
export const PREFIX_BYTES = 128;

const KEY = randomBytes(16).toString('base64');
const ACCEPT = createHash('sha1').update(`${KEY}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64').toLowerCase();
const MASK = randomBytes(4);
const OPCODE_TEXT = 0x1;
const OPCODE_CLOSE = 0x8;
const OPCODE_PING = 0x9;
const OPCODE_PONG = 0xa;

/** Server pings answered by every connection of this process (idle-heartbeat counts its cycles with it). */
export const pingsAnswered = { count: 0 };
/** Bytes every connection of this process has read from its socket, handshakes included (reset by the owner). */
export const wireBytes = { count: 0 };

/** Encodes one masked client frame. */
export function clientFrame(opcode: number, payload: Uint8Array): Buffer {
  const length = payload.length;
  const extended = length < 126 ? 0 : length < 65536 ? 2 : 8;
  const frame = Buffer.allocUnsafe(2 + extended + 4 + length);
  frame[0] = 0x80 | opcode;
  if (extended === 0) frame[1] = 0x80 | length;
  else if (extended === 2) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  const maskAt = 2 + extended;
  MASK.copy(frame, maskAt);
  for (let i = 0; i < length; i++) frame[maskAt + 4 + i] = payload[i]! ^ MASK[i & 3]!;
  return frame;
}

export const textFrame = (text: string): Buffer => clientFrame(OPCODE_TEXT, Buffer.from(text));
const CLOSE_NORMAL = clientFrame(OPCODE_CLOSE, Buffer.from([0x03, 0xe8])); // 1000

/** What a connection reports to its owner; one handler object serves every connection. */
export interface WireHandler {
  /** The server accepted the upgrade. */
  upgraded(connection: WireConnection): void;
  /**
   * A complete data message of `length` bytes; its first bytes are in `connection.prefix`, and
   * all of them in `connection.inflated` if it came compressed and was inflated.
   */
  message(connection: WireConnection, length: number, now: number): void;
  /** A complete compressed message on a connection that only counts them (needed with `compression: 'count'`). */
  counted?(connection: WireConnection, now: number): void;
  /** The socket is gone (exactly once); `error` unless it closed cleanly. */
  closed(connection: WireConnection, error: Error | undefined): void;
}

/** Where the parser is: in the HTTP response, a frame header, or a frame's payload. */
const Phase = { Handshake: 0, Header: 1, Payload: 2 } as const;

/** One shared read buffer: reads are parsed to the end before the next one. */
const READ_BUFFER = Buffer.allocUnsafe(256 * 1024);

export interface WireOptions {
  readonly port: number;
  readonly path: string;
  readonly localAddress?: string;
  /**
   * Offer permessage-deflate; if the server takes it, `'inflate'` inflates every compressed
   * message and hands it to `message`; `'count'` only tells `counted`, if the server compresses
   * each message on its own, and otherwise inflates too (a message compressed against earlier ones
   * cannot be read without them). [default: no offer]
   */
  readonly compression?: 'inflate' | 'count';
  /** The subprotocol to ask for [default none]. */
  readonly protocol?: string | undefined;
}

export class WireConnection {
  /** Owner's index for this connection (array slots, not per-connection objects). */
  readonly slot: number;
  /** First bytes of the current data message. */
  readonly prefix = Buffer.allocUnsafe(PREFIX_BYTES);
  prefixLength = 0;
  /** Free for the dialect on top (e.g. Socket.IO's handshake step). */
  state = 0;
  /** The whole current message, while `message` reads one that came compressed and was inflated. */
  inflated: Buffer | undefined;
  readonly socket: net.Socket;
  readonly #handler: WireHandler;
  #phase: number = Phase.Handshake;
  #response = '';
  readonly #head = Buffer.allocUnsafe(10);
  #headLength = 0;
  #headNeed = 2;
  #opcode = 0;
  #fin = false;
  #remaining = 0;
  #messageLength = 0;
  #control: Buffer | undefined;
  #controlLength = 0;
  #closing = false;
  #closeTimer: NodeJS.Timeout | undefined;
  #done = false;
  readonly #compression: 'inflate' | 'count' | undefined;
  /** Set once the server took the offer and this connection inflates. */
  #inflater: MessageInflater | undefined;
  /** The server took the offer: RSV1 marks a compressed message. */
  #negotiated = false;
  /** The current message came compressed. */
  #compressed = false;
  /** Its payload so far, when it is to be inflated. */
  #chunks: Buffer[] = [];
  /** A message is being inflated asynchronously: what was read meanwhile waits here, and the socket is paused. */
  #held: Buffer | undefined;
  /** `pause()` was asked: the end of an inflation does not resume reading. */
  #stopped = false;

  constructor(slot: number, options: WireOptions, handler: WireHandler) {
    this.slot = slot;
    this.#handler = handler;
    this.#compression = options.compression;
    const request =
      `GET ${options.path} HTTP/1.1\r\nHost: ${HOST}:${options.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n` +
      (options.compression === undefined ? '' : `Sec-WebSocket-Extensions: ${DEFLATE_OFFER}\r\n`) +
      (options.protocol === undefined ? '' : `Sec-WebSocket-Protocol: ${options.protocol}\r\n`) +
      '\r\n';
    this.socket = net.connect({
      port: options.port,
      host: HOST,
      ...(options.localAddress !== undefined && { localAddress: options.localAddress }),
      noDelay: true,
      onread: {
        buffer: READ_BUFFER,
        callback: (bytes: number) => {
          wireBytes.count += bytes;
          this.#feed(READ_BUFFER, bytes, performance.timeOrigin + performance.now());
          return true;
        },
      },
    });
    this.socket.once('connect', () => this.socket.write(request));
    this.socket.on('error', (error) => this.#finish(error));
    this.socket.once('close', () => this.#finish(this.#closing ? undefined : new Error('socket closed by server')));
  }

  send(frame: Buffer): void {
    if (!this.#done) this.socket.write(frame);
  }

  /** Starts the closing handshake; the server answers and closes the TCP connection. */
  close(): void {
    if (this.#closing || this.#done) return;
    this.#closing = true;
    this.socket.write(CLOSE_NORMAL);
  }

  /** Stops reading: the server's frames pile up in the kernel, then in the server. */
  pause(): void {
    this.#stopped = true;
    this.socket.pause();
  }

  destroy(): void {
    this.#closing = true;
    this.socket.destroy();
  }

  #finish(error: Error | undefined): void {
    if (this.#done) return;
    this.#done = true;
    clearTimeout(this.#closeTimer);
    this.#inflater?.close();
    this.socket.destroy();
    this.#handler.closed(this, error);
  }

  #feed(bytes: Buffer, end: number, now: number): void {
    if (this.#held !== undefined) {
      this.#held = Buffer.concat([this.#held, bytes.subarray(0, end)]);
      return;
    }
    let i = 0;
    if (this.#phase === Phase.Handshake) {
      i = this.#handshake(bytes, end);
      if (i < 0) return;
    }
    while (i < end) {
      if (this.#phase === Phase.Header) {
        this.#head[this.#headLength++] = bytes[i++]!;
        if (this.#headLength === 2) {
          if ((this.#head[1]! & 0x80) !== 0) return this.#fail('server frame is masked');
          const short = this.#head[1]! & 0x7f;
          this.#headNeed = short === 126 ? 4 : short === 127 ? 10 : 2;
        }
        if (this.#headLength >= 2 && this.#headLength === this.#headNeed) this.#startFrame(now);
      } else {
        const take = Math.min(end - i, this.#remaining);
        if ((this.#opcode & 0x8) !== 0) {
          bytes.copy(this.#control!, this.#controlLength, i, i + take);
          this.#controlLength += take;
        } else if (this.#compressed) {
          // The read buffer is shared: a payload to inflate later is copied out of it.
          if (this.#inflater !== undefined && take > 0) this.#chunks.push(Buffer.from(bytes.subarray(i, i + take)));
        } else if (this.prefixLength < PREFIX_BYTES) {
          const keep = Math.min(take, PREFIX_BYTES - this.prefixLength);
          for (let k = 0; k < keep; k++) this.prefix[this.prefixLength + k] = bytes[i + k]!;
          this.prefixLength += keep;
        }
        i += take;
        this.#remaining -= take;
        if (this.#remaining === 0) this.#endFrame(now);
      }
      if (this.#done) return;
      if (this.#held !== undefined) {
        // An inflation is under way: the rest waits for it, and so does the socket.
        this.#held = Buffer.from(bytes.subarray(i, end));
        this.socket.pause();
        return;
      }
    }
  }

  /** Reads the HTTP response; returns where frames start in `bytes`, or -1 while it is incomplete. */
  #handshake(bytes: Buffer, end: number): number {
    const before = this.#response.length;
    this.#response += bytes.toString('latin1', 0, end);
    const headEnd = this.#response.indexOf('\r\n\r\n');
    if (headEnd === -1) {
      if (this.#response.length > 8192) this.#fail('upgrade response too long');
      return -1;
    }
    const head = this.#response.slice(0, headEnd).toLowerCase();
    this.#response = '';
    if (!head.startsWith('http/1.1 101')) {
      this.#fail(`upgrade refused: ${head.split('\r\n')[0]}`);
      return -1;
    }
    if (!head.includes(`sec-websocket-accept: ${ACCEPT}`)) {
      this.#fail('bad Sec-WebSocket-Accept');
      return -1;
    }
    const answer = parseAnswer(/\r\nsec-websocket-extensions:([^\r]*)/.exec(head)?.[1]);
    if (typeof answer === 'string' || (answer !== undefined && this.#compression === undefined)) {
      this.#fail(typeof answer === 'string' ? answer : 'the server answered an extension that was not offered');
      return -1;
    }
    if (answer !== undefined) {
      this.#negotiated = true;
      if (this.#compression === 'inflate' || !answer.serverNoContextTakeover) this.#inflater = new MessageInflater(answer);
    }
    this.#phase = Phase.Header;
    this.#handler.upgraded(this);
    return headEnd + 4 - before;
  }

  #startFrame(now: number): void {
    const head = this.#head;
    const short = head[1]! & 0x7f;
    const length = short === 126 ? head.readUInt16BE(2) : short === 127 ? head.readUInt32BE(2) * 2 ** 32 + head.readUInt32BE(6) : short;
    this.#headLength = 0;
    this.#headNeed = 2;
    this.#opcode = head[0]! & 0x0f;
    this.#fin = (head[0]! & 0x80) !== 0;
    this.#remaining = length;
    this.#phase = Phase.Payload;
    const rsv = head[0]! & 0x70;
    // RSV1 may only start a message, and only once the extension is negotiated (RFC 7692 §6).
    if (rsv !== 0 && (rsv !== 0x40 || !this.#negotiated || this.#opcode === 0 || (this.#opcode & 0x8) !== 0)) {
      return this.#fail(`unexpected RSV bits 0x${rsv.toString(16)} on opcode ${this.#opcode}`);
    }
    if ((this.#opcode & 0x8) !== 0) {
      if (length > 125) return this.#fail('control frame too long');
      this.#control ??= Buffer.allocUnsafe(125);
      this.#controlLength = 0;
    } else {
      // A continuation frame extends the message; any other data frame starts one.
      if (this.#opcode !== 0) {
        this.prefixLength = 0;
        this.#messageLength = 0;
        this.#compressed = rsv !== 0;
      }
      this.#messageLength += length;
    }
    if (length === 0) this.#endFrame(now);
  }

  #endFrame(now: number): void {
    this.#phase = Phase.Header;
    switch (this.#opcode) {
      case OPCODE_PING:
        pingsAnswered.count++;
        this.send(clientFrame(OPCODE_PONG, this.#control!.subarray(0, this.#controlLength)));
        return;
      case OPCODE_PONG:
        return;
      case OPCODE_CLOSE:
        if (!this.#closing) {
          // The server closes: echo its code, as the RFC asks.
          this.#closing = true;
          this.socket.write(clientFrame(OPCODE_CLOSE, this.#control!.subarray(0, Math.min(2, this.#controlLength))));
        }
        // Either way the server ends the TCP connection first (RFC 6455 §7.1.1), so the
        // TIME_WAIT is the server's and churn does not use up this side's ephemeral ports.
        this.#closeTimer ??= setTimeout(() => this.socket.destroy(), 5000);
        return;
      default:
        if (!this.#fin) return;
        if (!this.#compressed) return this.#handler.message(this, this.#messageLength, now);
        if (this.#inflater === undefined) return this.#handler.counted?.(this, now);
        this.#inflate(this.#inflater, now);
    }
  }

  /** Inflates the message just completed and hands it on, at once or (context takeover) once zlib is done. */
  #inflate(inflater: MessageInflater, now: number): void {
    const chunks = this.#chunks;
    this.#chunks = [];
    const result = inflater.inflate(chunks, (late) => {
      if (this.#done) return;
      this.#inflated(late, now);
      const held = this.#held!;
      this.#held = undefined;
      this.#feed(held, held.length, performance.timeOrigin + performance.now());
      if (this.#held === undefined && !this.#done && !this.#stopped) this.socket.resume();
    });
    if (result === undefined) this.#held = Buffer.alloc(0);
    else this.#inflated(result, now);
  }

  #inflated(result: Buffer | Error, now: number): void {
    if (result instanceof Error) return this.#fail(`inflate: ${result.message}`);
    this.prefixLength = Math.min(PREFIX_BYTES, result.length);
    result.copy(this.prefix, 0, 0, this.prefixLength);
    this.inflated = result;
    this.#handler.message(this, result.length, now);
    this.inflated = undefined;
  }

  #fail(reason: string): void {
    this.#finish(new Error(reason));
  }
}
