/**
 * idle-heartbeat: idle connections under a fast heartbeat. After a gc(), RSS
 * with no connection; then every connection opens and joins, a few heartbeat
 * cycles pass so every connection has been pinged and has answered, and the
 * server's CPU is read over the window; RSS at its end (after a gc(), as the
 * baseline). The clients count the pings they answer and every connection
 * that closes: a run in which the server dropped a client fails.
 */
import { PhaseError } from '../children.js';
import type { DeliveryReport } from '../protocol.js';
import type { HeartbeatScenario } from '../scenarios.js';
import { merge } from './broadcast.js';
import { connect, serverStats, type Outcome, type Session } from './session.js';

/** Heartbeat cycles between the last connection joining and the window, so that every connection is in the sweep. */
const SETTLE_CYCLES = 3;
/** Pings answered per connection in the window below this fraction of its cycles: the heartbeat did not run as set. */
const MIN_PING_FRACTION = 0.8;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function clientReports(session: Session): Promise<DeliveryReport> {
  const replies = await Promise.all(session.clients.map((client) => client.request({ type: 'report' }, 30_000, 'report')));
  return merge(replies.map((reply) => reply.report));
}

export async function runHeartbeat(session: Session, scenario: HeartbeatScenario): Promise<Outcome> {
  const room = 'idle';
  const n = scenario.connections;
  const before = await serverStats(session, [room], true);
  await connect(session, [{ room, fast: n, slow: 0 }]);
  await sleep(SETTLE_CYCLES * scenario.intervalMs + scenario.timeoutMs);

  const clientsStart = await clientReports(session);
  const start = await serverStats(session, [room]);
  if (clientsStart.closedEarly > 0 || start.connections !== n) {
    throw new PhaseError(
      `settle: ${clientsStart.closedEarly} connections closed before the window, server has ${start.connections} of ${n} open`,
    );
  }
  session.log(`heartbeat every ${scenario.intervalMs} ms (timeout ${scenario.timeoutMs} ms): measuring ${scenario.windowMs / 1000} s`);
  await sleep(scenario.windowMs);
  // The CPU reading is taken before the gc() (server-process.ts), so the window does not include it.
  const end = await serverStats(session, [room], true);
  const clientsEnd = await clientReports(session);

  /** Cycles the window should hold at the set interval. */
  const cycles = scenario.windowMs / scenario.intervalMs;
  const cpuUs = end.cpuUs - start.cpuUs;
  // Per cycle that happened: every ping the clients answered in the window is one connection's cycle.
  // A system whose rounds come later than its interval does fewer of them, and is not credited for it.
  const pings = clientsEnd.pings - clientsStart.pings;
  const cpuPerCycle = pings > 0 ? cpuUs / pings : Number.NaN;
  const rss = (end.rss - before.rss) / n;
  const pingsPerConn = pings / n;
  const closed = clientsEnd.closedEarly - clientsStart.closedEarly;
  const clientShare = (clientsEnd.cpuUs - clientsStart.cpuUs) / 1000 / scenario.windowMs / session.clients.length;
  session.log(
    `server CPU ${(cpuUs / 1000).toFixed(0)} ms in ${scenario.windowMs / 1000} s (${((cpuUs / 1000 / scenario.windowMs) * 100).toFixed(1)} % of a core): ` +
      `${cpuPerCycle.toFixed(2)} µs per connection per cycle answered (${(cpuUs / (n * cycles)).toFixed(2)} per set cycle); ` +
      `${pingsPerConn.toFixed(2)} pings answered per connection (${cycles} set cycles, a round every ${((scenario.windowMs / pingsPerConn) | 0).toString()} ms); ` +
      `RSS ${(before.rss / 2 ** 20).toFixed(1)} → ${(end.rss / 2 ** 20).toFixed(1)} MiB (${Math.round(rss)} B per connection), heap ${(end.heapUsed / 2 ** 20).toFixed(1)} MiB; ` +
      `${closed} closed, server has ${end.connections} open; client CPU ${(clientShare * 100).toFixed(0)} % of a core`,
  );
  const notes = end.errors > 0 ? [`server reported ${end.errors} errors: ${end.firstErrors.join('; ')}`] : [];
  for (const note of notes) session.log(`note: ${note}`);
  const metrics = { server_cpu_us_per_cycle: cpuPerCycle, rss_bytes_per_conn: rss };
  if (closed > 0 || end.connections !== n) {
    const why = clientsEnd.firstErrors.length > 0 ? ` (${clientsEnd.firstErrors.join('; ')})` : '';
    return { metrics, notes, failure: `${closed} connections closed during the window, server has ${end.connections} of ${n} open${why}` };
  }
  if (pingsPerConn < MIN_PING_FRACTION * cycles) {
    return {
      metrics,
      notes,
      failure: `${pingsPerConn.toFixed(2)} pings answered per connection in ${cycles} cycles: the heartbeat did not run as set`,
    };
  }
  return { metrics, notes };
}
