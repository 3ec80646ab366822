/**
 * permessage-deflate at the handshake: what berth tells ws to accept, and the
 * rewriting of a client's offer before ws reads it. ws negotiates and inflates
 * what clients send; berth compresses what it sends itself, once per message.
 */
import type http from 'node:http';
import type { PerMessageDeflateOptions } from 'ws';
import type { CompressionSettings } from '../../delivery/deflate.js';

/**
 * ws's `perMessageDeflate` option for `compression`: offers are accepted with `client_no_context_takeover`,
 * and with `server_no_context_takeover` when targets share no contexts (`compression.contexts` is 0) or the client asks.
 */
export function deflateOption(compression: CompressionSettings | undefined): PerMessageDeflateOptions | false {
  if (compression === undefined) return false;
  return {
    // With shared contexts, a client that asks for server_no_context_takeover gets it and the rest
    // keep their inflate context (ws answers as the client asked); without, everyone gets it.
    ...(compression.contexts === 0 && { serverNoContextTakeover: true }),
    // So that the inflate context of a client's message can be freed once it is whole (`releaseInflate`).
    clientNoContextTakeover: true,
    // Never used: berth writes its data frames itself; ws's own are control frames.
    threshold: Number.MAX_SAFE_INTEGER,
  };
}

/** Rewrites the request's offer for `compression.inboundWindowBits` below 15 (`limitClientWindow`); else leaves it. */
export function limitOffer(request: http.IncomingMessage, compression: CompressionSettings | undefined): void {
  const offer = request.headers['sec-websocket-extensions'];
  if (compression !== undefined && compression.inboundWindowBits < 15 && offer !== undefined) {
    request.headers['sec-websocket-extensions'] = limitClientWindow(offer, compression.inboundWindowBits);
  }
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
