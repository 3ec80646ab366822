/**
 * The server child: starts one system under test, then does what the
 * orchestrator asks over IPC — report counts and memory, run a broadcast plan
 * (measuring its own CPU and, on request, sampling its RSS), finish it.
 * Started by bench/children.ts as `node --expose-gc --import tsx
 * bench/server-process.ts <system>`, with BENCH_REDIS_URL set to run as a
 * cluster node (counting what its Redis subscriber receives),
 * BENCH_RECOVERY_SESSIONS to keep sessions of dropped connections,
 * BENCH_HEARTBEAT (`intervalMs,timeoutMs`) to set the heartbeat and
 * BENCH_COMPRESSION=1 to negotiate permessage-deflate, BENCH_DURABLE=1 for
 * durable streams on the cluster's Redis; it dies with its parent's IPC
 * channel, and exits by itself after a `shutdown`.
 */
import { BusTally } from './bus-tally.js';
import { startProfile, stopProfile } from './cpu-profile.js';
import { chatPayloadMaker, payloadMaker } from './payload.js';
import { RssSampler } from './rss-sampler.js';
import { wallNow, type BroadcastPlan, type ServerCommand, type ServerReply, type SystemName } from './protocol.js';
import { startBerth } from './servers/berth.js';
import { startSocketIo, startSocketIoSharded } from './servers/socketio.js';
import type { StartOptions, SystemServer } from './servers/system.js';
import { startWs } from './servers/ws.js';

/** Set by the cluster scenario: the server joins a cluster over this Redis. */
const redisUrl = process.env.BENCH_REDIS_URL || undefined;
/**
 * Set by resume-storm: sessions kept for this many connections (berth's `recovery`,
 * Socket.IO's `connectionStateRecovery`, both for 2 minutes).
 */
const recoverSessions = Number(process.env.BENCH_RECOVERY_SESSIONS) || undefined;
/**
 * Set by fanout-deflate: every system negotiates permessage-deflate. BENCH_DEFLATE_LEVEL (1–9,
 * from the environment of `npm run bench`) sets berth's `compression.level` instead of its default.
 */
const compression =
  process.env.BENCH_COMPRESSION === '1'
    ? { level: process.env.BENCH_DEFLATE_LEVEL ? Number(process.env.BENCH_DEFLATE_LEVEL) : undefined }
    : undefined;
/** Set by cluster-fanout-durable and cluster-resume: durable streams on the cluster's Redis (servers/system.ts). */
const durable = process.env.BENCH_DURABLE === '1';
/** Set by idle-heartbeat: `intervalMs,timeoutMs` of every system's heartbeat. */
const [heartbeatInterval, heartbeatTimeout] = (process.env.BENCH_HEARTBEAT ?? '').split(',').map(Number);
const heartbeat =
  heartbeatInterval !== undefined && heartbeatInterval > 0 && heartbeatTimeout !== undefined && heartbeatTimeout > 0
    ? { intervalMs: heartbeatInterval, timeoutMs: heartbeatTimeout }
    : undefined;

const starters: Record<SystemName, (options: StartOptions) => Promise<SystemServer>> = {
  berth: startBerth,
  ws: startWs,
  socketio: startSocketIo,
  'socketio-sharded': startSocketIoSharded,
};

const system = process.argv[2] as SystemName;
const start = starters[system];
if (start === undefined) throw new Error(`unknown system ${String(system)}`);
// Without the orchestrator nobody would ever stop this process.
process.on('disconnect', () => process.exit(0));

const gc = (globalThis as { gc?: () => void }).gc;
/** A cluster node counts what its Redis subscriber receives, from before it subscribes. */
const bus = redisUrl === undefined ? undefined : new BusTally();
const server = await start({ redisUrl, recoverSessions, heartbeat, compression, durable });
const cpuUs = () => {
  const { user, system: sys } = process.cpuUsage();
  return user + sys;
};

