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
    scenario.windowMs,
    'outage send',
  );
  const drops = merge(
    (await Promise.all(clients.map((client) => client.request({ type: 'resume-drop' }, 30_000, 'drop')))).map((r) => r.report),
  );
  log(
    `dropped ${total.toLocaleString('en-US')} TCP connections; ${scenario.during} messages per room, one every ${scenario.intervalMs} ms`,
  );
  const progress = setInterval(() => void logProgress(session, total), PROGRESS_EVERY_MS);
  const windowMs = scenario.windowMs;
  let back: ResumeReport;
  let cpuAfter: number;
  try {
    // A client process busy with thousands of reconnects may answer late: its own timer ends the window.
    const backs = await Promise.all(
      clients.map((client) => client.request({ type: 'resume-back', timeoutMs: windowMs }, windowMs + 60_000, 'back')),
    );
    cpuAfter = (await serverStats(session, rooms)).cpuUs;
    back = merge(backs.map((r) => r.report));
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
  // To the last client back; if some are still away when the window ends, the whole window.
  const wallMs = allBack ? back.lastBackAt - drops.droppedAt : windowMs;
  const cpuUs = cpuAfter - cpuBefore;
  const clientCpuUs = back.cpuUs - drops.cpuUs;
  log(
    `${back.back.toLocaleString('en-US')}/${total.toLocaleString('en-US')} back in ${(wallMs / 1000).toFixed(2)} s` +
      `${allBack ? '' : ' (the whole window: not all came back)'}, ${Math.round(back.back / (wallMs / 1000)).toLocaleString('en-US')}/s, ` +
      `${back.recovered.toLocaleString('en-US')} recovered, server CPU ${(cpuUs / 1000).toFixed(0)} ms, ` +
      `client CPU ${((clientCpuUs / 1000 / wallMs / clients.length) * 100).toFixed(0)} % of a core, ${back.failedAttempts} failed reconnect attempts`,
  );

  // How the storm went, not only its end: the last few clients can wait on TCP retransmissions.
  const spread = quantiles(back.backMs);
  if (spread !== '') log(`back after the drop: ${spread}`);

  // After: every client that is back gets these live; they also end each client's sequence.
  await send(session, rooms, message(scenario.after, 0, scenario.before + scenario.during), 'after');
  const final = merge(await received(session, messages, 'after', allBack ? RECEIVE_TIMEOUT_MS : 15_000));
  const stats = await serverStats(session, rooms);

  const metrics: Partial<Record<MetricName, number>> = {
    lost_messages: final.missing,
    duplicated_messages: final.duplicated,
    recovered_fraction: final.recovered / total,
  };
  if (back.back > 0) {
    metrics.resumes_per_s = back.back / (wallMs / 1000);
    metrics.server_cpu_us_per_resume = cpuUs / back.back;
  }
  const notes: string[] = [];
  const faults = describe(final);
  log(
    `${final.haveAll.toLocaleString('en-US')}/${total.toLocaleString('en-US')} clients have all ${messages} messages of their room; ${faults}`,
  );
  if (!allBack)
    notes.push(
      `${total - back.back} of ${total} clients not back within ${windowMs / 1000} s: their messages from the drop on count as lost`,
    );
  if (final.missing + final.duplicated + final.reordered > 0) notes.push(`${faults} (recovered ${final.recovered} of ${total})`);
  if (final.firstErrors.length > 0) notes.push(`client errors: ${final.firstErrors.slice(0, process.env.BENCH_DEBUG ? 40 : 3).join('; ')}`);
  if (stats.errors > 0) notes.push(`server reported ${stats.errors} errors: ${stats.firstErrors.join('; ')}`);
  for (const note of notes) log(`${final.missing + final.duplicated + final.reordered > 0 || !allBack ? '✖' : 'note:'} ${note}`);
  if (spread !== '') notes.push(`back after the drop: ${spread}`);

  if (final.malformed > 0) return { metrics, notes, failure: `${final.malformed} malformed messages` };
  // Every client that came back must have the last message (what is missing before it is counted as lost).
  const cut = final.back - final.reached;
  if (cut > 0) return { metrics, notes, failure: `${cut} clients back after the drop did not get the last message (disconnected again?)` };
  return { metrics, notes };
}

async function send(session: Session, rooms: readonly string[], plan: Omit<BroadcastPlan, 'rooms'>, phase: string): Promise<void> {
  await session.server.request({ type: 'broadcast', plan: { ...plan, rooms } }, RECEIVE_TIMEOUT_MS, `${phase} send`);
}

async function received(session: Session, upTo: number, phase: string, timeoutMs = RECEIVE_TIMEOUT_MS): Promise<ResumeReport[]> {
  const replies = await Promise.all(
    session.clients.map((client) => client.request({ type: 'resume-received', upTo, timeoutMs }, timeoutMs + 30_000, `${phase} receive`)),
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
  return {
    clients: sum((r) => r.clients),
    back: sum((r) => r.back),
    recovered: sum((r) => r.recovered),
    droppedAt: Math.min(...reports.map((r) => r.droppedAt)),
    lastBackAt: Math.max(...reports.map((r) => r.lastBackAt)),
    // Each process's times are from its own drop; the processes drop within a few ms of each other.
    backMs: reports.flatMap((r) => r.backMs),
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

/** `p50 1.2 s, p90 …, p99 …, last …` of the clients' times back. */
function quantiles(times: readonly number[]): string {
  if (times.length === 0) return '';
  const sorted = [...times].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  return `p50 ${s(at(0.5))}, p90 ${s(at(0.9))}, p99 ${s(at(0.99))}, last ${s(sorted[sorted.length - 1]!)}`;
}

function describe(report: ResumeReport): string {
  return `${report.missing} lost, ${report.duplicated} duplicated, ${report.reordered} out of order${report.malformed > 0 ? `, ${report.malformed} malformed` : ''}`;
}
