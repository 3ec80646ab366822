/**
 * The IPC vocabulary between the orchestrator (bench/run.ts) and its
 * children: one server process (bench/server-process.ts) and one or more
 * client processes (bench/client-process.ts). Every command carries an `id`
 * and is answered by exactly one reply with the same `id`, so the
 * orchestrator can time out each phase on its own.
 */

/** `socketio-sharded` is Socket.IO on its sharded Redis adapter, a cluster mode only (cluster-spread). */
export type SystemName = 'berth' | 'ws' | 'socketio' | 'socketio-sharded';
export const SYSTEMS: readonly SystemName[] = ['berth', 'ws', 'socketio', 'socketio-sharded'];
export const SYSTEM_LABELS: Record<SystemName, string> = {
  berth: 'berth',
  ws: 'ws',
  socketio: 'Socket.IO',
  'socketio-sharded': 'Socket.IO sharded',
};
/** Whether the system's clients speak Engine.IO / Socket.IO rather than plain WebSocket. */
export const speaksSocketIo = (system: SystemName): boolean => system === 'socketio' || system === 'socketio-sharded';

/** Every socket of the benchmark stays on loopback. */
export const HOST = '127.0.0.1';

/** What the server sends, turn by turn. */
export interface BroadcastPlan {
  readonly rooms: readonly string[];
  readonly turns: number;
  /** Messages to each room per turn. */
  readonly perTurn: number;
  readonly payloadBytes: number;
  /** 0: next turn on `setImmediate`; otherwise turns start this many ms apart. */
  readonly intervalMs: number;
  /** Sample the server's RSS every millisecond from just before the first send until `finish`. */
  readonly sampleRss: boolean;
  /** `'chat'`: realistic chat JSON (`chatPayloadMaker`) instead of the padded message [default 'filler']. */
  readonly payload?: 'filler' | 'chat';
  /** Sequence number of each room's first message [default 0]: a plan can go on where another stopped. */
  readonly firstSeq?: number;
}

export type ServerCommand =
  | { readonly id: number; readonly type: 'stats'; readonly rooms: readonly string[]; readonly gc: boolean }
  | { readonly id: number; readonly type: 'broadcast'; readonly plan: BroadcastPlan }
  | { readonly id: number; readonly type: 'finish' }
  /** Starts the V8 CPU profiler in the server process (`--cpu-prof DIR`). */
  | { readonly id: number; readonly type: 'profile-start' }
  /** Stops it and writes the profile to `path` (a `.cpuprofile`, for Chrome DevTools or speedscope). */
  | { readonly id: number; readonly type: 'profile-stop'; readonly path: string }
  /**
   * A graceful shutdown (cluster-resume/graceful): stops any plan running, closes the system as an
   * application would on a deploy (berth `runtime.close()`, Socket.IO `io.close()`) and its Redis
   * clients, answers, and exits.
   */
  | { readonly id: number; readonly type: 'shutdown' };

export interface ServerStats {
  /** Open connections as the system itself counts them. */
  readonly connections: number;
  /** Joined members per requested room. */
  readonly members: Record<string, number>;
  /** Client → server messages handled. */
  readonly received: number;
  readonly errors: number;
  readonly firstErrors: readonly string[];
  readonly rss: number;
  readonly heapUsed: number;
  /** Process user + system CPU since start, µs. */
  readonly cpuUs: number;
  /** What the node's Redis subscriber received since start (cluster nodes; zero otherwise). */
  readonly bus: BusCounts;
}

/** Pub/sub messages a cluster node's Redis client received (bench/bus-tally.ts). */
export interface BusCounts {
  readonly received: number;
  /** Those on any channel other than that of a room with a member on this node. */
  readonly unrelated: number;
}

export interface BroadcastStarted {
  /** `performance.timeOrigin + performance.now()` just before the first send. */
  readonly startedAt: number;
  /** When the last turn had been handed to the system. */
  readonly lastSendAt: number;
  readonly cpuUs: number;
}