/** Started now, so that its own memory is in every baseline. */
const sampler = new RssSampler();
let sampling = false;
let baseRss = 0;
/** Set by `shutdown`: plans still running stop at their next turn, and the process exits once it has answered. */
let stopping = false;
let exitAfterReply = false;

function reply(message: ServerReply): void {
  if (message.type === 'shutdown' && exitAfterReply) process.send!(message, () => process.exit(0));
  else process.send!(message);
}

/** Runs the plan's turns; resolves when the last turn has been handed to the system. */
function run(plan: BroadcastPlan, started: number): Promise<number> {
  const make = plan.payload === 'chat' ? chatPayloadMaker(plan.payloadBytes).make : payloadMaker(plan.payloadBytes);
  const seqs = plan.rooms.map(() => plan.firstSeq ?? 0);
  let turn = 0;
  return new Promise((resolve, reject) => {
    const step = () => {
      try {
        for (let k = 0; k < plan.perTurn; k++) {
          for (let r = 0; r < plan.rooms.length; r++) {
            server.broadcast(plan.rooms[r]!, make(seqs[r]!++, wallNow()));
          }
        }
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
        return;
      }
      if (++turn === plan.turns || stopping) return resolve(wallNow());
      if (plan.intervalMs === 0) setImmediate(step);
      // Paced turns keep to a schedule from the start, so timer slack does not add up.
      else setTimeout(step, Math.max(0, started + turn * plan.intervalMs - wallNow()));
    };
    step();
  });
}

async function handle(command: ServerCommand): Promise<ServerReply> {
  switch (command.type) {
    case 'stats': {
      // Read before collecting, so churn's CPU per cycle does not include the benchmark's own gc().
      const cpu = cpuUs();
      if (command.gc) {
        if (gc === undefined) throw new Error('server needs --expose-gc');
        gc();
        gc();
      }
      const errors = server.errors();
      const members: Record<string, number> = {};
      for (const room of command.rooms) members[room] = server.members(room);
      const memory = process.memoryUsage();
      return {
        id: command.id,
        type: 'stats',
        stats: {
          connections: server.connections(),
          members,
          received: server.received(),
          errors: errors.count,
          firstErrors: errors.first,
          rss: memory.rss,
          heapUsed: memory.heapUsed,
          cpuUs: cpu,
          bus: bus?.counts(server.channelRoom, (room) => server.members(room) > 0) ?? { received: 0, unrelated: 0 },
        },
      };
    }
    case 'broadcast': {
      const { plan } = command;
      // A collection now keeps garbage of the setup out of the peak.
      if (plan.sampleRss) gc?.();
      baseRss = process.memoryUsage.rss();
      sampling = plan.sampleRss;
      if (sampling) sampler.start(baseRss);
      const cpu = cpuUs();
      const startedAt = wallNow();
      const lastSendAt = await run(plan, startedAt);
      return { id: command.id, type: 'broadcast', started: { startedAt, lastSendAt, cpuUs: cpu } };
    }
    case 'finish': {
      const cpu = cpuUs();
      const { peak, samples } = sampling ? sampler.stop() : { peak: baseRss, samples: 0 };
      sampling = false;
      return { id: command.id, type: 'finish', finished: { cpuUs: cpu, baseRss, peakRss: Math.max(peak, baseRss), samples } };
    }
    case 'profile-start':
      await startProfile();
      return { id: command.id, type: 'profile-start' };
    case 'profile-stop': {
      await stopProfile(command.path);
      return { id: command.id, type: 'profile-stop' };
    }
    case 'shutdown': {
      stopping = true;
      const began = performance.now();
      await server.close();
      exitAfterReply = true;
      return { id: command.id, type: 'shutdown', closeMs: performance.now() - began };
    }
  }
}

process.on('message', (command: ServerCommand) => {
  handle(command).then(reply, (error: unknown) =>
    reply({ id: command.id, type: 'error', message: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
  );
});
reply({ id: 0, type: 'ready', port: server.port });
