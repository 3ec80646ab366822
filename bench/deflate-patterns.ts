/**
 * Bytes on the wire per delivery with permessage-deflate, for broadcast
 * patterns where a room's members do not all receive the same stream:
 * berth with shared contexts (its default), berth with `contexts: 0` (each
 * message compressed on its own) and ws with a context per connection.
 * Counts the compressed payload bytes every client inflates (frame headers
 * not), so the figures do not depend on the machine's load.
 *
 *   npx tsc -p tsconfig.bench.json && node dist-bench/bench/deflate-patterns.js
 *
 * Patterns, 50 connections, 400 chat messages of about 1.1 KiB, one a turn:
 * - `room`: one room, every message to all of it;
 * - `room/except-sender`: one room, each message from a random member, sent to the others;
 * - `two-rooms/except-sender`: everyone in two rooms, each message to one of them at random, from a random member.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { createRuntime, type Connection } from '../src/index.js';
import { seededRandom } from '../src/util/random.js';
import { chat, compressedSizes } from '../test/compression/helpers.js';

const CONNECTIONS = 50;
const MESSAGES = 400;

interface Pattern {
  readonly id: string;
  readonly rooms: readonly string[];
  readonly exceptSender: boolean;
}

const PATTERNS: readonly Pattern[] = [
  { id: 'room', rooms: ['lobby'], exceptSender: false },
  { id: 'room/except-sender', rooms: ['lobby'], exceptSender: true },
  { id: 'two-rooms/except-sender', rooms: ['lobby', 'side'], exceptSender: true },
];

/** A server under test: how to send `message` to `room`'s members but `except`, and how to stop it. */
interface Server {
  readonly url: string;
  send(room: string, message: string, except: number | undefined): void;
  close(): Promise<void>;
}

async function berth(contexts: number, pattern: Pattern): Promise<Server> {
  const runtime = createRuntime({ port: 0, host: '127.0.0.1', compression: { contexts } });
  const connections: Connection[] = [];
  runtime.on('connection', (connection) => {
    connections.push(connection);
    for (const room of pattern.rooms) void connection.join(room);
  });
  await runtime.ready;
  return {
    url: `ws://127.0.0.1:${runtime.address()!.port}/`,
    send: (room, message, except) => runtime.sendToRoom(room, message, except === undefined ? undefined : { except: connections[except]! }),
    close: () => runtime.close(),
  };
}

async function ws(): Promise<Server> {
  const server = http.createServer();
  const wss = new WebSocketServer({ server, perMessageDeflate: true });
  const sockets: WebSocket[] = [];
  wss.on('connection', (socket) => sockets.push(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    // Every connection is in every room of the pattern.
    send: (_room, message, except) => {
      for (const [i, socket] of sockets.entries()) if (i !== except) socket.send(message);
    },
    close: async () => {
      wss.close();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Compressed bytes per delivery for `pattern` on `server`. */
async function measure(server: Server, pattern: Pattern): Promise<number> {
  const clients: { ws: WebSocket; sizes: number[]; received: number }[] = [];
  for (let i = 0; i < CONNECTIONS; i++) {
    const socket = new WebSocket(server.url, { perMessageDeflate: true });
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
    const client = { ws: socket, sizes: compressedSizes({ ws: socket }), received: 0 };
    socket.on('message', () => client.received++);
    clients.push(client);
  }
  // Every connection has joined its rooms.
  await new Promise((resolve) => setTimeout(resolve, 200));
  const random = seededRandom(7);
  let deliveries = 0;
  for (let i = 0; i < MESSAGES; i++) {
    const sender = Math.floor(random() * CONNECTIONS);
    const room = pattern.rooms[Math.floor(random() * pattern.rooms.length)]!;
    server.send(room, chat(room, i), pattern.exceptSender ? sender : undefined);
    deliveries += pattern.exceptSender ? CONNECTIONS - 1 : CONNECTIONS;
    await new Promise((resolve) => setImmediate(resolve));
  }
  const deadline = Date.now() + 30_000;
  while (clients.reduce((sum, client) => sum + client.received, 0) < deliveries) {
    if (Date.now() > deadline) throw new Error(`${pattern.id}: not every message arrived`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const bytes = clients.reduce((sum, client) => sum + client.sizes.reduce((a, b) => a + b, 0), 0);
  for (const client of clients) client.ws.terminate();
  await server.close();
  return bytes / deliveries;
}

console.log('| pattern | berth (shared contexts) | berth `contexts: 0` | ws (a context per connection) | berth ÷ ws |');
console.log('| --- | --- | --- | --- | --- |');
for (const pattern of PATTERNS) {
  const shared = await measure(await berth(64, pattern), pattern);
  const alone = await measure(await berth(0, pattern), pattern);
  const perConnection = await measure(await ws(), pattern);
  const cell = (bytes: number) => `${bytes.toFixed(1)} B`;
  console.log(`| \`${pattern.id}\` | ${cell(shared)} | ${cell(alone)} | ${cell(perConnection)} | ${(shared / perConnection).toFixed(2)} |`);
}