export interface BroadcastFinished {
  readonly cpuUs: number;
  /** RSS just before the first send (after a gc). */
  readonly baseRss: number;
  /** Highest sampled RSS; equals `baseRss` when sampling was off. */
  readonly peakRss: number;
  readonly samples: number;
}

export type ServerReply =
  | { readonly id: 0; readonly type: 'ready'; readonly port: number }
  | { readonly id: number; readonly type: 'stats'; readonly stats: ServerStats }
  | { readonly id: number; readonly type: 'broadcast'; readonly started: BroadcastStarted }
  | { readonly id: number; readonly type: 'finish'; readonly finished: BroadcastFinished }
  | { readonly id: number; readonly type: 'profile-start' }
  | { readonly id: number; readonly type: 'profile-stop' }
  | { readonly id: number; readonly type: 'shutdown'; readonly closeMs: number }
  | { readonly id: number; readonly type: 'error'; readonly message: string };

/** Connections a client process opens: `fast` ones read everything, `slow` ones stop reading after the handshake. */
export interface ConnectionGroup {
  readonly room: string;
  /** The server to connect to [default: the `connect` command's `port`], so one client process can hold several nodes' connections. */
  readonly port?: number;
  readonly fast: number;
  readonly slow: number;
}

export type ClientCommand =
  | {
      readonly id: number;
      readonly type: 'connect';
      readonly port: number;
      readonly groups: readonly ConnectionGroup[];
      /** Handshakes in flight at once. */
      readonly concurrency: number;
      /** Offer permessage-deflate (fanout-deflate) [default false]. */
      readonly compression?: boolean;
      /** berth: speak `berth.v1` rather than plain WebSocket (cluster-fanout-durable) [default false]. */
      readonly v1?: boolean;
    }
  /** Resets the counters: each connection of `room` must now receive sequence numbers 0..n-1. */
  | { readonly id: number; readonly type: 'expect'; readonly perRoom: Record<string, number> }
  /** Answers once every fast connection has all it expects, or after `timeoutMs` with what arrived. */
  | { readonly id: number; readonly type: 'wait'; readonly timeoutMs: number }
  | { readonly id: number; readonly type: 'report' }
  | {
      readonly id: number;
      readonly type: 'churn';
      readonly port: number;
      readonly cycles: number;
      readonly concurrency: number;
      readonly timeoutMs: number;
    }
  /** resume-storm: opens `count` real clients (berth/client or socket.io-client) per room; each room's sequence has `messages` numbers. */
  | {
      readonly id: number;
      readonly type: 'resume-open';
      readonly port: number;
      readonly groups: readonly { readonly room: string; readonly count: number }[];
      readonly messages: number;
      readonly concurrency: number;
    }
  /** Answers once every client has received sequence numbers 0..upTo-1, or after `timeoutMs`. */
  | { readonly id: number; readonly type: 'resume-received'; readonly upTo: number; readonly timeoutMs: number }
  /** Destroys every client's TCP socket at once (no close frame); the clients reconnect by themselves. */
  | { readonly id: number; readonly type: 'resume-drop' }
  /** Answers once every client is back after the drop (resumed or not), or after `timeoutMs`. */
  | { readonly id: number; readonly type: 'resume-back'; readonly timeoutMs: number }
  /** What the clients have now; `upTo` [default: that of the last `resume-received`] bounds the sequence numbers checked. */
  | { readonly id: number; readonly type: 'resume-report'; readonly upTo?: number }
  | ClusterResumeCommand;

/**
 * cluster-resume: real clients of several nodes, every node publishing to every room, each with
 * its own sequence (bench/clients/cluster-resume.ts). A message's number is
 * `publisher × PUBLISHER_SPAN + k`, k counting from 0 per publisher and room.
 */
