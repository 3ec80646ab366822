/**
 * A broadcast scenario (fan-out, burst, 1 MB, concurrent rooms, slow
 * clients, deflate): connect and join, warm up, then the server runs the plan while
 * the clients check every message; the row's numbers come from the server's
 * clock and CPU and the clients' completion time, counts, latencies and
 * socket bytes, and, for `rss_bytes_per_conn`, the server's RSS before the
 * connections and after the messages.
 */
import { join } from 'node:path';
import { PhaseError } from '../children.js';
import { LatencyHistogram } from '../histogram.js';
import type { MetricName } from '../metrics.js';
import type { BroadcastPlan, DeliveryReport } from '../protocol.js';
import type { BroadcastScenario } from '../scenarios.js';
import { connect, serverStats, type Outcome, type ServerChild, type Session } from './session.js';

/** A few small turns first, so the measured turns do not pay for V8 compiling the send path. */
const WARMUP: Omit<BroadcastPlan, 'rooms'> = { turns: 5, perTurn: 1, payloadBytes: 100, intervalMs: 0, sampleRss: false };
const PROGRESS_EVERY_MS = 5_000;

export async function runBroadcast(session: Session, scenario: BroadcastScenario): Promise<Outcome> {
  const rooms = Array.from({ length: scenario.rooms }, (_, i) => `r${i}`);
  const wanted = new Set(scenario.metrics);
  const compression = scenario.compression === true;
  const empty = wanted.has('rss_bytes_per_conn') ? await serverStats(session, rooms, true) : undefined;
  await connect(
    session,
    rooms.map((room) => ({ room, fast: scenario.fastPerRoom, slow: scenario.slowPerRoom })),
    compression,
  );

  const warm = await deliver(session, rooms, WARMUP, 60_000, 'warm-up');
  if (warm.report.delivered !== warm.report.expected) {
    throw new PhaseError(`warm-up: ${warm.report.delivered} of ${warm.report.expected} delivered${describeFaults(warm.report)}`);
  }

  const plan = scenario.plan;
  const messages = plan.turns * plan.perTurn * rooms.length;
  session.log(`sending ${messages.toLocaleString('en-US')} × ${plan.payloadBytes.toLocaleString('en-US')} B`);
  const { started, finished, report, clientCpuUs } = await deliver(session, rooms, plan, scenario.deliverTimeoutMs, 'delivery');
  // After a gc() when memory is measured: what stays per connection once the messages are out
  // (ws's and Socket.IO's deflate contexts stay for the connection's life).
  const stats = await serverStats(session, rooms, empty !== undefined);

  const metrics: Partial<Record<MetricName, number>> = {};
  const notes: string[] = [];
  const fraction = report.expected === 0 ? 0 : report.delivered / report.expected;
  const total = rooms.length * (scenario.fastPerRoom + scenario.slowPerRoom);
  // With compression every measured message (1 KiB, at every system's threshold) must come compressed, and without none.
  const compressed = report.inflated + report.counted;
  const plainNote =
    compression && compressed !== report.delivered
      ? `, ${report.delivered - compressed} of ${report.delivered} came uncompressed`
      : !compression && compressed > 0
        ? `, ${compressed} came compressed`
        : '';
  const faults = describeFaults(report) + plainNote;
  const complete = report.delivered === report.expected && faults === '';
  const wallMs = report.completedAt - started.startedAt;
  const latency = new LatencyHistogram();
  latency.add(report.latency);

  if (wanted.has('delivered_fraction')) metrics.delivered_fraction = fraction;
  if (complete) {
    if (wanted.has('deliveries_per_s')) metrics.deliveries_per_s = report.delivered / (wallMs / 1000);
    if (wanted.has('server_cpu_us_per_delivery')) metrics.server_cpu_us_per_delivery = (finished.cpuUs - started.cpuUs) / report.delivered;
    const p50 = latency.quantile(0.5);
    if (wanted.has('p50_ms') && p50 !== null) metrics.p50_ms = p50;
    const p99 = latency.quantile(0.99);
    if (wanted.has('p99_ms') && p99 !== null) metrics.p99_ms = p99;
    if (wanted.has('peak_rss_delta_bytes')) metrics.peak_rss_delta_bytes = finished.peakRss - finished.baseRss;
    if (wanted.has('wire_bytes_per_delivery')) metrics.wire_bytes_per_delivery = report.wireBytes / report.delivered;
    if (empty !== undefined) metrics.rss_bytes_per_conn = (stats.rss - empty.rss) / total;
  }
  const clientShare = clientCpuUs / 1000 / Math.max(1, wallMs) / session.clients.length;
  session.log(
    `${report.delivered.toLocaleString('en-US')}/${report.expected.toLocaleString('en-US')} delivered in ${(wallMs / 1000).toFixed(2)} s` +
      (complete ? `, ${Math.round(report.delivered / (wallMs / 1000)).toLocaleString('en-US')}/s` : '') +
      `, server CPU ${((finished.cpuUs - started.cpuUs) / 1000).toFixed(0)} ms, client CPU ${(clientShare * 100).toFixed(0)} % of a core` +
      (plan.sampleRss
        ? `, peak RSS +${((finished.peakRss - finished.baseRss) / 2 ** 20).toFixed(1)} MiB (${finished.samples} samples)`
        : '') +
      (latency.total > 0 ? `, p50 ${latency.quantile(0.5)!.toFixed(1)} ms, p99 ${latency.quantile(0.99)!.toFixed(1)} ms` : '') +
      (wanted.has('wire_bytes_per_delivery')
        ? `, ${(report.wireBytes / Math.max(1, report.delivered)).toFixed(1)} wire B per delivery`
        : '') +
      (compression
        ? ` (compressed: ${report.inflated} inflated, ${report.checkedWhole} of them checked whole; ${report.counted} counted)`
        : '') +
      (empty !== undefined
        ? `, RSS ${(empty.rss / 2 ** 20).toFixed(1)} → ${(stats.rss / 2 ** 20).toFixed(1)} MiB (${Math.round((stats.rss - empty.rss) / total)} B per connection)`
        : ''),
  );
  if (report.slowDelivered > 0 || scenario.slowPerRoom > 0) notes.push(`slow clients received ${report.slowDelivered} messages`);
  if (stats.errors > 0) notes.push(`server reported ${stats.errors} errors: ${stats.firstErrors.join('; ')}`);
  if (stats.connections !== total) notes.push(`server has ${stats.connections} of ${total} connections open after the run`);
  for (const note of notes) session.log(`note: ${note}`);
  if (!complete) {
    return {
      metrics,
      notes,
      failure: `delivery incomplete: ${report.delivered} of ${report.expected} (${(fraction * 100).toFixed(3)} %) in-order deliveries${faults}, ${report.incompleteConnections} fast connections incomplete`,
    };
  }
  return { metrics, notes };
}

