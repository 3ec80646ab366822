import type { Outbound } from '../machines/types.js';
import type { TransportSocket } from './transport.js';

/**
 * A connection's way out. Frames go to the socket in the order they are
 * pushed, whichever API pushed them (S14); `ws` keeps that order down to
 * the kernel. A write that fails while the socket still counts as open
 * reports the failure once; a socket already closing will report its close.
 */
export class Outbox {
  readonly #socket: TransportSocket;
  readonly #onFailure: (error: Error) => void;
  #failed = false;

  constructor(socket: TransportSocket, onFailure: (error: Error) => void) {
    this.#socket = socket;
    this.#onFailure = onFailure;
  }

  /** Bytes accepted and not yet handed to the kernel. */
  get bufferedBytes(): number {
    return this.#socket.bufferedAmount;
  }

  /** Queues a frame; false if the socket is no longer open. */
  push(message: Outbound): boolean {
    if (!this.#socket.isOpen) return false;
    this.#socket.send(message.data, message.binary, this.#written);
    return true;
  }

  readonly #written = (error?: Error): void => {
    if (error === undefined || error === null || this.#failed) return;
    this.#failed = true;
    this.#onFailure(error);
  };
}
