/**
 * The client side of permessage-deflate (RFC 7692) for the benchmark's raw
 * client: the offer in the upgrade request, the server's answer, and the
 * inflation of a compressed message as that answer allows it.
 *
 * - With `server_no_context_takeover` every message is a deflate stream of
 *   its own: it is inflated alone (`inflateRawSync`), and no state is kept
 *   between messages.
 * - Without it the server compresses each message against the ones before
 *   it (ws's and Socket.IO's default): the connection keeps one
 *   `zlib.createInflateRaw` for its life and writes every message through
 *   it, as ws's own client does. That inflation is asynchronous, so the
 *   connection stops reading until it is done (wire.ts).
 */
import zlib from 'node:zlib';

/** The offer, as browsers make it: the server may also bound the client's window. */
export const DEFLATE_OFFER = 'permessage-deflate; client_max_window_bits';

/** The trailer a sync flush ends with, which the sender removes (RFC 7692 §7.2.1) and the receiver appends. */
const TRAILER = Buffer.from([0x00, 0x00, 0xff, 0xff]);

/** What the server's answer settled for its side. */
export interface DeflateParams {
  /** Each server message is compressed on its own. */
  readonly serverNoContextTakeover: boolean;
  /** The window the server compresses with, 8–15 bits [default 15]. */
  readonly serverWindowBits: number;
}

/**
 * The extension in the server's `Sec-WebSocket-Extensions` value (lower case), undefined when it
 * declined; a string says why the answer is not one this offer allows.
 */
export function parseAnswer(value: string | undefined): DeflateParams | undefined | string {
  if (value === undefined || value.trim() === '') return undefined;
  const [name, ...params] = value.split(';').map((part) => part.trim());
  if (name !== 'permessage-deflate' || value.includes(',')) return `unexpected extension answer: ${value}`;
  let serverNoContextTakeover = false;
  let serverWindowBits = 15;
  for (const param of params) {
    const [key, raw] = param.split('=').map((part) => part.trim());
    const bits = raw === undefined ? NaN : Number(raw.replace(/"/g, ''));
    if (key === 'server_no_context_takeover' && raw === undefined) serverNoContextTakeover = true;
    else if (key === 'client_no_context_takeover' && raw === undefined) continue;
    else if (key === 'server_max_window_bits' && bits >= 8 && bits <= 15) serverWindowBits = bits;
    else if (key === 'client_max_window_bits' && bits >= 8 && bits <= 15) continue;
    else return `unexpected permessage-deflate parameter: ${param}`;
  }
  return { serverNoContextTakeover, serverWindowBits };
}

/** Inflates a connection's compressed messages, in order. */
export class MessageInflater {
  readonly #params: DeflateParams;
  /** zlib does not take a raw window of 8 bits; 9 inflates what 8 compressed. */
  readonly #windowBits: number;
  #stream: zlib.InflateRaw | undefined;
  #output: Buffer[] = [];
  /** The callbacks of the messages written to the context and not yet flushed out, oldest first. */
  #waiting: ((result: Buffer | Error) => void)[] = [];

  constructor(params: DeflateParams) {
    this.#params = params;
    this.#windowBits = Math.max(9, params.serverWindowBits);
  }

  /**
   * Inflates one message (its frames' payloads, in order). Returns the message when it could be
   * inflated at once (no context takeover) or an error; otherwise `undefined`, and `done` gets
   * the message later, in the order the messages were given.
   */
  inflate(chunks: readonly Buffer[], done: (result: Buffer | Error) => void): Buffer | Error | undefined {
    if (this.#params.serverNoContextTakeover) {
      try {
        // The message ends with a sync flush, not a final block: inflate up to it.
        return zlib.inflateRawSync(Buffer.concat([...chunks, TRAILER]), {
          windowBits: this.#windowBits,
          finishFlush: zlib.constants.Z_SYNC_FLUSH,
        });
      } catch (error) {
        return error instanceof Error ? error : new Error(String(error));
      }
    }
    const stream = this.#contextStream();
    for (const chunk of chunks) stream.write(chunk);
    stream.write(TRAILER);
    this.#waiting.push(done);
    stream.flush(() => {
      const message = Buffer.concat(this.#output);
      this.#output = [];
      this.#waiting.shift()?.(message);
    });
    return undefined;
  }

  /** Frees the context, if any. */
  close(): void {
    this.#stream?.close();
    this.#stream = undefined;
  }

  #contextStream(): zlib.InflateRaw {
    if (this.#stream !== undefined) return this.#stream;
    const stream = zlib.createInflateRaw({ windowBits: this.#windowBits });
    stream.on('data', (chunk: Buffer) => this.#output.push(chunk));
    // A broken stream flushes nothing more: every message still waiting gets the error.
    stream.on('error', (error) => {
      for (const done of this.#waiting.splice(0)) done(error);
    });
    return (this.#stream = stream);
  }
}
