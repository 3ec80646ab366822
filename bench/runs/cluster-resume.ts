/**
 * cluster-resume: server children of one system on a private Redis with
 * durable streams (servers/system.ts), client children holding real clients
 * spread over every node in rooms that span them all
 * (clients/cluster-resume.ts). Every node sends to every room with its own
 * sequence: `before` messages at once (every client must have them), then
 * one every `intervalMs`. After `endAfter` of those the last node goes away
 * — SIGKILL, or its system's own shutdown — and its clients come back
 * through the balancer to the other nodes by themselves. Once they are back
 * the survivors send `after` messages more, and every client must then hold
 * every message of every publisher exactly once: all of the survivors', and
 * the departed node's up to the last one any client received (what it
 * published before it went).
 *
 * Server CPU per resume is the survivors' CPU from the end of the node until
 * the last of its clients is back, less what the survivors spent at the same
 * rate in the second before the end (the steady traffic, which stays about
 * the same: two publishers instead of three, half as many clients again).
 */
import { PhaseError } from '../children.js';
import type { MetricName } from '../metrics.js';
import { PUBLISHER_SPAN, wallNow, type BroadcastPlan, type ClusterResumeReport, type SystemName } from '../protocol.js';
import { listenOverflows } from '../listen-overflows.js';
import { redisCpu, type RedisCpu } from '../redis-cpu.js';
import { startRedisServer } from '../redis-server.js';
import type { ClusterResumeScenario } from '../scenarios.js';
import { startNodeServer } from './cluster.js';
import { startAll, startClients } from './cluster-spread.js';
import { mergeReports, msQuantiles, progress, received, report } from './cluster-resume-report.js';
import { awaitJoined, serverStats, share, type ClientChild, type Outcome, type ServerChild, type Session } from './session.js';

