/**
 * The HTTP side of the transport: the standalone server berth listens on
 * itself, and the plain HTTP answer to an upgrade it refuses.
 */
import http from 'node:http';
import type { Duplex } from 'node:stream';
import type { Refusal } from '../admission.js';

/** The accept queue of a server berth listens on itself. */
const LISTEN_BACKLOG = 4096;

/**
 * A server of berth's own on `port`, listening once `listening` resolves. It answers plain HTTP
 * requests 426; a request whose headers have not arrived within `handshakeTimeoutMs` is answered
 * 408 and closed (Node's defaults keep it 60–90 s).
 */
export function standaloneServer(options: { port: number; host?: string | undefined; handshakeTimeoutMs: number }): {
  server: http.Server;
  listening: Promise<void>;
} {
  const timeout = options.handshakeTimeoutMs;
  const server = http.createServer(
    {
      headersTimeout: timeout,
      requestTimeout: timeout,
      // The timeouts are checked every quarter of them.
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.round(timeout / 4))),
    },
    (_request, response) => {
      response.writeHead(426, { 'Content-Type': 'text/plain; charset=utf-8', Upgrade: 'websocket' });
      response.end('This endpoint speaks WebSocket.\n');
    },
  );
  const listening = new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // A deep accept queue (the kernel caps it at net.core.somaxconn): when every client of a
    // dropped network comes back at once, their handshakes wait in it instead of being lost
    // (Node's default is 511), which leaves a client waiting for TCP to retransmit.
    server.listen({ port: options.port, host: options.host, backlog: LISTEN_BACKLOG }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return { server, listening };
}

/** Writes a complete HTTP response on a raw upgrade socket and closes it. */
export function refuseUpgrade(socket: Duplex, refusal: Refusal): void {
  if (socket.destroyed) return;
  const body = `${refusal.reason}\n`;
  const headers: Record<string, string | number> = {
    Connection: 'close',
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    ...refusal.headers,
  };
  const head = Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}`)
    .join('\r\n');
  socket.once('finish', () => socket.destroy());
  socket.end(`HTTP/1.1 ${refusal.status} ${http.STATUS_CODES[refusal.status] ?? ''}\r\n${head}\r\n\r\n${body}`);
}
