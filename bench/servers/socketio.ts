/**
 * Socket.IO 4 on its own HTTP server, WebSocket transport only (no polling
 * handshake), no compression but in fanout-deflate: `socket.join(room)` on connect,
 * `io.to(room).emit('m', payload)` to broadcast. Socket.IO encodes the packet
 * and even the WebSocket frame once per broadcast. As a cluster node,
 * `@socket.io/redis-adapter`: `createAdapter` (classic pub/sub, every node
 * pattern-subscribed to every room's channel) for `socketio`,
 * `createShardedAdapter` (SPUBLISH, a channel per room a node has a member
 * of: its default `dynamic` mode) for `socketio-sharded`; in resume-storm,
 * `connectionStateRecovery`. With durable streams (cluster-fanout-durable,
 * cluster-resume), `@socket.io/redis-streams-adapter` (every broadcast
 * appended to one Redis stream, which every node reads; sessions saved in
 * Redis when a connection closes) with `connectionStateRecovery`, as its
 * documentation sets them up.
 */
import http from 'node:http';
import { createAdapter, createShardedAdapter } from '@socket.io/redis-adapter';
import { createAdapter as createStreamsAdapter } from '@socket.io/redis-streams-adapter';
import { createClient } from 'redis';
import { Server } from 'socket.io';
import { HOST } from '../protocol.js';
import { ErrorLog, type StartOptions, type SystemServer } from './system.js';

/** Both adapters' channel of a room: `<channelPrefix>#<namespace>#<room>#`, with the default prefix and the main namespace. */
const ROOM_CHANNEL = 'socket.io#/#';

type AdapterFactory = typeof createAdapter | typeof createShardedAdapter;

/** Socket.IO; as a cluster node, on the classic Redis adapter. */
export const startSocketIo = (options: StartOptions): Promise<SystemServer> => start(options, createAdapter);

/** Socket.IO on the sharded Redis adapter: a cluster mode only. */
export async function startSocketIoSharded(options: StartOptions): Promise<SystemServer> {
  if (options.redisUrl === undefined) throw new Error('the sharded adapter is a cluster mode: start it with a Redis');
  return start(options, createShardedAdapter);
}

async function start(
  { redisUrl, recoverSessions, heartbeat, compression, durable }: StartOptions,
  adapter: AdapterFactory,
): Promise<SystemServer> {
  if (durable === true && (redisUrl === undefined || adapter !== createAdapter))
    throw new Error('durable streams: Socket.IO on a Redis, classic setup');
  const httpServer = http.createServer();
  const io = new Server(httpServer, {
    transports: ['websocket'],
    // fanout-deflate: Engine.IO's permessage-deflate (ws's, with a 1 KiB threshold); every emit asks for compression by default.
    perMessageDeflate: compression !== undefined,
    // resume-storm: connection-state recovery with the in-memory adapter it brings (SessionAwareAdapter),
    // 2 minutes as its documentation sets it up; it keeps every session (no count limit). With durable
    // streams, the same on the Redis Streams adapter, which keeps sessions in Redis.
    ...((recoverSessions !== undefined || durable === true) && { connectionStateRecovery: { maxDisconnectionDuration: 2 * 60 * 1000 } }),
    // idle-heartbeat: Engine.IO's own heartbeat (a `2` packet answered by `3`, not a WebSocket ping).
    ...(heartbeat !== undefined && { pingInterval: heartbeat.intervalMs, pingTimeout: heartbeat.timeoutMs }),
    // fanout-deflate: a ping waits behind its socket's compressions (ws deflates at most ten messages at
    // once, process-wide), so with the default 20 s timeout Engine.IO closed 99.7 % of the connections
    // before the 50 messages were through (65.7 % delivered). The heartbeat is not what is measured here.
    ...(compression !== undefined && heartbeat === undefined && { pingTimeout: 10 * 60 * 1000 }),
  });
  const clients: { close(): Promise<void> }[] = [];
  if (redisUrl !== undefined && durable === true) {
    // The setup of the Redis Streams adapter's documentation: one client, which it duplicates to read the stream.
    const client = createClient({ url: redisUrl });
    await client.connect();
    clients.push(client);
    io.adapter(createStreamsAdapter(client));
  } else if (redisUrl !== undefined) {
    // The setup of Socket.IO's documentation, on the same Redis client library as berth's adapter.
    const pub = createClient({ url: redisUrl });
    const sub = pub.duplicate();
    await Promise.all([pub.connect(), sub.connect()]);
    clients.push(pub, sub);
    io.adapter(adapter(pub, sub));
  }
  const errors = new ErrorLog();
  let received = 0;
  io.on('connection', (socket) => {
    const room = socket.handshake.query['room'];
    if (typeof room !== 'string' || room === '') {
      errors.note(new Error(`no room in ${socket.handshake.url}`));
      socket.disconnect(true);
      return;
    }
    void socket.join(room);
    socket.on('m', () => {
      received++;
    });
    socket.on('error', (error) => errors.note(error));
  });
  io.engine.on('connection_error', (error: { message: string }) => errors.note(new Error(error.message)));
  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(0, HOST, () => resolve());
  });
  return {
    port: (httpServer.address() as { port: number }).port,
    connections: () => io.engine.clientsCount,
    members: (room) => io.sockets.adapter.rooms.get(room)?.size ?? 0,
    received: () => received,
    errors: () => ({ count: errors.count, first: errors.first }),
    broadcast: (room, payload) => {
      io.to(room).emit('m', payload);
    },
    channelRoom: (channel) =>
      channel.startsWith(ROOM_CHANNEL) && channel.length > ROOM_CHANNEL.length + 1 && channel.endsWith('#')
        ? channel.slice(ROOM_CHANNEL.length, -1)
        : undefined,
    // A deploy: `io.close()` ends every socket with "server shutting down", one of the reasons whose
    // session the adapter saves (the Redis Streams adapter with a SET), then closes the HTTP server;
    // closing the Redis clients afterwards waits for those SETs to be answered.
    close: async () => {
      await io.close();
      await Promise.all(clients.map((client) => client.close()));
    },
  };
}