const RECEIVE_TIMEOUT_MS = 60_000;
/** The steady traffic's CPU is read over this long just before the node goes away. */
const BASELINE_MS = 1_000;
const PROGRESS_EVERY_MS = 5_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function runClusterResume(system: SystemName, scenario: ClusterResumeScenario, log: (line: string) => void): Promise<Outcome> {
  const redis = await startRedisServer();
  const servers: ServerChild[] = [];
  const clients: ClientChild[] = [];
  let engine: RedisCpu | undefined;
  try {
    engine = await redisCpu(redis.url);
    const rooms = Array.from({ length: scenario.rooms }, (_, i) => `r${i}`);
    const perNode = scenario.rooms * scenario.perRoomPerNode;
    const total = scenario.nodes * perNode;
    const messages = scenario.before + scenario.during + scenario.after;
    // Durable streams, and every system keeps a session for every client (berth's maxSessions; Socket.IO keeps all).
    const env = { BENCH_DURABLE: '1', BENCH_RECOVERY_SESSIONS: String(2 * total) };
    const starts = await startAll(Array.from({ length: scenario.nodes }, (_, i) => startNodeServer(system, i, redis.url, env)));
    servers.push(...starts.map(({ child }) => child));
    const ports = starts.map(({ ready }) => (ready.type === 'ready' ? ready.port : 0));
    if (ports.includes(0)) throw new PhaseError(`${system} node ${ports.indexOf(0) + 1} did not start`);
    clients.push(...(await startClients(system, scenario.clientProcesses)).map(({ child }) => child));
    const nodes: Session[] = servers.map((server, i) => ({
      system,
      server,
      port: ports[i]!,
      clients: [],
      log: (line) => log(`node ${i + 1}: ${line}`),
    }));

    log(
      `opening ${total.toLocaleString('en-US')} real clients: ${scenario.rooms} rooms × ${scenario.perRoomPerNode} on each of ${scenario.nodes} nodes`,
    );
    const openTimeoutMs = 60_000 + 10 * total;
    const opens = await Promise.all(
      clients.map((client, index) =>
        client.request(
          {
            type: 'cr-open',
            ports,
            publishers: scenario.nodes,
            messages,
            concurrency: 100,
            groups: ports.flatMap((_, node) =>
              rooms.map((room) => ({ room, node, count: share(scenario.perRoomPerNode, clients.length, index) })),
            ),
          },
          openTimeoutMs,
          'open',
        ),
      ),
    );
    const failed = opens.reduce((sum, reply) => sum + reply.report.failed, 0);
    if (failed > 0) {
      const errors = opens.flatMap((reply) => reply.report.firstErrors).slice(0, 3);
      throw new PhaseError(`open: ${failed} of ${total} clients did not open (${errors.join('; ')})`);
    }
    const deadline = performance.now() + openTimeoutMs;
    const groups = rooms.map((room) => ({ room, fast: scenario.perRoomPerNode, slow: 0 }));
    for (const node of nodes) await awaitJoined(node, groups, deadline);
    log(`open and joined in ${(Math.max(...opens.map((reply) => reply.report.ms)) / 1000).toFixed(1)} s`);

    const plan = (node: number, turns: number, intervalMs: number, from: number): BroadcastPlan => ({
      rooms,
      turns,
      perTurn: 1,
      payloadBytes: 100,
      intervalMs,
      sampleRss: false,
      firstSeq: node * PUBLISHER_SPAN + from,
    });

    // Before: every client has every node's first messages (Socket.IO's offset to resume from).
    await Promise.all(
      nodes.map((node, i) =>
        node.server.request({ type: 'broadcast', plan: plan(i, scenario.before, 0, 0) }, RECEIVE_TIMEOUT_MS, 'before send'),
      ),
    );
    const first = await received(
      clients,
      nodes.map(() => scenario.before),
      RECEIVE_TIMEOUT_MS,
      'before',
    );
    if (first.reached !== total || first.duplicated + first.reordered + first.malformed > 0) {
      throw new PhaseError(
        `before: ${first.reached} of ${total} clients have every node's ${scenario.before} messages (${first.duplicated} duplicated, ` +
          `${first.reordered} out of order, ${first.malformed} malformed; ${first.firstErrors.slice(0, 3).join('; ')})`,
      );
    }

    // During: every node sends one message to every room each interval; the last node goes away after `endAfter`.
    const victim = scenario.nodes - 1;
    const survivors = nodes.slice(0, victim);
    const duringMs = scenario.during * scenario.intervalMs;
    const publishing = nodes.map((node, i) =>
      node.server.request(
        { type: 'broadcast', plan: plan(i, scenario.during, scenario.intervalMs, scenario.before) },
        duringMs + RECEIVE_TIMEOUT_MS,
        'during send',
      ),
    );
    // The departed node's plan ends with it.
    publishing[victim]!.catch(() => {});
    const endInMs = scenario.endAfter * scenario.intervalMs;
    await sleep(Math.max(0, endInMs - BASELINE_MS));
    const cpuOf = async () => (await Promise.all(survivors.map((node) => serverStats(node, [])))).reduce((sum, s) => sum + s.cpuUs, 0);
    const base0 = { cpu: await cpuOf(), redis: await engine.read(), at: performance.now() };
    await sleep(BASELINE_MS);
    const base1 = { cpu: await cpuOf(), redis: await engine.read(), at: performance.now() };
    const clientsAtEnd = await report(clients, []);

    const overflowsBefore = listenOverflows();
    const linksBefore = await engine.connections();
    const downAt = wallNow();
    // A deploy takes the node out of the load balancer before it shuts down; a SIGKILL is found out.
    const backs = clients.map((client) =>
      client.request(
        { type: 'cr-back', node: victim, at: downAt, drain: scenario.end === 'graceful', timeoutMs: scenario.windowMs },
        scenario.windowMs + 60_000,
        'back',
      ),
    );
    const ending =
      scenario.end === 'kill'
        ? nodes[victim]!.server.kill().then(() => undefined)
        : nodes[victim]!.server.request({ type: 'shutdown' }, RECEIVE_TIMEOUT_MS, 'shutdown').then((reply) => reply.closeMs);
    log(
      `node ${victim + 1} ${scenario.end === 'kill' ? 'SIGKILLed' : 'shutting down'}; its ${perNode.toLocaleString('en-US')} clients come back through the others`,
    );
    const ticker = setInterval(() => void progress(clients, log), PROGRESS_EVERY_MS);
    let back: ClusterResumeReport;
    try {
      back = mergeReports((await Promise.all(backs)).map((reply) => reply.report));
    } finally {
      clearInterval(ticker);
    }
    const end = { cpu: await cpuOf(), redis: await engine.read(), at: performance.now() };
    const overflows = overflowsBefore === undefined ? undefined : listenOverflows()! - overflowsBefore;
    const links = (await engine.connections()) - linksBefore;
    const closeMs = await ending;
    if (scenario.end === 'graceful') await nodes[victim]!.server.kill();
    const allBack = back.back === back.moved;
    const wallMs = allBack ? back.lastBackAt - downAt : scenario.windowMs;
    const rate = (base1.cpu - base0.cpu) / (base1.at - base0.at);
    const rawUs = end.cpu - base1.cpu;
    const netUs = rawUs - rate * (end.at - base1.at);
    const redisUs = end.redis - base1.redis;
    log(
      `steady traffic before the end: survivors ${((base1.cpu - base0.cpu) / 10 / (base1.at - base0.at)) | 0} % of a core, Redis ${((base1.redis - base0.redis) / 10 / (base1.at - base0.at)) | 0} %`,
    );
    log(
      `${back.back.toLocaleString('en-US')}/${back.moved.toLocaleString('en-US')} back in ${(wallMs / 1000).toFixed(2)} s` +
        `${allBack ? '' : ' (the whole window: not all came back)'}, ${back.recovered.toLocaleString('en-US')} recovered; ` +
        `survivors' CPU ${(rawUs / 1000).toFixed(0)} ms (${(netUs / 1000).toFixed(0)} ms above the steady ${(rate / 10).toFixed(0)} % of a core), ` +
        `Redis ${(redisUs / 1000).toFixed(0)} ms, client CPU ${((back.cpuUs - clientsAtEnd.cpuUs) / 10 / (end.at - base1.at) / clients.length) | 0} % of a core, ` +
        `${back.failedAttempts} failed attempts` +
        (closeMs === undefined ? '' : `; the shutdown took ${closeMs.toFixed(0)} ms`) +
        (overflows === undefined ? '' : `; ${overflows} handshakes dropped by full accept queues (machine-wide)`) +
        `; ${links} new Redis connections (a survivor's link reconnecting)`,
    );

    await Promise.all(publishing.slice(0, victim));
    // After: the survivors' last messages reach every client live; they also end each survivor's sequence.
    await Promise.all(
      survivors.map((node, i) =>
        node.server.request(
          { type: 'broadcast', plan: plan(i, scenario.after, 0, scenario.before + scenario.during) },
          RECEIVE_TIMEOUT_MS,
          'after send',
        ),
      ),
    );
    const upTo = nodes.map((_, i) => (i === victim ? 0 : messages));
    const last = await received(clients, upTo, allBack ? RECEIVE_TIMEOUT_MS : 15_000, 'after');
    // The departed node's messages: each room's up to the highest any client received.
    const bounds = nodes.map((_, i) =>
      Object.fromEntries(rooms.map((room) => [room, i === victim ? last.highest[victim]![room]! + 1 : messages])),
    );
    const final = await report(clients, bounds);

    const metrics: Partial<Record<MetricName, number>> = {
      lost_messages: final.missing,
      duplicated_messages: final.duplicated,
      recovered_fraction: final.moved === 0 ? 0 : final.recovered / final.moved,
    };
    if (back.back > 0) {
      metrics.resumes_per_s = back.back / (wallMs / 1000);
      metrics.server_cpu_us_per_resume = netUs / back.back;
    }
    // Moved clients with no live message within the window count as the window.
    const live = [...final.liveMs, ...Array.from({ length: final.moved - final.liveMs.length }, () => scenario.windowMs)].sort(
      (a, b) => a - b,
    );
    if (live.length > 0) metrics.recovery_p99_ms = live[Math.min(live.length - 1, Math.ceil(0.99 * live.length) - 1)]!;

    const notes: string[] = [];
    const faults =
      `${final.missing} lost (${final.missingBy.map((count, i) => `${count} of node ${i + 1}'s`).join(', ')}), ` +
      `${final.duplicated} duplicated, ${final.reordered} out of order`;
    const departed = Object.values(bounds[victim]!);
    log(
      `${final.haveAll.toLocaleString('en-US')}/${total.toLocaleString('en-US')} clients have every message (node ${victim + 1}'s: ` +
        `${Math.min(...departed)}–${Math.max(...departed)} a room); ${faults}; recovery (end → first live message) ${msQuantiles(live)}`,
    );
    if (!allBack) notes.push(`${back.moved - back.back} of ${back.moved} clients not back within ${scenario.windowMs / 1000} s`);
    if (final.missing + final.duplicated + final.reordered > 0) notes.push(`${faults} (recovered ${final.recovered} of ${final.moved})`);
    if (final.lostEvents > 0) notes.push(`${final.lostEvents} lost events (streams the server named lost)`);
    if (final.strayDrops > 0) notes.push(`${final.strayDrops} clients of the surviving nodes dropped too`);
    if (final.firstErrors.length > 0)
      notes.push(`client notes: ${final.firstErrors.slice(0, process.env.BENCH_DEBUG ? 40 : 3).join('; ')}`);
    for (const [i, stats] of (await Promise.all(survivors.map((node) => serverStats(node, [])))).entries()) {
      if (stats.errors > 0) notes.push(`node ${i + 1} reported ${stats.errors} errors: ${stats.firstErrors.join('; ')}`);
    }
    for (const note of notes) log(`${final.missing + final.duplicated + final.reordered > 0 || !allBack ? '✖' : 'note:'} ${note}`);
    notes.push(
      `back after the end: ${msQuantiles(back.backMs)}; Redis CPU over the recovery ${(redisUs / 1000).toFixed(0)} ms` +
        (overflows === undefined ? '' : `; ${overflows} handshakes dropped by full accept queues (machine-wide)`) +
        `; ${links} new Redis connections (a survivor's link reconnecting)`,
    );

    if (final.malformed > 0) return { metrics, notes, failure: `${final.malformed} malformed messages` };
    // Every client that is there must have the survivors' last messages (what is missing before them counts as lost).
    const cut = total - (back.moved - back.back) - last.reached;
    if (cut > 0) return { metrics, notes, failure: `${cut} clients did not get the survivors' last messages (disconnected again?)` };
    return { metrics, notes };
  } catch (error) {
    return { metrics: {}, notes: [], failure: error instanceof Error ? error.message : String(error) };
  } finally {
    await Promise.all(servers.map((server) => server.kill()));
    await Promise.all(clients.map((client) => client.kill()));
    await engine?.close();
    await redis.stop();
  }
}
