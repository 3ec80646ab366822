import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';

/** What berth keeps of the upgrade request. */
export interface RequestInfo {
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  /** The peer's address; read it while the connection is open (it is looked up on first read). */
  readonly remoteAddress: string | undefined;
}

/** What berth keeps of an upgrade request: not the request itself. */
export class UpgradeRequest implements RequestInfo {
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly #socket: IncomingMessage['socket'];
  #remoteAddress: string | undefined | null = null;

  constructor(request: IncomingMessage) {
    this.url = request.url ?? '/';
    this.headers = request.headers;
    this.#socket = request.socket;
  }

  /** Asked of the kernel on first read (otherwise a getpeername per connection), then kept. */
  get remoteAddress(): string | undefined {
    if (this.#remoteAddress === null) this.#remoteAddress = this.#socket.remoteAddress;
    return this.#remoteAddress;
  }

  toJSON(): RequestInfo {
    return { url: this.url, headers: this.headers, remoteAddress: this.remoteAddress };
  }
}