export type ClusterResumeCommand =
  /** Opens `count` clients of each group on node `node` (an index into `ports`); each publisher has `messages` numbers per room. */
  | {
      readonly id: number;
      readonly type: 'cr-open';
      readonly ports: readonly number[];
      readonly groups: readonly { readonly room: string; readonly node: number; readonly count: number }[];
      readonly publishers: number;
      readonly messages: number;
      readonly concurrency: number;
    }
  /** Answers once every client has number `upTo[p] - 1` of every publisher p with `upTo[p] > 0`, or after `timeoutMs`. */
  | { readonly id: number; readonly type: 'cr-received'; readonly upTo: readonly number[]; readonly timeoutMs: number }
  /**
   * Node `node` went away at `at` (wall ms); `drain`: it is being shut down, and the balancer takes it
   * out now. Answers once every client whose home it was is back, or after `timeoutMs`.
   */
  | {
      readonly id: number;
      readonly type: 'cr-back';
      readonly node: number;
      readonly at: number;
      readonly drain: boolean;
      readonly timeoutMs: number;
    }
  /** What the clients have: every publisher p's numbers 0..bounds[p][room]-1 are checked; `highest` in the reply says how far each got. */
  | { readonly id: number; readonly type: 'cr-report'; readonly bounds: readonly Readonly<Record<string, number>>[] };

/** Sequence numbers of one publisher in a cluster-resume message: publisher p sends p × this + k. */
export const PUBLISHER_SPAN = 1_000_000;

export interface ClusterResumeReport {
  readonly clients: number;
  /** Clients whose home node went away. */
  readonly moved: number;
  /** Of those, the ones back on another node (berth: `resumed`; Socket.IO: `connect`). */
  readonly back: number;
  /** Of those, the ones whose session was recovered. */
  readonly recovered: number;
  /** Clients of the other nodes that dropped too (they should not). */
  readonly strayDrops: number;
  /** When the last moved client came back (wall ms); 0 if none did. */
  readonly lastBackAt: number;
  /** Per moved client back: ms from the node's end until it was back. */
  readonly backMs: readonly number[];
  /** Per moved client: ms from the node's end until its first live message (sent after it was back); absent for those without one. */
  readonly liveMs: readonly number[];
  /** Clients that have every checked number. */
  readonly haveAll: number;
  /** Clients that have the last number every `cr-received` waited for. */
  readonly reached: number;
  readonly missing: number;
  /** `missing` by publisher (node). */
  readonly missingBy: readonly number[];
  readonly duplicated: number;
  readonly reordered: number;
  readonly malformed: number;
  /** berth `lost` events (streams the server said it could not heal); Socket.IO has none. */
  readonly lostEvents: number;
  readonly attempts: number;
  readonly failedAttempts: number;
  /** Per publisher and room, the highest k any client of this process received (-1: none). */
  readonly highest: readonly Readonly<Record<string, number>>[];
  readonly firstErrors: readonly string[];
  readonly cpuUs: number;
}

export interface DeliveryReport {
  /** In-order, first-time deliveries to fast connections. */
  readonly delivered: number;
  readonly expected: number;
  /** A sequence number at or below one already seen on that connection. */
  readonly duplicates: number;
  /** Sequence numbers skipped over (a later one arrived first). */
  readonly gaps: number;
  /** Messages that were not well-formed benchmark messages, or beyond the expected range. */
  readonly malformed: number;
  /** Fast connections closed while the scenario ran. */
  readonly closedEarly: number;
  /** Fast connections that still miss messages. */
  readonly incompleteConnections: number;
  /** Server pings the process's connections answered since it started (WebSocket pings; Socket.IO's `2` packets). */
  readonly pings: number;
  /** The first errors and closes the connections noted (why a connection closed). */
  readonly firstErrors: readonly string[];
  /** When the last fast connection got its last message; 0 if not all did. */
  readonly completedAt: number;
  /** Deliveries to slow connections (for information; they are exempt). */
  readonly slowDelivered: number;
  /** Latency histogram of fast deliveries, sparse `[bucket, count]` pairs (see histogram.ts). */
  readonly latency: readonly (readonly [number, number])[];
  readonly cpuUs: number;
  /** Bytes the process's connections read from their sockets since the phase began (frames and their headers, all connections). */
  readonly wireBytes: number;
  /** Compressed messages inflated (and then read as plain ones). */
  readonly inflated: number;
  /** Of those, the ones found whole to be exactly what the server sent (the sampled connections). */
  readonly checkedWhole: number;
  /** Compressed messages counted without being inflated (connections outside the sample, when the server compresses each message on its own). */
  readonly counted: number;
}

