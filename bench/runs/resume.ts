/**
 * resume-storm: real clients (berth/client, socket.io-client) in rooms get a
 * first few messages; then the server starts publishing to every room at a
 * steady rate and, at once, the client processes destroy every client's TCP
 * socket (no close frame). The clients reconnect and resume by themselves
 * with the same backoff; once all are back the server sends a last few
 * messages, and every client must then hold every sequence number of its
 * room exactly once, in order. The rate runs from the drop to the last
 * client back; the server's CPU over the same window.
 */
import { join } from 'node:path';
import { PhaseError } from '../children.js';
import type { MetricName } from '../metrics.js';
import type { BroadcastPlan, ResumeReport } from '../protocol.js';
import type { ResumeScenario } from '../scenarios.js';
import { serverStats, share, type Outcome, type Session } from './session.js';

const PROGRESS_EVERY_MS = 5_000;
const RECEIVE_TIMEOUT_MS = 60_000;
const message = (turns: number, intervalMs: number, firstSeq: number): Omit<BroadcastPlan, 'rooms'> => ({
  turns,
  perTurn: 1,
  payloadBytes: 100,
  intervalMs,
  sampleRss: false,
  firstSeq,
});

export async function runResume(session: Session, scenario: ResumeScenario): Promise<Outcome> {
  const rooms = Array.from({ length: scenario.rooms }, (_, i) => `r${i}`);
  const total = scenario.rooms * scenario.perRoom;
  const messages = scenario.before + scenario.during + scenario.after;
  const { clients, log } = session;

  log(`opening ${total.toLocaleString('en-US')} real clients (${scenario.rooms} rooms)`);
  const openTimeoutMs = 60_000 + 10 * total;
  const opens = await Promise.all(
    clients.map((client, index) =>
      client.request(
        {
          type: 'resume-open',
          port: session.port,
          messages,
          concurrency: 100,
          groups: rooms.map((room) => ({ room, count: share(scenario.perRoom, clients.length, index) })),
        },
        openTimeoutMs,
        'open',
      ),
    ),
  );
  const failed = opens.reduce((sum, reply) => sum + reply.report.failed, 0);
  if (failed > 0)
    throw new PhaseError(
      `open: ${failed} of ${total} clients did not open (${opens
        .flatMap((r) => r.report.firstErrors)
        .slice(0, 3)
        .join('; ')})`,
    );
  await joined(session, rooms, scenario.perRoom, total, openTimeoutMs);
  log(`open and joined in ${(Math.max(...opens.map((reply) => reply.report.ms)) / 1000).toFixed(1)} s`);

  // Before the drop: every client has a message of its room (Socket.IO's offset to resume from).
  await send(session, rooms, message(scenario.before, 0, 0), 'before');
  const first = merge(await received(session, scenario.before, 'before'));
  if (first.haveAll !== total || first.duplicated + first.reordered + first.malformed > 0) {
    throw new PhaseError(
      `before the drop: ${first.haveAll} of ${total} clients have all ${scenario.before} messages (${describe(first)}; ${first.firstErrors.slice(0, 3).join('; ')})`,
    );
  }

  // The storm: the rooms go on, every TCP connection goes away, every client comes back.
  const profileDir = process.env.BENCH_CPU_PROF;
  if (profileDir) await session.server.request({ type: 'profile-start' }, 10_000, 'profile start');
  const cpuBefore = (await serverStats(session, rooms)).cpuUs;
  const publishing = session.server.request(
    { type: 'broadcast', plan: { ...message(scenario.during, scenario.intervalMs, scenario.before), rooms } },
    scenario.backTimeoutMs,
    'outage send',
  );
  const drops = merge(
    (await Promise.all(clients.map((client) => client.request({ type: 'resume-drop' }, 30_000, 'drop')))).map((r) => r.report),
  );
  log(
    `dropped ${total.toLocaleString('en-US')} TCP connections; ${scenario.during} messages per room, one every ${scenario.intervalMs} ms`,
  );
  const progress = setInterval(() => void logProgress(session, total), PROGRESS_EVERY_MS);
  let back: ResumeReport;
  let cpuAfter: number;
  try {
    back = merge(
      (
        await Promise.all(
          clients.map((client) =>
            client.request({ type: 'resume-back', timeoutMs: scenario.backTimeoutMs }, scenario.backTimeoutMs + 15_000, 'back'),
          ),
        )
      ).map((r) => r.report),
    );
    cpuAfter = (await serverStats(session, rooms)).cpuUs;
  } finally {
    clearInterval(progress);
  }
  if (profileDir) {
    const path = join(profileDir, `resume-storm-${session.system}-${new Date().toISOString().replace(/[:.]/g, '-')}.cpuprofile`);
    await session.server.request({ type: 'profile-stop', path }, 30_000, 'profile stop');
    log(`server CPU profile of the storm: ${path}`);
  }
  await publishing;
  const allBack = back.back === total;
  const wallMs = back.lastBackAt - drops.droppedAt;
  const cpuUs = cpuAfter - cpuBefore;
  const clientCpuUs = back.cpuUs - drops.cpuUs;
  log(
    `${back.back.toLocaleString('en-US')}/${total.toLocaleString('en-US')} back` +
      (allBack ? ` in ${(wallMs / 1000).toFixed(2)} s, ${Math.round(back.back / (wallMs / 1000)).toLocaleString('en-US')}/s` : '') +
      `, ${back.recovered.toLocaleString('en-US')} recovered, server CPU ${(cpuUs / 1000).toFixed(0)} ms` +
      (allBack ? `, client CPU ${((clientCpuUs / 1000 / wallMs / clients.length) * 100).toFixed(0)} % of a core` : '') +
      `, ${back.failedAttempts} failed reconnect attempts`,
  );

  // After: everyone is back, so this reaches every client live; it also ends each client's sequence.
  let final: ResumeReport;
  if (allBack) {
    await send(session, rooms, message(scenario.after, 0, scenario.before + scenario.during), 'after');
    final = merge(await received(session, messages, 'after'));
  } else {
    final = merge(
      (await Promise.all(clients.map((client) => client.request({ type: 'resume-report', upTo: messages }, 10_000, 'report')))).map(
        (r) => r.report,
      ),
    );
  }
  const stats = await serverStats(session, rooms);

  const metrics: Partial<Record<MetricName, number>> = {
    lost_messages: final.missing,
    duplicated_messages: final.duplicated,
    recovered_fraction: final.recovered / total,
  };
  if (allBack) {
    metrics.resumes_per_s = back.back / (wallMs / 1000);
    metrics.server_cpu_us_per_resume = cpuUs / back.back;
  }
  const notes: string[] = [];
  const faults = describe(final);
  log(
    `${final.haveAll.toLocaleString('en-US')}/${total.toLocaleString('en-US')} clients have all ${messages} messages of their room; ${faults}`,
  );
  if (final.missing + final.duplicated + final.reordered > 0) {
    const line = `${session.system}: ${faults} (recovered ${final.recovered} of ${total})`;
    notes.push(line);
    log(`✖ ${line}`);
  }
  if (final.firstErrors.length > 0) notes.push(`client errors: ${final.firstErrors.slice(0, 3).join('; ')}`);
  if (stats.errors > 0) notes.push(`server reported ${stats.errors} errors: ${stats.firstErrors.join('; ')}`);
  for (const note of notes.slice(1)) log(`note: ${note}`);

  if (!allBack) {
    return {
      metrics,
      notes,
      failure: `only ${back.back} of ${total} clients back within ${scenario.backTimeoutMs / 1000} s (${back.firstErrors.slice(0, 3).join('; ')})`,
    };
  }
  if (final.malformed > 0) return { metrics, notes, failure: `${final.malformed} malformed messages` };
  const ended = final.clients - final.reached;
  if (ended > 0) return { metrics, notes, failure: `${ended} clients did not get the last message (disconnected again?)` };
  return { metrics, notes };
}

