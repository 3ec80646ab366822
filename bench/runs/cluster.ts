/**
 * cluster-fanout: two server children of one system on a private Redis, a
 * client child per node holding that node's connections, all in one room.
 * The first node runs the plan; its broadcasts reach its own connections
 * directly and the second node's through Redis. Every client checks every
 * message as in the broadcast scenarios; CPU is both servers' together.
 * cluster-fanout-durable runs the same with durable streams on, and reads
 * Redis's own CPU over the delivery (INFO cpu) as well.
 */
import { Child, PhaseError } from '../children.js';
import { LatencyHistogram } from '../histogram.js';
import type { MetricName } from '../metrics.js';
import type { BroadcastPlan, ClientCommand, ClientReply, ServerCommand, ServerReply, SystemName } from '../protocol.js';
import { redisCpu, type RedisCpu } from '../redis-cpu.js';
import { startRedisServer } from '../redis-server.js';
import type { ClusterScenario } from '../scenarios.js';
import { deliver, describeFaults } from './broadcast.js';
import { closeSession, connect, serverStats, type Outcome, type Session } from './session.js';

const START_TIMEOUT_MS = 20_000;
const ROOM = 'r0';
/** Redis's idle CPU is read over this long before the delivery and after it. */
const REDIS_IDLE_MS = 1_500;

/** Redis's CPU per ms over `REDIS_IDLE_MS` of nothing sent. */
async function idleRate(engine: RedisCpu): Promise<number> {
  const from = { us: await engine.read(), at: performance.now() };
  await new Promise((resolve) => setTimeout(resolve, REDIS_IDLE_MS));
  return ((await engine.read()) - from.us) / (performance.now() - from.at);
}
const WARMUP: Omit<BroadcastPlan, 'rooms'> = { turns: 5, perTurn: 1, payloadBytes: 100, intervalMs: 0, sampleRss: false };

