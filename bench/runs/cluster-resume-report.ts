/** cluster-resume: asking the client processes what their clients have, and adding their answers up. */
import type { ClusterResumeReport } from '../protocol.js';
import type { ClientChild } from './session.js';

/** Once every client has k = upTo[p] - 1 of every publisher p with upTo[p] > 0 (or the timeout), all processes' reports together. */
export async function received(
  clients: readonly ClientChild[],
  upTo: readonly number[],
  timeoutMs: number,
  phase: string,
): Promise<ClusterResumeReport> {
  const replies = await Promise.all(
    clients.map((client) => client.request({ type: 'cr-received', upTo, timeoutMs }, timeoutMs + 30_000, `${phase} receive`)),
  );
  return mergeReports(replies.map((reply) => reply.report));
}

/** Every process's report with publisher p's k = 0..bounds[p][room]-1 checked, together. */
export async function report(
  clients: readonly ClientChild[],
  bounds: readonly Readonly<Record<string, number>>[],
): Promise<ClusterResumeReport> {
  const replies = await Promise.all(clients.map((client) => client.request({ type: 'cr-report', bounds }, 30_000, 'report')));
  return mergeReports(replies.map((reply) => reply.report));
}

/** A progress line while the moved clients come back; a busy client process may not answer in time, and then there is none. */
export async function progress(clients: readonly ClientChild[], log: (line: string) => void): Promise<void> {
  try {
    const now = mergeReports(
      (await Promise.all(clients.map((client) => client.request({ type: 'cr-report', bounds: [] }, 4_000, 'progress')))).map(
        (r) => r.report,
      ),
    );
    log(
      `${now.back.toLocaleString('en-US')}/${now.moved.toLocaleString('en-US')} back, ${now.recovered.toLocaleString('en-US')} recovered, ` +
        `${now.attempts.toLocaleString('en-US')} attempts begun, ${now.failedAttempts} failed so far`,
    );
  } catch {
    // Only informative.
  }
}

export function mergeReports(reports: readonly ClusterResumeReport[]): ClusterResumeReport {
  const sum = (pick: (report: ClusterResumeReport) => number) => reports.reduce((total, report) => total + pick(report), 0);
  const publishers = Math.max(0, ...reports.map((r) => r.highest.length));
  const highest = Array.from({ length: publishers }, (_, p) => {
    const merged: Record<string, number> = {};
    for (const r of reports) {
      for (const [room, k] of Object.entries(r.highest[p] ?? {})) merged[room] = Math.max(merged[room] ?? -1, k);
    }
    return merged;
  });
  return {
    clients: sum((r) => r.clients),
    moved: sum((r) => r.moved),
    back: sum((r) => r.back),
    recovered: sum((r) => r.recovered),
    strayDrops: sum((r) => r.strayDrops),
    lastBackAt: Math.max(0, ...reports.map((r) => r.lastBackAt)),
    backMs: reports.flatMap((r) => r.backMs),
    liveMs: reports.flatMap((r) => r.liveMs),
    haveAll: sum((r) => r.haveAll),
    reached: sum((r) => r.reached),
    missing: sum((r) => r.missing),
    missingBy: Array.from({ length: publishers }, (_, p) => sum((r) => r.missingBy[p] ?? 0)),
    duplicated: sum((r) => r.duplicated),
    reordered: sum((r) => r.reordered),
    malformed: sum((r) => r.malformed),
    lostEvents: sum((r) => r.lostEvents),
    attempts: sum((r) => r.attempts),
    failedAttempts: sum((r) => r.failedAttempts),
    highest,
    firstErrors: reports.flatMap((r) => r.firstErrors),
    cpuUs: sum((r) => r.cpuUs),
  };
}

/** `p50 120 ms, p90 …, p99 …, last …` of times in ms. */
export function msQuantiles(times: readonly number[]): string {
  if (times.length === 0) return 'none';
  const sorted = [...times].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
  const ms = (value: number) => `${Math.round(value).toLocaleString('en-US')} ms`;
  return `p50 ${ms(at(0.5))}, p90 ${ms(at(0.9))}, p99 ${ms(at(0.99))}, last ${ms(sorted[sorted.length - 1]!)}`;
}
