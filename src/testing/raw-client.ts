/**
 * A raw client of a scenario: a `ws` WebSocket with no subprotocol, and
 * everything it received and how it closed, kept for the steps that expect
 * them and written to the timeline.
 */
import WebSocket from 'ws';
import type { Received } from './matching.js';
import type { Timeline } from './timeline.js';

export class RawClient {
  readonly name: string;
  readonly tag: string;
  readonly ws: WebSocket;
  readonly received: Received[] = [];
  /** How many of `received` a step has expected. */
  taken = 0;
  closed: { code: number; reason: string } | undefined;
  /** Messages written while open: what the server should have received once they arrive. */
  written = 0;

  constructor(name: string, tag: string, ws: WebSocket, timeline: Timeline, changed: () => void) {
    this.name = name;
    this.tag = tag;
    this.ws = ws;
    ws.on('message', (data: Buffer, binary) => {
      const text = binary ? undefined : data.toString('utf8');
      this.received.push({ text, bytes: data, binary });
      timeline.add(name, 'received', text ?? `${data.length} bytes`);
      changed();
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      timeline.add(name, 'closed', `${code}${reason.length > 0 ? ` "${reason.toString()}"` : ''}`);
      changed();
    });
    ws.on('error', () => {}); // what matters arrives as close or refusal
  }

  /** Resolves once the upgrade is answered: 'open', or the refusal's HTTP status (0 if the connection went away). */
  opened(): Promise<'open' | { status: number }> {
    return new Promise((resolve) => {
      this.ws.once('open', () => resolve('open'));
      this.ws.once('unexpected-response', (_request, response) => {
        resolve({ status: response.statusCode ?? 0 });
        response.resume();
      });
      this.ws.once('close', () => resolve({ status: 0 }));
    });
  }

  send(data: string | Buffer): void {
    if (this.ws.readyState === WebSocket.OPEN) this.written++;
    this.ws.send(data);
  }

  /** Destroys the TCP (or in-memory) connection: no close frame. False if there is none. */
  drop(): boolean {
    const socket = (this.ws as unknown as { _socket?: { destroy(): void } })._socket;
    if (socket === undefined) return false;
    socket.destroy();
    return true;
  }
}
