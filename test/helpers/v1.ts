import WebSocket from 'ws';
import { eventually } from '../../src/testing/wait.js';

/** A real ws client that speaks berth.v1 and decodes what it gets. */
export interface V1Client {
  readonly ws: WebSocket;
  /** Every message received, in order: text ones parsed, binary ones as their header with `payload` in hex. */
  readonly received: Array<Record<string, unknown>>;
  /** Resolves with the next message not yet taken by `next()`. */
  next(): Promise<Record<string, unknown>>;
  /** Resolves with the first message received that passes `test`, once there is one; `what` names it if none comes. [timeoutMs=5000] */
  until(test: (message: Record<string, unknown>) => boolean, what: string, timeoutMs?: number): Promise<Record<string, unknown>>;
}

/** Opens a client that offers `protocols` (berth.v1 alone unless told). */
export async function v1(url: string, protocols: string[] = ['berth.v1']): Promise<V1Client> {
  const ws = new WebSocket(url, protocols);
  const received: Array<Record<string, unknown>> = [];
  let taken = 0;
  ws.on('message', (data: Buffer, binary) => {
    if (!binary) {
      received.push(JSON.parse(data.toString()) as Record<string, unknown>);
      return;
    }
    const end = 2 + data.readUInt16BE(0);
    received.push({ ...(JSON.parse(data.toString('utf8', 2, end)) as object), payload: data.subarray(end).toString('hex') });
  });
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  return {
    ws,
    received,
    async next() {
      await eventually(() => received.length > taken, 'a berth.v1 message');
      return received[taken++]!;
    },
    async until(test, what, timeoutMs) {
      await eventually(() => received.some(test), what, timeoutMs);
      return received.find(test)!;
    },
  };
}