export interface ConnectReport {
  readonly opened: number;
  readonly failed: number;
  readonly retries: number;
  readonly firstErrors: readonly string[];
  readonly ms: number;
}

export interface ChurnReport {
  readonly completed: number;
  readonly failed: number;
  readonly firstErrors: readonly string[];
  readonly ms: number;
}

export interface ResumeReport {
  readonly clients: number;
  /** Clients back after the drop: berth's `resumed` event, Socket.IO's `connect`. */
  readonly back: number;
  /** Of those, how many had their session recovered. */
  readonly recovered: number;
  /** When the drop began (just before the first socket was destroyed); 0 before the drop. */
  readonly droppedAt: number;
  /** When the latest client came back; 0 if none has. */
  readonly lastBackAt: number;
  /** Milliseconds from the drop until each client that is back came back (in no order). */
  readonly backMs: readonly number[];
  /** Clients that have received every sequence number 0..upTo-1 of the last `resume-received`. */
  readonly haveAll: number;
  /** Clients that have received sequence number upTo-1, the last of that phase. */
  readonly reached: number;
  /** Sequence numbers, over all clients, not (yet) received, out of 0..messages-1. */
  readonly missing: number;
  /** Extra copies of a sequence number already received. */
  readonly duplicated: number;
  /** First deliveries of a number below one the client had already received (late, out of order). */
  readonly reordered: number;
  /** Messages that were not benchmark messages of the client's room, or out of range. */
  readonly malformed: number;
  /** Reconnect attempts begun since the drop (berth: `connecting` states; Socket.IO: `reconnect_attempt`). */
  readonly attempts: number;
  /** Reconnect attempts that failed (a connect error, a close before the client was back). */
  readonly failedAttempts: number;
  readonly firstErrors: readonly string[];
  readonly cpuUs: number;
}

export type ClientReply =
  | { readonly id: 0; readonly type: 'ready' }
  | { readonly id: number; readonly type: 'connect'; readonly report: ConnectReport }
  | { readonly id: number; readonly type: 'expect'; readonly cpuUs: number }
  | { readonly id: number; readonly type: 'wait'; readonly report: DeliveryReport }
  | { readonly id: number; readonly type: 'report'; readonly report: DeliveryReport }
  | { readonly id: number; readonly type: 'churn'; readonly report: ChurnReport }
  | { readonly id: number; readonly type: 'resume-open'; readonly report: ConnectReport }
  | { readonly id: number; readonly type: 'resume-received'; readonly report: ResumeReport }
  | { readonly id: number; readonly type: 'resume-drop'; readonly report: ResumeReport }
  | { readonly id: number; readonly type: 'resume-back'; readonly report: ResumeReport }
  | { readonly id: number; readonly type: 'resume-report'; readonly report: ResumeReport }
  | { readonly id: number; readonly type: 'cr-open'; readonly report: ConnectReport }
  | { readonly id: number; readonly type: 'cr-received'; readonly report: ClusterResumeReport }
  | { readonly id: number; readonly type: 'cr-back'; readonly report: ClusterResumeReport }
  | { readonly id: number; readonly type: 'cr-report'; readonly report: ClusterResumeReport }
  | { readonly id: number; readonly type: 'error'; readonly message: string };

/** Wall-clock milliseconds comparable across processes on one machine. */
export function wallNow(): number {
  return performance.timeOrigin + performance.now();
}
