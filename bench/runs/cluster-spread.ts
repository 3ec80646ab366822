/**
 * cluster-spread: server children of one system on a private Redis, each
 * node hosting its own rooms (`n1r0` … `n1r9` on node 1), and client
 * children holding every node's connections between them. Every node runs
 * the plan on its own rooms, all nodes at once, so no message has a
 * recipient on another node: what a node's Redis subscriber receives beyond
 * its own rooms' channels is traffic it did not need
 * (`unrelated_messages_per_node`, counted in each server by bench/bus-tally.ts).
 * Every client checks every message as in the broadcast scenarios; CPU is
 * every node's together.
 */
import { Child, PhaseError } from '../children.js';
import type { MetricName } from '../metrics.js';
import type { BroadcastPlan, ClientCommand, ClientReply, ConnectionGroup, ServerStats, SystemName } from '../protocol.js';
import { startRedisServer } from '../redis-server.js';
import type { ClusterSpreadScenario } from '../scenarios.js';
import { deliverFrom, type Sender } from './broadcast.js';
import { startNodeServer } from './cluster.js';
import { awaitJoined, openConnections, serverStats, type ClientChild, type Outcome, type ServerChild, type Session } from './session.js';

const START_TIMEOUT_MS = 20_000;
const WARMUP: Omit<BroadcastPlan, 'rooms'> = { turns: 5, perTurn: 1, payloadBytes: 100, intervalMs: 0, sampleRss: false };
/** The buses are quiet once no node's subscriber has received anything for this long. */
const QUIET_MS = 300;
const SETTLE_TIMEOUT_MS = 15_000;

/** One node: its server (as a session without clients of its own) and its rooms' connections. */
interface ClusterNode {
  readonly session: Session;
  readonly groups: readonly ConnectionGroup[];
}

export async function runClusterSpread(system: SystemName, scenario: ClusterSpreadScenario, log: (line: string) => void): Promise<Outcome> {
  const redis = await startRedisServer();
  const servers: ServerChild[] = [];
  const clients: ClientChild[] = [];
  try {
    const nodes = await openNodes(system, scenario, redis.url, log);
    servers.push(...nodes.map((node) => node.session.server));
    clients.push(...(await startClients(system, scenario.clientProcesses)).map((start) => start.child));
    // Every client process and every node: the client processes hold connections to all of them.
    const all: Session = { ...nodes[0]!.session, clients, log };
    const groups = nodes.flatMap((node) => node.groups);
    const { ms, retries, deadline } = await openConnections(all, groups);
    for (const node of nodes) await awaitJoined(node.session, node.groups, deadline);
    log(`connected and joined in ${(ms / 1000).toFixed(1)} s${retries > 0 ? ` (${retries} retries)` : ''}`);
    const senders: Sender[] = nodes.map((node) => ({ server: node.session.server, rooms: node.groups.map((group) => group.room) }));

    const warm = await deliverFrom(all, senders, WARMUP, 60_000, 'warm-up');
    if (warm.report.delivered !== warm.report.expected) {
      throw new PhaseError(`warm-up: ${warm.report.delivered} of ${warm.report.expected} delivered across the cluster`);
    }
    const before = await settle(nodes, log);
    const broadcasts = scenario.plan.turns * scenario.plan.perTurn * scenario.roomsPerNode;
    log(
      `sending ${broadcasts.toLocaleString('en-US')} × ${scenario.plan.payloadBytes} B from each of ${scenario.nodes} nodes to its own ` +
        `${scenario.roomsPerNode} rooms of ${scenario.perRoom}`,
    );
    const { started, report, clientCpuUs } = await deliverFrom(all, senders, scenario.plan, scenario.deliverTimeoutMs, 'delivery');
    // A node may still be reading what other nodes published after its clients have everything: that is
    // work the broadcasts caused, so CPU and the bus counts are read once every subscriber is quiet.
    const after = await settle(nodes, log);

    const firstSend = Math.min(...started.map((start) => start.startedAt));
    const wallMs = report.completedAt - firstSend;
    const cpuUs = after.reduce((sum, stats, i) => sum + stats.cpuUs - before[i]!.cpuUs, 0);
    const received = after.map((stats, i) => stats.bus.received - before[i]!.bus.received);
    const unrelated = after.map((stats, i) => stats.bus.unrelated - before[i]!.bus.unrelated);
    const complete = report.delivered === report.expected && report.duplicates + report.gaps + report.malformed + report.closedEarly === 0;
    const metrics: Partial<Record<MetricName, number>> = {
      delivered_fraction: report.expected === 0 ? 0 : report.delivered / report.expected,
    };
    const notes: string[] = [];
    for (const [i, stats] of after.entries()) {
      if (stats.errors > 0) notes.push(`node ${i + 1} reported ${stats.errors} errors: ${stats.firstErrors.join('; ')}`);
    }
    log(
      `${report.delivered.toLocaleString('en-US')}/${report.expected.toLocaleString('en-US')} delivered in ${(wallMs / 1000).toFixed(2)} s, ` +
        `server CPU ${(cpuUs / 1000).toFixed(0)} ms over ${scenario.nodes} nodes, client CPU ${(clientCpuUs / 1000).toFixed(0)} ms; ` +
        `each node's subscriber received ${span(received)} messages, ${span(unrelated)} of them unrelated`,
    );
    for (const note of notes) log(`note: ${note}`);
    if (!complete) {
      return {
        metrics,
        notes,
        failure: `delivery incomplete: ${report.delivered} of ${report.expected}, ${report.gaps} gaps, ${report.duplicates} duplicates`,
      };
    }
    metrics.deliveries_per_s = report.delivered / (wallMs / 1000);
    metrics.server_cpu_us_per_delivery = cpuUs / report.delivered;
    metrics.unrelated_messages_per_node = unrelated.reduce((sum, count) => sum + count, 0) / unrelated.length;
    return { metrics, notes };
  } catch (error) {
    return { metrics: {}, notes: [], failure: error instanceof Error ? error.message : String(error) };
  } finally {
    // Servers first, so the clients see their sockets close instead of closing them.
    await Promise.all(servers.map((server) => server.kill()));
    await Promise.all(clients.map((client) => client.kill()));
    await redis.stop();
  }
}

