/**
 * Two connected in-memory streams that stand in for a TCP connection: what
 * one end writes, the other reads. Backpressure is real — a write is only
 * acknowledged once the other end has taken the bytes into its read buffer,
 * so a client that stops reading makes the server's socket buffer grow, as
 * over TCP — and destroying one end closes the other without any close frame,
 * like a dropped connection.
 */
import { Duplex } from 'node:stream';

export class MemorySocket extends Duplex {
  peer!: MemorySocket;
  readonly remoteAddress: string;
  readonly remotePort = 0;
  readonly localAddress = '127.0.0.1';
  readonly localPort = 0;
  readonly remoteFamily = 'IPv4';
  /** A write of ours waiting for the peer to want more. */
  #blocked: (() => void) | undefined;

  constructor(remoteAddress: string) {
    super({ allowHalfOpen: false });
    this.remoteAddress = remoteAddress;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    // In a later turn of the event loop, as over TCP: never in the writer's own call stack (ws, for one,
    // sets its state after writing a close frame, and a reply arriving inside that write would find it
    // unset), and after the promise continuations of what arrived before, so that two clients' frames
    // written together are taken one turn at a time, each with what its handler awaits.
    setImmediate(() => {
      if (this.peer.destroyed) return callback(new Error('socket closed (EPIPE)'));
      if (this.peer.push(chunk)) callback();
      else this.#blocked = () => callback();
    });
  }

  override _read(): void {
    const resume = this.peer.#blocked;
    this.peer.#blocked = undefined;
    resume?.();
  }

  override _final(callback: (error?: Error | null) => void): void {
    // The same way as the data, so the end never overtakes it.
    setImmediate(() => {
      this.peer.push(null);
      callback();
    });
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#blocked = undefined;
    // The other end sees the connection go away, as after a reset: no close frame, no error.
    if (!this.peer.destroyed) queueMicrotask(() => this.peer.destroy());
    callback(error);
  }

  // What http and ws call on a net.Socket; nothing to do in memory.
  setNoDelay(): this {
    return this;
  }
  setKeepAlive(): this {
    return this;
  }
  /** An in-memory socket never idles out: no 'timeout' is ever emitted. */
  setTimeout(): this {
    return this;
  }
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
  address(): { address: string; family: string; port: number } {
    return { address: this.localAddress, family: 'IPv4', port: 0 };
  }
}

/** A connected pair: `[client end, server end]`. */
export function memorySocketPair(clientAddress = '127.0.0.1'): [MemorySocket, MemorySocket] {
  const client = new MemorySocket('127.0.0.1');
  const server = new MemorySocket(clientAddress);
  client.peer = server;
  server.peer = client;
  return [client, server];
}
