/**
 * What the server process needs of each system under test. The three
 * implementations do the same work the way an application would write it
 * with that library: join the room named by the client's URL on connect,
 * count client messages, broadcast to a room.
 */
/** How the server process starts a system. */
export interface StartOptions {
  /** Join a cluster over this Redis (cluster-fanout, cluster-spread). */
  readonly redisUrl?: string | undefined;
  /**
   * Keep the session of a dropped connection for 2 minutes, for up to this many connections
   * (resume-storm); otherwise each system's default (berth keeps sessions, Socket.IO does not).
   */
  readonly recoverSessions?: number | undefined;
  /**
   * Ping every `intervalMs`, drop a client that has not answered within `timeoutMs` (idle-heartbeat);
   * otherwise each system's default (berth 30 s + 10 s, Socket.IO 25 s + 20 s, ws none).
   */
  readonly heartbeat?: { readonly intervalMs: number; readonly timeoutMs: number } | undefined;
  /**
   * Negotiate permessage-deflate with every client that offers it (fanout-deflate): berth's
   * `compression` (`level` when given, otherwise its defaults), ws's and Socket.IO's
   * `perMessageDeflate: true`; otherwise none of them compresses.
   */
  readonly compression?: { readonly level?: number | undefined } | undefined;
  /**
   * Durable streams on the cluster's Redis (cluster-fanout-durable, cluster-resume): berth's
   * `createRedisAdapter({ …, durable: true })`; Socket.IO's Redis Streams adapter
   * (`@socket.io/redis-streams-adapter`) with `connectionStateRecovery`, instead of the classic adapter.
   */
  readonly durable?: boolean | undefined;
}

export interface SystemServer {
  readonly port: number;
  /** Open connections, as the system itself counts them. */
  connections(): number;
  /** Connections whose join of `room` has completed. */
  members(room: string): number;
  /** Client → server messages handled. */
  received(): number;
  /** Errors the system reported, and the first few of them. */
  errors(): { count: number; first: readonly string[] };
  /** Sends `payload` to every member of `room`. */
  broadcast(room: string, payload: string): void;
  /** The room whose broadcasts a cluster's pub/sub channel carries; undefined for any other channel (and without a cluster). */
  channelRoom(channel: string): string | undefined;
  /** Shuts down as an application does on a deploy (cluster-resume/graceful); resolves once the system and its Redis clients are closed. */
  close(): Promise<void>;
}

/** The room a client asked for with `?room=…` (clients always give one). */
export function roomOf(url: string | undefined): string {
  const room = new URL(url ?? '/', 'http://bench.invalid').searchParams.get('room');
  if (!room) throw new Error(`no room in ${url ?? '(no url)'}`);
  return room;
}

/** Keeps a count and the first few messages of the errors a system reports. */
export class ErrorLog {
  count = 0;
  readonly first: string[] = [];

  note(error: unknown): void {
    this.count++;
    if (this.first.length < 5) this.first.push(error instanceof Error ? `${error.name}: ${error.message}` : String(error));
  }
}
