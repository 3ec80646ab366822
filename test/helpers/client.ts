import WebSocket, { type ClientOptions } from 'ws';

/** A real ws client that records everything it receives. */
export interface TestClient {
  readonly ws: WebSocket;
  /** Text messages received so far, in order. */
  readonly messages: string[];
  /** Resolves with the next message not yet taken by `next()`. */
  next(timeoutMs?: number): Promise<string>;
  /** Resolves once `count` messages have arrived in total. */
  received(count: number, timeoutMs?: number): Promise<string[]>;
  /** Resolves with the close code and reason the client saw. */
  readonly closed: Promise<{ code: number; reason: string }>;
}

export function connect(url: string, options: ClientOptions = {}): Promise<TestClient> {
  const ws = new WebSocket(url, options);
  const messages: string[] = [];
  let taken = 0;
  const waiters: Array<() => void> = [];
  ws.on('message', (data, binary) => {
    messages.push(binary ? `binary:${(data as Buffer).toString('hex')}` : data.toString());
    for (const wake of waiters.splice(0)) wake();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.on('close', (code, reason) => {
      resolve({ code, reason: reason.toString() });
      for (const wake of waiters.splice(0)) wake();
    });
  });
  const waitUntil = (done: () => boolean, what: string, timeoutMs: number) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}; got ${JSON.stringify(messages)}`)), timeoutMs);
      const check = () => {
        if (done()) {
          clearTimeout(timer);
          resolve();
        } else waiters.push(check);
      };
      check();
    });
  const client: TestClient = {
    ws,
    messages,
    async next(timeoutMs = 5000) {
      await waitUntil(() => messages.length > taken, 'a message', timeoutMs);
      return messages[taken++]!;
    },
    async received(count, timeoutMs = 5000) {
      await waitUntil(() => messages.length >= count, `${count} messages`, timeoutMs);
      return messages.slice(0, count);
    },
    closed,
  };
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(client));
    ws.once('error', reject);
    ws.once('unexpected-response', (_request, response) => reject(new Error(`upgrade refused with ${response.statusCode}`)));
  });
}

/**
 * A round trip on an open socket: a ping, and whichever comes first, its pong or the close. A socket
 * the server has let go cannot answer, so this is how a test asks "still open?" without waiting a while.
 */
export function pingOrClose(ws: WebSocket): Promise<'pong' | 'closed'> {
  return new Promise((resolve) => {
    if (ws.readyState !== ws.OPEN) return resolve('closed');
    ws.once('pong', () => resolve('pong'));
    ws.once('close', () => resolve('closed'));
    ws.ping();
  });
}

export { eventually, settles } from '../../src/testing/wait.js';
