/**
 * Connection churn: warm-up cycles, a gc'd heap reading with nothing open,
 * the measured cycles, then — once the server has handled every message and
 * close, and after a second of quiet — a second gc'd reading. Growth here is
 * state kept per closed connection.
 */
import { join } from 'node:path';
import { PhaseError } from '../children.js';
import type { ChurnReport, ServerStats } from '../protocol.js';
import type { ChurnScenario } from '../scenarios.js';
import { serverStats, type Outcome, type Session } from './session.js';

const ROOM = 'churn';
const QUIET_MS = 1_000;

export async function runChurn(session: Session, scenario: ChurnScenario): Promise<Outcome> {
  const client = session.clients[0]!;
  const cycles = (count: number, phase: string) =>
    client.request(
      { type: 'churn', port: session.port, cycles: count, concurrency: scenario.concurrency, timeoutMs: scenario.timeoutMs },
      scenario.timeoutMs + 30_000,
      phase,
    );

  const warm = (await cycles(scenario.warmup, 'churn warm-up')).report;
  if (warm.failed > 0) throw new PhaseError(`churn warm-up: ${warm.failed} cycles failed (${warm.firstErrors.join('; ')})`);
  await settled(session, scenario.warmup, scenario.warmup);
  const before = await serverStats(session, [ROOM], true);

  session.log(`churning ${scenario.cycles.toLocaleString('en-US')} cycles, ${scenario.concurrency} in flight`);
  const profileDir = process.env.BENCH_CPU_PROF;
  if (profileDir) await session.server.request({ type: 'profile-start' }, 10_000, 'profile start');
  const report: ChurnReport = (await cycles(scenario.cycles, 'churn')).report;
  if (profileDir) {
    const path = join(profileDir, `churn-${session.system}-${new Date().toISOString().replace(/[:.]/g, '-')}.cpuprofile`);
    await session.server.request({ type: 'profile-stop', path }, 30_000, 'profile stop');
    session.log(`server CPU profile of the churn: ${path}`);
  }
  // A failed cycle may or may not have delivered its message.
  const server = await settled(session, scenario.warmup + report.completed, scenario.warmup + scenario.cycles);
  // Cleanup a system defers by a moment (timers, queued events) is not growth.
  await new Promise((resolve) => setTimeout(resolve, QUIET_MS));
  const after = await serverStats(session, [ROOM], true);

  const perSecond = report.completed / (report.ms / 1000);
  const cpuPerCycle = (server.cpuUs - before.cpuUs) / scenario.cycles;
  const ratio = after.heapUsed / before.heapUsed;
  session.log(
    `${report.completed} cycles in ${(report.ms / 1000).toFixed(2)} s: ${Math.round(perSecond)}/s, server ${cpuPerCycle.toFixed(0)} µs CPU per cycle, heap ${(before.heapUsed / 2 ** 20).toFixed(2)} → ${(after.heapUsed / 2 ** 20).toFixed(2)} MiB`,
  );
  const notes = after.errors > 0 ? [`server reported ${after.errors} errors: ${after.firstErrors.join('; ')}`] : [];
  const metrics = { cycles_per_s: perSecond, server_cpu_us_per_cycle: cpuPerCycle, heap_growth_ratio: ratio };
  if (report.failed > 0) {
    return {
      metrics: {},
      notes,
      failure: `churn: ${report.failed} of ${scenario.cycles} cycles failed (${report.firstErrors.join('; ')})`,
    };
  }
  return { metrics, notes };
}

/** Waits until the server has handled at least `messages` client messages in all (and at most `most`) and holds no connection. */
async function settled(session: Session, messages: number, most: number): Promise<ServerStats> {
  const deadline = performance.now() + 30_000;
  for (;;) {
    const stats = await serverStats(session, [ROOM]);
    if (stats.received >= messages && stats.connections === 0) {
      if (stats.received > most) throw new PhaseError(`churn: server handled ${stats.received} messages, at most ${most} were sent`);
      return stats;
    }
    if (performance.now() > deadline) {
      throw new PhaseError(
        `churn settle: server handled ${stats.received} of ${messages} messages and still holds ${stats.connections} connections after 30 s`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
