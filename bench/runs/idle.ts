/**
 * Server memory per idle connection: RSS and heap with no connection, then
 * with every connection open and joined, both after a full gc().
 */
import type { IdleScenario } from '../scenarios.js';
import { connect, serverStats, type Outcome, type Session } from './session.js';

/** Lets timers and lazily created per-connection state settle before the second reading. */
const SETTLE_MS = 1_000;

export async function runIdle(session: Session, scenario: IdleScenario): Promise<Outcome> {
  const room = 'idle';
  const before = await serverStats(session, [room], true);
  await connect(session, [{ room, fast: scenario.connections, slow: 0 }]);
  await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
  const after = await serverStats(session, [room], true);
  const rss = (after.rss - before.rss) / scenario.connections;
  const heap = (after.heapUsed - before.heapUsed) / scenario.connections;
  session.log(
    `RSS ${(before.rss / 2 ** 20).toFixed(1)} → ${(after.rss / 2 ** 20).toFixed(1)} MiB, heap ${(before.heapUsed / 2 ** 20).toFixed(1)} → ${(after.heapUsed / 2 ** 20).toFixed(1)} MiB: ${Math.round(rss)} B RSS, ${Math.round(heap)} B heap per connection`,
  );
  const notes = after.errors > 0 ? [`server reported ${after.errors} errors: ${after.firstErrors.join('; ')}`] : [];
  return { metrics: { rss_bytes_per_conn: rss, heap_bytes_per_conn: heap }, notes };
}