export async function runCluster(system: SystemName, scenario: ClusterScenario, log: (line: string) => void): Promise<Outcome> {
  const redis = await startRedisServer();
  const env: Record<string, string> = scenario.durable === true ? { BENCH_DURABLE: '1' } : {};
  const nodes: Session[] = [];
  let engine: RedisCpu | undefined;
  try {
    engine = await redisCpu(redis.url);
    for (let i = 0; i < scenario.nodes; i++) nodes.push(await openNode(system, i, redis.url, log, env));
    // cluster-fanout-durable (both variants): berth's clients speak berth.v1, whose messages durable streams number.
    const v1 = system === 'berth' && scenario.v1 === true;
    for (const node of nodes) await connect(node, [{ room: ROOM, fast: scenario.perNode, slow: 0 }], false, v1);
    // Every client process of every node, driven by the first node's broadcasts.
    const all: Session = { ...nodes[0]!, clients: nodes.map((node) => node.clients[0]!) };

    // The warm-up also proves the path through Redis: the second node's clients must get it all.
    const warm = await deliver(all, [ROOM], WARMUP, 60_000, 'warm-up');
    if (warm.report.delivered !== warm.report.expected) {
      throw new PhaseError(
        `warm-up: ${warm.report.delivered} of ${warm.report.expected} delivered across the cluster${describeFaults(warm.report)}` +
          `${warm.report.firstErrors.length > 0 ? `; ${warm.report.firstErrors.slice(0, 3).join('; ')}` : ''}`,
      );
    }
    // Redis's own CPU while nothing is sent (its cron, the nodes' heartbeats and blocking reads): what the
    // delivery's span would cost it anyway, taken off `redis_cpu_us_per_message`.
    const idleBefore = await idleRate(engine);
    const othersBefore = await Promise.all(nodes.slice(1).map((node) => serverStats(node, [ROOM])));
    const redisBefore = await engine.read();
    const commandsBefore = await engine.commands();
    const messages = scenario.plan.turns * scenario.plan.perTurn;
    log(
      `sending ${messages.toLocaleString('en-US')} × ${scenario.plan.payloadBytes} B from node 1 to ${(scenario.perNode * scenario.nodes).toLocaleString('en-US')} connections on ${scenario.nodes} nodes`,
    );
    const { started, finished, report } = await deliver(all, [ROOM], scenario.plan, scenario.deliverTimeoutMs, 'delivery');
    const othersAfter = await Promise.all(nodes.slice(1).map((node) => serverStats(node, [ROOM])));
    const redisRawUs = (await engine.read()) - redisBefore;
    const commandsUs = (await engine.commands()) - commandsBefore;
    // Idle before and after, averaged: over a long delivery a small error in the rate is many µs per message.
    const redisIdleRate = (idleBefore + (await idleRate(engine))) / 2;

    const otherCpuUs = othersAfter.reduce((sum, stats, i) => sum + stats.cpuUs - othersBefore[i]!.cpuUs, 0);
    const senderCpuUs = finished.cpuUs - started.cpuUs;
    const wallMs = report.completedAt - started.startedAt;
    const redisUs = redisRawUs - redisIdleRate * wallMs;
    const complete = report.delivered === report.expected && report.duplicates + report.gaps + report.malformed + report.closedEarly === 0;
    const metrics: Partial<Record<MetricName, number>> = {
      delivered_fraction: report.expected === 0 ? 0 : report.delivered / report.expected,
    };
    const notes: string[] = [];
    const errors = [await serverStats(nodes[0]!, [ROOM]), ...othersAfter].filter((stats) => stats.errors > 0);
    for (const stats of errors) notes.push(`a node reported ${stats.errors} errors: ${stats.firstErrors.join('; ')}`);
    log(
      `${report.delivered.toLocaleString('en-US')}/${report.expected.toLocaleString('en-US')} delivered in ${(wallMs / 1000).toFixed(2)} s, ` +
        `CPU ${(senderCpuUs / 1000).toFixed(0)} ms on node 1 + ${(otherCpuUs / 1000).toFixed(0)} ms on the others, Redis ${(redisRawUs / 1000).toFixed(0)} ms (${(redisUs / 1000).toFixed(0)} above its idle ${(redisIdleRate / 10).toFixed(2)} % of a core; ` +
        `${(commandsUs / 1000).toFixed(0)} ms executing commands)`,
    );
    if (!complete) {
      return {
        metrics,
        notes,
        failure: `delivery incomplete: ${report.delivered} of ${report.expected}, ${report.gaps} gaps, ${report.duplicates} duplicates`,
      };
    }
    metrics.deliveries_per_s = report.delivered / (wallMs / 1000);
    metrics.server_cpu_us_per_delivery = (senderCpuUs + otherCpuUs) / report.delivered;
    // Redis's time executing commands: over a long delivery (Socket.IO's last a minute) its idle CPU
    // subtracted leaves noise around zero, even below it; command time is what the messages cost it.
    if (scenario.metrics.includes('redis_cpu_us_per_message')) metrics.redis_cpu_us_per_message = commandsUs / messages;
    const latency = new LatencyHistogram();
    latency.add(report.latency);
    const p99 = latency.quantile(0.99);
    if (p99 !== null) metrics.p99_ms = p99;
    return { metrics, notes };
  } catch (error) {
    return { metrics: {}, notes: [], failure: error instanceof Error ? error.message : String(error) };
  } finally {
    await Promise.all(nodes.map((node) => closeSession(node)));
    await engine?.close();
    await redis.stop();
  }
}

/** The server child of node `index + 1` of a cluster of `system` on `redisUrl` (and `env`); it has answered `ready`. */
export function startNodeServer(system: SystemName, index: number, redisUrl: string, env: Record<string, string> = {}) {
  return Child.start<ServerCommand, ServerReply>(`${system} node ${index + 1}`, './server-process.ts', [system], {
    exposeGc: true,
    timeoutMs: START_TIMEOUT_MS,
    env: { ...env, BENCH_REDIS_URL: redisUrl },
  });
}

async function openNode(
  system: SystemName,
  index: number,
  redisUrl: string,
  log: (line: string) => void,
  env: Record<string, string>,
): Promise<Session> {
  const starts = [
    startNodeServer(system, index, redisUrl, env),
    Child.start<ClientCommand, ClientReply>(`client of node ${index + 1}`, './client-process.ts', [system], {
      timeoutMs: START_TIMEOUT_MS,
    }),
  ] as const;
  const settled = await Promise.allSettled(starts);
  const failed = settled.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed !== undefined) {
    await Promise.all(settled.map((result) => (result.status === 'fulfilled' ? result.value.child.kill() : undefined)));
    throw failed.reason;
  }
  const [server, client] = [await starts[0], await starts[1]];
  if (server.ready.type !== 'ready') throw new PhaseError(`${system} node ${index + 1} did not start`);
  return {
    system,
    server: server.child,
    port: server.ready.port,
    clients: [client.child],
    log: (line) => log(`node ${index + 1}: ${line}`),
  };
}