/** Sets the clients' expectations, runs `plan` on the server, waits for the clients, and merges their reports. */
export async function deliver(
  session: Session,
  rooms: readonly string[],
  plan: Omit<BroadcastPlan, 'rooms'>,
  timeoutMs: number,
  phase: string,
) {
  const { started, finished, ...rest } = await deliverFrom(session, [{ server: session.server, rooms }], plan, timeoutMs, phase);
  return { started: started[0]!, finished: finished[0]!, ...rest };
}

/** A server that runs a plan, and the rooms it sends to. */
export interface Sender {
  readonly server: ServerChild;
  readonly rooms: readonly string[];
}

/**
 * `deliver` with several servers sending at once, each to its own rooms: the
 * clients of `session` expect every sender's rooms, and the reply holds each
 * sender's start and finish in the order of `senders`.
 */
export async function deliverFrom(
  session: Session,
  senders: readonly Sender[],
  plan: Omit<BroadcastPlan, 'rooms'>,
  timeoutMs: number,
  phase: string,
) {
  const perRoom = Object.fromEntries(senders.flatMap(({ rooms }) => rooms.map((room) => [room, plan.turns * plan.perTurn])));
  const expects = await Promise.all(
    session.clients.map((client) => client.request({ type: 'expect', perRoom }, 10_000, `${phase} expect`)),
  );
  const profileDir = process.env.BENCH_CPU_PROF;
  if (profileDir) await Promise.all(senders.map(({ server }) => server.request({ type: 'profile-start' }, 10_000, 'profile start')));
  const sending = Promise.all(
    senders.map(({ server, rooms }) => server.request({ type: 'broadcast', plan: { ...plan, rooms } }, timeoutMs, `${phase} send`)),
  );
  const waiting = Promise.all(
    session.clients.map((client) => client.request({ type: 'wait', timeoutMs }, timeoutMs + 15_000, `${phase} wait`)),
  );
  const progress = setInterval(() => void logProgress(session, phase), PROGRESS_EVERY_MS);
  try {
    const [sent, waits] = await Promise.all([sending, waiting]);
    if (profileDir) {
      const name = `${phase.replace(/[^a-z0-9-]+/gi, '_')}-${session.system}-${new Date().toISOString().replace(/[:.]/g, '-')}`;
      await Promise.all(
        senders.map(({ server }, i) => {
          const path = join(profileDir, `${name}${senders.length > 1 ? `-node${i + 1}` : ''}.cpuprofile`);
          return server.request({ type: 'profile-stop', path }, 30_000, 'profile stop');
        }),
      );
    }
    const finished = await Promise.all(
      senders.map(async ({ server }) => (await server.request({ type: 'finish' }, 10_000, `${phase} finish`)).finished),
    );
    const report = merge(waits.map((reply) => reply.report));
    const clientCpuUs = waits.reduce((sum, reply, i) => sum + reply.report.cpuUs - expects[i]!.cpuUs, 0);
    return { started: sent.map((reply) => reply.started), finished, report, clientCpuUs };
  } finally {
    clearInterval(progress);
  }
}

