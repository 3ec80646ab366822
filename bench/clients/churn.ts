/**
 * Connection churn: cycles of connect, (the server joins the room on
 * connect), send one message, close — `concurrency` cycles in flight. A cycle
 * ends when the server has closed the TCP connection after the closing
 * handshake, so the server has handled the message and the close by then.
 */
import type { ChurnReport } from '../protocol.js';
import { HANDLED, READY, type Dialect } from './dialect.js';
import { WireConnection, type WireHandler } from './wire.js';

const CYCLE_TIMEOUT_MS = 15_000;

export async function churn(port: number, dialect: Dialect, cycles: number, concurrency: number, timeoutMs: number): Promise<ChurnReport> {
  const started = performance.now();
  const deadline = started + timeoutMs;
  const errors: string[] = [];
  let next = 0;
  let completed = 0;
  let failed = 0;

  const cycle = (slot: number) =>
    new Promise<void>((resolve) => {
      let sent = false;
      const sendAndClose = (connection: WireConnection) => {
        if (sent) return;
        sent = true;
        connection.send(dialect.messageFrame);
        connection.close();
      };
      const timer = setTimeout(() => connection.destroy(), CYCLE_TIMEOUT_MS);
      const handler: WireHandler = {
        upgraded: (connection) => {
          if (dialect.upgraded(connection)) sendAndClose(connection);
        },
        message: (connection, length) => {
          const kind = dialect.inspect(connection, length);
          if (kind === READY) sendAndClose(connection);
          else if (kind !== HANDLED) note(`unexpected message of ${length} bytes`);
        },
        closed: (_connection, error) => {
          clearTimeout(timer);
          if (error !== undefined || !sent) failure(error?.message ?? 'closed before the message was sent');
          else completed++;
          resolve();
        },
      };
      const connection = new WireConnection(slot, { port, path: dialect.path('churn') }, handler);
    });

  const note = (message: string) => {
    if (errors.length < 5) errors.push(message);
  };
  const failure = (message: string) => {
    failed++;
    note(message);
  };

  const worker = async () => {
    while (next < cycles && performance.now() < deadline) await cycle(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, cycles) }, worker));
  if (next < cycles) {
    failed += cycles - next;
    note(`timed out after ${timeoutMs} ms with ${cycles - next} cycles not started`);
  }
  return { completed, failed, firstErrors: errors, ms: performance.now() - started };
}
