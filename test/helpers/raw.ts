import { randomBytes } from 'node:crypto';
import net from 'node:net';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Sends a bare HTTP upgrade request and returns the response, whatever it is. */
export function rawUpgrade(port: number, path = '/', headers: Record<string, string> = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let data = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk) => {
      data += chunk;
      // A 101 keeps the socket open; stop at the end of its head.
      if (data.startsWith('HTTP/1.1 101') && data.includes('\r\n\r\n')) socket.destroy();
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(parseResponse(data)));
    socket.write(upgradeRequest(port, path, headers));
  });
}

/**
 * An upgrade request whose headers never end (no blank line): resolves with what the server answered
 * once it closed the connection, as its headers timeout should.
 */
export function halfSentUpgrade(port: number, path = '/'): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let answer = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (answer += chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(answer));
    socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n`);
  });
}

function upgradeRequest(port: number, path: string, headers: Record<string, string> = {}): string {
  const lines = [
    `GET ${path} HTTP/1.1`,
    `Host: 127.0.0.1:${port}`,
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
    'Sec-WebSocket-Version: 13',
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
  ];
  return `${lines.join('\r\n')}\r\n\r\n`;
}

function parseResponse(raw: string): RawResponse {
  const [head = '', body = ''] = raw.split('\r\n\r\n');
  const [statusLine = '', ...headerLines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: Number(statusLine.split(' ')[1]), headers, body };
}

/**
 * A hand-rolled WebSocket client over a raw TCP socket, for frames a real
 * client refuses to send (invalid close codes) and for dropping TCP without
 * a close frame.
 */
export class RawWebSocket {
  readonly #socket: net.Socket;
  #buffer = Buffer.alloc(0);
  readonly frames: Array<{ opcode: number; payload: Buffer }> = [];
  readonly ended: Promise<void>;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.on('data', (chunk) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      this.#parse();
    });
    this.ended = new Promise((resolve) => socket.on('close', () => resolve()));
  }

  /** `allowHalfOpen`: keep this side open after the server ends its side, as a misbehaving peer would. */
  static open(port: number, path = '/', options: { allowHalfOpen?: boolean } = {}): Promise<RawWebSocket> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: options.allowHalfOpen ?? false });
      let head = Buffer.alloc(0);
      const onData = (chunk: Buffer) => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end === -1) return;
        socket.off('data', onData);
        if (!head.toString('latin1').startsWith('HTTP/1.1 101')) {
          reject(new Error(`handshake refused: ${head.toString('latin1').split('\r\n')[0]}`));
          socket.destroy();
          return;
        }
        const raw = new RawWebSocket(socket);
        const rest = head.subarray(end + 4);
        if (rest.length > 0) socket.emit('data', rest);
        resolve(raw);
      };
      socket.on('data', onData);
      socket.on('error', reject);
      socket.write(upgradeRequest(port, path));
    });
  }

  /** Sends one masked frame as a client must. */
  sendFrame(opcode: number, payload: Buffer): void {
    const mask = randomBytes(4);
    const header =
      payload.length < 126
        ? Buffer.from([0x80 | opcode, 0x80 | payload.length])
        : Buffer.from([0x80 | opcode, 0x80 | 126, payload.length >> 8, payload.length & 0xff]);
    const masked = Buffer.from(payload);
    for (let i = 0; i < masked.length; i++) masked[i]! ^= mask[i % 4]!;
    this.#socket.write(Buffer.concat([header, mask, masked]));
  }

  /** Sends a close frame with any code, valid or not. */
  sendClose(code: number, reason = ''): void {
    const payload = Buffer.alloc(2 + Buffer.byteLength(reason));
    payload.writeUInt16BE(code, 0);
    payload.write(reason, 2);
    this.sendFrame(0x8, payload);
  }

  /** The close code and reason of the first close frame the server sent, once it has. */
  async serverClose(): Promise<{ code: number; reason: string }> {
    await this.ended;
    const frame = this.frames.find((f) => f.opcode === 0x8);
    if (frame === undefined) throw new Error('the server sent no close frame');
    return { code: frame.payload.readUInt16BE(0), reason: frame.payload.subarray(2).toString() };
  }

  /** Resolves once what was written has left for the kernel (`writable` again), or the socket closed. */
  drained(): Promise<void> {
    return new Promise((resolve) => {
      if (this.#socket.writableLength === 0 || this.#socket.destroyed) return resolve();
      const done = () => {
        this.#socket.off('drain', done).off('close', done);
        resolve();
      };
      this.#socket.on('drain', done).on('close', done);
    });
  }

  /** Stops reading: whatever the server writes backs up in the kernel's buffers. */
  pause(): void {
    this.#socket.pause();
  }

  /** Whether the socket still takes writes without buffering them (false under backpressure). */
  get writable(): boolean {
    return this.#socket.writable && this.#socket.writableLength < 1024 * 1024;
  }

  /** Drops the TCP connection without a close frame. */
  destroy(): void {
    this.#socket.destroy();
  }

  #parse(): void {
    while (this.#buffer.length >= 2) {
      const opcode = this.#buffer[0]! & 0x0f;
      let length = this.#buffer[1]! & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (this.#buffer.length < 4) return;
        length = this.#buffer.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (this.#buffer.length < 10) return;
        length = Number(this.#buffer.readBigUInt64BE(2));
        offset = 10;
      }
      if (this.#buffer.length < offset + length) return;
      this.frames.push({ opcode, payload: this.#buffer.subarray(offset, offset + length) });
      this.#buffer = this.#buffer.subarray(offset + length);
    }
  }
}

/** A plain HTTP request whose headers are complete and whose body comes one byte every half second, never all of it. */
export interface TrickledRequest {
  /** Resolves once `count` bytes of the body have been written. */
  sent(count: number): Promise<void>;
  /** Resolves when the server closed the connection. */
  readonly closed: Promise<void>;
}

/** Starts a trickled request: the client a server's `requestTimeout` is there to cut. */
export function trickledRequest(port: number, path = '/'): Promise<TrickledRequest> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let written = 0;
    const waiters: Array<{ count: number; wake: () => void }> = [];
    const closed = new Promise<void>((done) => socket.once('close', () => done()));
    socket.on('data', () => {}); // the answer is not the point: the close is
    socket.on('error', reject); // after the connect, a no-op: the close tells
    socket.once('connect', () => {
      socket.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Length: 1000000\r\n\r\n`);
      // The trickle is the scenario: a body that keeps the connection busy, never complete.
      const trickle = setInterval(() => {
        socket.write('x');
        written++;
        for (const waiter of waiters.filter((w) => w.count <= written)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.wake();
        }
      }, 500);
      void closed.then(() => clearInterval(trickle));
      resolve({
        sent: (count) => (count <= written ? Promise.resolve() : new Promise((wake) => waiters.push({ count, wake }))),
        closed,
      });
    });
  });
}