async function logProgress(session: Session, phase: string): Promise<void> {
  try {
    const reports = await Promise.all(session.clients.map((client) => client.request({ type: 'report' }, 4_000, 'progress')));
    const report = merge(reports.map((reply) => reply.report));
    session.log(`${phase}: ${report.delivered.toLocaleString('en-US')}/${report.expected.toLocaleString('en-US')} so far`);
  } catch {
    // A busy client may not answer in time; progress lines are only informative.
  }
}

export function merge(reports: readonly DeliveryReport[]): DeliveryReport {
  const sum = (pick: (report: DeliveryReport) => number) => reports.reduce((total, report) => total + pick(report), 0);
  const complete = reports.every((report) => report.completedAt > 0);
  return {
    delivered: sum((r) => r.delivered),
    expected: sum((r) => r.expected),
    duplicates: sum((r) => r.duplicates),
    gaps: sum((r) => r.gaps),
    malformed: sum((r) => r.malformed),
    closedEarly: sum((r) => r.closedEarly),
    incompleteConnections: sum((r) => r.incompleteConnections),
    pings: sum((r) => r.pings),
    firstErrors: reports.flatMap((r) => r.firstErrors).slice(0, 5),
    completedAt: complete ? Math.max(...reports.map((r) => r.completedAt)) : 0,
    slowDelivered: sum((r) => r.slowDelivered),
    latency: reports.flatMap((r) => r.latency),
    cpuUs: sum((r) => r.cpuUs),
    wireBytes: sum((r) => r.wireBytes),
    inflated: sum((r) => r.inflated),
    checkedWhole: sum((r) => r.checkedWhole),
    counted: sum((r) => r.counted),
  };
}

export function describeFaults(report: DeliveryReport): string {
  const faults = [
    report.duplicates > 0 && `${report.duplicates} duplicated or late`,
    report.gaps > 0 && `${report.gaps} skipped (lost or reordered)`,
    report.malformed > 0 && `${report.malformed} malformed`,
    report.closedEarly > 0 && `${report.closedEarly} fast connections closed`,
  ].filter(Boolean);
  return faults.length === 0 ? '' : ` (${faults.join(', ')})`;
}