/** Starts every node's server and names its rooms. */
async function openNodes(
  system: SystemName,
  scenario: ClusterSpreadScenario,
  redisUrl: string,
  log: (line: string) => void,
): Promise<ClusterNode[]> {
  const servers = await startAll(Array.from({ length: scenario.nodes }, (_, i) => startNodeServer(system, i, redisUrl)));
  const ports = servers.map(({ ready }) => (ready.type === 'ready' ? ready.port : undefined));
  const missing = ports.indexOf(undefined);
  if (missing !== -1) {
    await Promise.all(servers.map(({ child }) => child.kill()));
    throw new PhaseError(`${system} node ${missing + 1} did not start`);
  }
  return servers.map(({ child }, i) => {
    const rooms = Array.from({ length: scenario.roomsPerNode }, (_, j) => `n${i + 1}r${j}`);
    const port = ports[i]!;
    return {
      session: { system, server: child, port, clients: [], log: (line) => log(`node ${i + 1}: ${line}`) },
      groups: rooms.map((room) => ({ room, port, fast: scenario.perRoom, slow: 0 })),
    };
  });
}

export const startClients = (system: SystemName, count: number) =>
  startAll(
    Array.from({ length: count }, (_, i) =>
      Child.start<ClientCommand, ClientReply>(`client ${i + 1}`, './client-process.ts', [system], { timeoutMs: START_TIMEOUT_MS }),
    ),
  );

/** Waits for every start; if one failed, kills the others (none may outlive the run) and throws its error. */
export async function startAll<T extends { readonly child: { kill(): Promise<void> } }>(starts: readonly Promise<T>[]): Promise<T[]> {
  const settled = await Promise.allSettled(starts);
  const failed = settled.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed !== undefined) {
    await Promise.all(settled.map((result) => (result.status === 'fulfilled' ? result.value.child.kill() : undefined)));
    throw failed.reason;
  }
  return settled.map((result) => (result as PromiseFulfilledResult<T>).value);
}

/** Every node's stats once no node's subscriber has received a message for `QUIET_MS`. */
async function settle(nodes: readonly ClusterNode[], log: (line: string) => void): Promise<ServerStats[]> {
  const read = () => Promise.all(nodes.map((node) => serverStats(node.session, [])));
  const total = (stats: readonly ServerStats[]) => stats.reduce((sum, node) => sum + node.bus.received, 0);
  const deadline = performance.now() + SETTLE_TIMEOUT_MS;
  let last = await read();
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, QUIET_MS));
    const now = await read();
    if (total(now) === total(last)) return now;
    if (performance.now() > deadline) {
      log(`note: the subscribers were still receiving ${SETTLE_TIMEOUT_MS / 1000} s after the clients had everything`);
      return now;
    }
    last = now;
  }
}

/** `a` or `a–b` over the nodes. */
function span(values: readonly number[]): string {
  const [low, high] = [Math.min(...values), Math.max(...values)].map((value) => value.toLocaleString('en-US'));
  return low === high ? low! : `${low}–${high}`;
}
