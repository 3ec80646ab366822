/**
 * berth as an application uses it: a standalone runtime, `connection.join`
 * on connect, `runtime.sendToRoom` to broadcast. Defaults everywhere else
 * (heartbeat included, but in idle-heartbeat; no compression, but in fanout-deflate), as the other two systems keep theirs. As a cluster
 * node, the Redis adapter from `berth/redis` (with `durable: true` in
 * cluster-fanout-durable and cluster-resume). Sessions of dropped `berth.v1`
 * connections are kept by default; resume-storm only makes room for all of them.
 */
import { createRuntime } from '../../src/index.js';
import { createRedisAdapter } from '../../src/redis.js';
import { HOST } from '../protocol.js';
import { ErrorLog, roomOf, type StartOptions, type SystemServer } from './system.js';

const PREFIX = 'bench';
/** The adapter's channel of a room: `<prefix>:{room:<room>}` (the braces are a Redis Cluster hash tag). */
const ROOM_CHANNEL = `${PREFIX}:{room:`;

export async function startBerth({ redisUrl, recoverSessions, heartbeat, compression, durable }: StartOptions): Promise<SystemServer> {
  if (durable === true && redisUrl === undefined) throw new Error('durable streams need a cluster: start berth with a Redis');
  const runtime = createRuntime({
    port: 0,
    host: HOST,
    // cluster-fanout-durable, cluster-resume: every stream numbered in Redis, sessions kept there.
    ...(redisUrl !== undefined && {
      adapter: createRedisAdapter({ url: redisUrl, prefix: PREFIX, ...(durable === true && { durable: true }) }),
    }),
    // The default window (2 minutes, as Socket.IO's maxDisconnectionDuration), room for every client's session.
    ...(recoverSessions !== undefined && { recovery: { windowMs: 120_000, maxSessions: recoverSessions } }),
    // idle-heartbeat: the runtime-wide sweep at the scenario's interval and timeout.
    ...(heartbeat !== undefined && { heartbeat: { intervalMs: heartbeat.intervalMs, timeoutMs: heartbeat.timeoutMs } }),
    // fanout-deflate: permessage-deflate with its defaults (threshold 1 KiB, level 6), or the level asked for.
    ...(compression !== undefined && { compression: compression.level === undefined ? true : { level: compression.level } }),
  });
  const errors = new ErrorLog();
  // berth has no per-room count in its public API short of the O(n) snapshot(),
  // so count completed joins the way an application would, and drop them on close.
  const members = new Map<string, number>();
  // The room each joined connection is in, as ws's handler keeps it in its closure.
  const joined = new WeakMap<object, string>();
  let received = 0;
  runtime.on('connection', (connection) => {
    const room = roomOf(connection.request.url);
    connection.join(room).then(
      (ok) => {
        if (!ok) return errors.note(new Error(`join of ${room} refused for ${connection.id} (${connection.state})`));
        joined.set(connection, room);
        members.set(room, (members.get(room) ?? 0) + 1);
      },
      (error: unknown) => errors.note(error),
    );
  });
  runtime.on('message', () => {
    received++;
  });
  runtime.on('close', ({ connection }) => {
    const room = joined.get(connection);
    if (room === undefined) return;
    joined.delete(connection);
    members.set(room, (members.get(room) ?? 1) - 1);
  });
  runtime.on('error', ({ error }) => errors.note(error));
  await runtime.ready;
  const address = runtime.address();
  if (address === null) throw new Error('berth runtime has no address');
  return {
    port: address.port,
    connections: () => runtime.health().connections.current,
    members: (room) => members.get(room) ?? 0,
    received: () => received,
    errors: () => ({ count: errors.count, first: errors.first }),
    broadcast: (room, payload) => runtime.sendToRoom(room, payload),
    channelRoom: (channel) =>
      channel.startsWith(ROOM_CHANNEL) && channel.endsWith('}') ? channel.slice(ROOM_CHANNEL.length, -1) : undefined,
    // A deploy: berth.v1 clients are closed with 1012 and a retry-after, their sessions stay resumable on the other nodes.
    close: () => runtime.close(),
  };
}