async function send(session: Session, rooms: readonly string[], plan: Omit<BroadcastPlan, 'rooms'>, phase: string): Promise<void> {
  await session.server.request({ type: 'broadcast', plan: { ...plan, rooms } }, RECEIVE_TIMEOUT_MS, `${phase} send`);
}

async function received(session: Session, upTo: number, phase: string): Promise<ResumeReport[]> {
  const replies = await Promise.all(
    session.clients.map((client) =>
      client.request({ type: 'resume-received', upTo, timeoutMs: RECEIVE_TIMEOUT_MS }, RECEIVE_TIMEOUT_MS + 15_000, `${phase} receive`),
    ),
  );
  return replies.map((reply) => reply.report);
}

/** Waits until the server has every client open and in its room. */
async function joined(session: Session, rooms: readonly string[], perRoom: number, total: number, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const stats = await serverStats(session, rooms);
    if (stats.connections === total && rooms.every((room) => stats.members[room] === perRoom)) return;
    if (performance.now() > deadline) {
      throw new PhaseError(
        `join: server has ${stats.connections} connections and members ${JSON.stringify(stats.members)}, expected ${total}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function logProgress(session: Session, total: number): Promise<void> {
  try {
    const reports = await Promise.all(session.clients.map((client) => client.request({ type: 'resume-report' }, 4_000, 'progress')));
    const report = merge(reports.map((reply) => reply.report));
    session.log(
      `storm: ${report.back.toLocaleString('en-US')}/${total.toLocaleString('en-US')} back, ${report.recovered.toLocaleString('en-US')} recovered, ` +
        `${report.attempts.toLocaleString('en-US')} reconnect attempts begun, ${report.failedAttempts} failed so far`,
    );
  } catch {
    // A busy client may not answer in time; progress lines are only informative.
  }
}

function merge(reports: readonly ResumeReport[]): ResumeReport {
  const sum = (pick: (report: ResumeReport) => number) => reports.reduce((total, report) => total + pick(report), 0);
  const allBack = reports.every((report) => report.lastBackAt > 0);
  return {
    clients: sum((r) => r.clients),
    back: sum((r) => r.back),
    recovered: sum((r) => r.recovered),
    droppedAt: Math.min(...reports.map((r) => r.droppedAt)),
    lastBackAt: allBack ? Math.max(...reports.map((r) => r.lastBackAt)) : 0,
    haveAll: sum((r) => r.haveAll),
    reached: sum((r) => r.reached),
    missing: sum((r) => r.missing),
    duplicated: sum((r) => r.duplicated),
    reordered: sum((r) => r.reordered),
    malformed: sum((r) => r.malformed),
    attempts: sum((r) => r.attempts),
    failedAttempts: sum((r) => r.failedAttempts),
    firstErrors: reports.flatMap((r) => r.firstErrors),
    cpuUs: sum((r) => r.cpuUs),
  };
}

function describe(report: ResumeReport): string {
  return `${report.missing} lost, ${report.duplicated} duplicated, ${report.reordered} out of order${report.malformed > 0 ? `, ${report.malformed} malformed` : ''}`;
}
