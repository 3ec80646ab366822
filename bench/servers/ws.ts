/**
 * A plain `ws` server: rooms in a `Map<string, Set<WebSocket>>`, broadcast as
 * in ws's README (a loop of `client.send(data, { binary })` over open
 * clients). The string is encoded to a Buffer once per broadcast, as the
 * README's example sends the Buffer it received: berth and Socket.IO also
 * encode once per broadcast internally, while handing ws the string would
 * make it encode once per recipient (a 10 GB allocation for the 1 MB case).
 * With compression, `send` compresses that Buffer once per recipient, in
 * each connection's own deflate context: that is how ws compresses.
 */
import { WebSocket, WebSocketServer } from 'ws';
import { HOST } from '../protocol.js';
import { ErrorLog, roomOf, type StartOptions, type SystemServer } from './system.js';

/** A client with the README's `isAlive` flag on it. */
type Live = WebSocket & { isAlive?: boolean };

/** The README's `heartbeat` listener: `this` is the client that answered. */
function heartbeatPong(this: WebSocket): void {
  (this as Live).isAlive = true;
}

export async function startWs({ redisUrl, recoverSessions, heartbeat, compression }: StartOptions): Promise<SystemServer> {
  if (redisUrl !== undefined) throw new Error('ws has no cluster mode');
  if (recoverSessions !== undefined) throw new Error('ws has no session recovery');
  // fanout-deflate: ws's permessage-deflate with its defaults (a deflate context per connection, kept
  // between messages; threshold 1 KiB; at most 10 zlib jobs at once).
  const wss = new WebSocketServer({ port: 0, host: HOST, perMessageDeflate: compression !== undefined });
  const rooms = new Map<string, Set<WebSocket>>();
  const errors = new ErrorLog();
  let received = 0;
  wss.on('connection', (ws, request) => {
    const room = roomOf(request.url);
    let clients = rooms.get(room);
    if (clients === undefined) rooms.set(room, (clients = new Set()));
    clients.add(ws);
    ws.on('message', () => {
      received++;
    });
    ws.on('error', (error) => errors.note(error));
    ws.on('close', () => {
      clients.delete(ws);
      if (clients.size === 0 && rooms.get(room) === clients) rooms.delete(room);
    });
    if (heartbeat !== undefined) {
      (ws as Live).isAlive = true;
      ws.on('pong', heartbeatPong);
    }
  });
  wss.on('error', (error) => errors.note(error));
  // idle-heartbeat: the heartbeat of ws's README, one interval over every client that terminates a
  // client which did not answer the last ping and pings the others. Its timeout is its interval.
  if (heartbeat !== undefined) {
    const interval = setInterval(() => {
      for (const ws of wss.clients as Set<Live>) {
        if (ws.isAlive === false) {
          ws.terminate();
          continue;
        }
        ws.isAlive = false;
        ws.ping();
      }
    }, heartbeat.intervalMs);
    wss.on('close', () => clearInterval(interval));
  }
  await new Promise<void>((resolve, reject) => wss.once('listening', resolve).once('error', reject));
  return {
    port: (wss.address() as { port: number }).port,
    connections: () => wss.clients.size,
    members: (room) => rooms.get(room)?.size ?? 0,
    received: () => received,
    errors: () => ({ count: errors.count, first: errors.first }),
    broadcast: (room, payload) => {
      const clients = rooms.get(room);
      if (clients === undefined) return;
      const data = Buffer.from(payload);
      for (const client of clients) {
        if (client.readyState === WebSocket.OPEN) client.send(data, { binary: false });
      }
    },
    channelRoom: () => undefined,
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate();
        wss.close(() => resolve());
      }),
  };
}
