/**
 * Every place berth reaches into `ws`'s private state, each behind one
 * function: the TCP socket a WebSocket frames onto (`_socket`) and its
 * permessage-deflate extension (`_extensions`, its `params` and `_inflate`).
 * They are not ws's API, so test/connection/transport/ws-internals.test.ts
 * checks each against the installed ws: an upgrade that renames or drops one
 * fails there, not in production.
 */
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import type { PeerDeflateParams } from '../../delivery/deflate.js';

/** ws keeps the TCP socket it frames onto here; `ws` is pinned to ^8, where this holds. */
export function rawSocketOf(ws: WebSocket): Duplex {
  const socket = (ws as unknown as { _socket?: Duplex })._socket;
  if (socket == null || typeof socket.write !== 'function' || typeof socket.cork !== 'function') {
    throw new Error('berth: this version of ws does not expose its socket; berth needs ws ^8');
  }
  return socket;
}

/** What ws 8 keeps of a negotiated permessage-deflate, as far as berth reads and frees it. */
interface DeflateExtension {
  params?: {
    server_max_window_bits?: number;
    server_no_context_takeover?: boolean;
    client_no_context_takeover?: boolean;
  } | null;
  _inflate?: { close(): void } | null;
}

function deflateExtensionOf(ws: WebSocket): DeflateExtension | undefined {
  return (ws as unknown as { _extensions?: Record<string, DeflateExtension> })._extensions?.['permessage-deflate'];
}

/**
 * What a peer that negotiated permessage-deflate settled for the server's side: the window berth may
 * compress with, the peer's `server_max_window_bits`, else 15; and whether the peer keeps its inflate
 * context between messages. A peer that allowed only 8 bits gets plain frames: zlib's raw deflate
 * makes windows of 9 bits at least.
 */
export function deflateParamsOf(ws: WebSocket): PeerDeflateParams | undefined {
  const params = deflateExtensionOf(ws)?.params;
  if (params == null) return undefined;
  const windowBits = params.server_max_window_bits ?? 15;
  return windowBits >= 9 ? { windowBits, contextTakeover: params.server_no_context_takeover !== true } : undefined;
}

/**
 * Frees the inflate context of a peer's compressed message once the message is whole. berth answers
 * every offer with `client_no_context_takeover` (RFC 7692 §7.1.1.2 lets a server ask it of every
 * client), so no message depends on an earlier one and the context need not outlive it: a connection
 * keeps no inflate memory (window, zlib's state, a 16 KiB output buffer) between messages, where ws
 * would keep it for the connection's life. ws makes a new one for the next compressed message.
 */
export function releaseInflate(ws: WebSocket): void {
  const extension = deflateExtensionOf(ws);
  if (extension?._inflate == null || extension.params?.client_no_context_takeover !== true) return;
  extension._inflate.close();
  extension._inflate = null;
}
