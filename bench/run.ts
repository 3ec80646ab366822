/**
 * `npm run bench`: berth, ws and Socket.IO under the same scenarios, servers
 * and clients in separate child processes, alternating systems within each
 * scenario (berth, ws, Socket.IO in round 1; ws, Socket.IO, berth in round
 * 2; and so on), every scenario once, then again while the
 * time budget allows; medians into bench/results/latest.json and the
 * Markdown table.
 *
 *   npm run bench [-- --quick] [--only fanout-1,churn] [--systems berth,ws]
 *                 [--rounds 2] [--clients 1] [--budget-min 12] [--cpu-prof DIR]
 *
 * See bench/README.md for the method and how to read the table.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { killAllChildren } from './children.js';
import { METRICS, type MetricName, type ResultRow } from './metrics.js';
import { SYSTEM_LABELS, SYSTEMS, type SystemName } from './protocol.js';
import { RESULTS_JSON, renderMarkdown, writeReport, type BenchResults, type Failure } from './report.js';
import { runBroadcast } from './runs/broadcast.js';
import { runChurn } from './runs/churn.js';
import { runCluster } from './runs/cluster.js';
import { runClusterResume } from './runs/cluster-resume.js';
import { runClusterSpread } from './runs/cluster-spread.js';
import { runHeartbeat } from './runs/heartbeat.js';
import { runIdle } from './runs/idle.js';
import { runResume } from './runs/resume.js';
import { closeSession, openSession, type Outcome } from './runs/session.js';
import { familyOf, scenarios, systemsOf, type Scenario } from './scenarios.js';

const args = process.argv.slice(2);
const flag = (name: string) => args.includes(`--${name}`);
const option = (name: string): string | undefined => {
  const index = args.indexOf(`--${name}`);
  return index === -1 ? undefined : args[index + 1];
};
const list = (name: string) =>
  option(name)
    ?.split(',')
    .map((item) => item.trim())
    .filter(Boolean);

const quick = flag('quick');
/** `--cpu-prof DIR`: resume-storm, churn and the broadcast scenarios write V8 CPU profiles of each server (and resume-storm's clients) over the measured phase into DIR. */
const cpuProf = option('cpu-prof');
if (cpuProf !== undefined) process.env.BENCH_CPU_PROF = resolve(cpuProf);
const rounds = Number(option('rounds') ?? (quick ? 1 : 2));
const clientProcesses = Number(option('clients') ?? 1);
const budgetMs = Number(option('budget-min') ?? (quick ? 2 : 12)) * 60_000;
/** Whatever happens, the whole run ends by then (children killed, partial results written). */
const hardLimitMs = quick ? 6 * 60_000 : 45 * 60_000;

const systems = (list('systems') ?? SYSTEMS) as SystemName[];
for (const system of systems) if (!SYSTEMS.includes(system)) usage(`unknown system ${system}`);
const all = scenarios(quick);
const only = list('only');
for (const id of only ?? []) if (!all.some((s) => familyOf(s.id) === id || s.id === id)) usage(`unknown scenario ${id}`);
const selected = all.filter((s) => only === undefined || only.includes(familyOf(s.id)) || only.includes(s.id));
if (!(rounds >= 1) || !(clientProcesses >= 1)) usage('--rounds and --clients must be at least 1');

function usage(message: string): never {
  console.error(`bench: ${message}`);
  console.error(
    `usage: npm run bench -- [--quick] [--only ${[...new Set(all.map((s) => familyOf(s.id)))].join(',')}] [--systems ${SYSTEMS.join(',')}] [--rounds N] [--clients N] [--budget-min N] [--cpu-prof DIR]`,
  );
  process.exit(2);
}

const began = performance.now();
const stamp = () => `[${((performance.now() - began) / 1000).toFixed(1).padStart(6)} s]`;
const say = (line: string) => console.log(`${stamp()} ${line}`);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    killAllChildren();
    process.exit(130);
  });
}
const hardLimit = setTimeout(() => {
  say(`hard time limit of ${hardLimitMs / 60_000} min reached: stopping`);
  killAllChildren();
  void finish(true).finally(() => process.exit(1));
}, hardLimitMs);
hardLimit.unref();

interface Run {
  scenario: string;
  system: SystemName;
  round: number;
  outcome: Outcome;
}
const runs: Run[] = [];
const failures: Failure[] = [];

async function runOne(scenario: Scenario, system: SystemName, round: number): Promise<Outcome> {
  const prefix = `${scenario.id} · round ${round} · ${SYSTEM_LABELS[system]}`;
  const log = (line: string) => say(`${prefix}: ${line}`);
  // A cluster run starts its own servers, clients and Redis.
  if (scenario.kind === 'cluster') return runCluster(system, scenario, log);
  if (scenario.kind === 'cluster-spread') return runClusterSpread(system, scenario, log);
  if (scenario.kind === 'cluster-resume') return runClusterResume(system, scenario, log);
  let session;
  try {
    // resume-storm: both systems keep a session for every client (see servers/system.ts).
    // idle-heartbeat: every system's heartbeat at the scenario's interval and timeout.
    // fanout-deflate: every system negotiates permessage-deflate.
    const serverEnv: Record<string, string> | undefined =
      scenario.kind === 'resume'
        ? { BENCH_RECOVERY_SESSIONS: String(2 * scenario.rooms * scenario.perRoom) }
        : scenario.kind === 'heartbeat'
          ? { BENCH_HEARTBEAT: `${scenario.intervalMs},${scenario.timeoutMs}` }
          : scenario.kind === 'broadcast' && scenario.compression === true
            ? { BENCH_COMPRESSION: '1' }
            : undefined;
    session = await openSession(system, scenario.kind === 'churn' ? 1 : clientProcesses, log, serverEnv);
    switch (scenario.kind) {
      case 'broadcast':
        return await runBroadcast(session, scenario);
      case 'idle':
        return await runIdle(session, scenario);
      case 'heartbeat':
        return await runHeartbeat(session, scenario);
      case 'churn':
        return await runChurn(session, scenario);
      case 'resume':
        return await runResume(session, scenario);
      default:
        throw new Error(`unknown scenario kind of ${(scenario as Scenario).id}`);
    }
  } catch (error) {
    return { metrics: {}, notes: [], failure: error instanceof Error ? error.message : String(error) };
  } finally {
    if (session !== undefined) await closeSession(session);
  }
}

async function main(): Promise<void> {
  say(
    `berth benchmark${quick ? ' (quick)' : ''}: ${selected.map((s) => s.id).join(', ')} × ${systems.map((s) => SYSTEM_LABELS[s]).join(', ')}, ` +
      `up to ${rounds} round${rounds > 1 ? 's' : ''}, ${clientProcesses} client process${clientProcesses > 1 ? 'es' : ''}, budget ${budgetMs / 60_000} min`,
  );
  // Round 1 of every scenario first, then further rounds while the budget allows, cheapest
  // first so that as many scenarios as possible get them: each scenario's round 1 says what
  // another costs. Variants (`slow-client/baseline`) go with their scenario, so that rows
  // meant to be compared have the same rounds.
  const firstRoundMs = new Map<string, number>();
  const families = [...new Set(selected.map((s) => familyOf(s.id)))];
  const membersOf = (family: string) => selected.filter((s) => familyOf(s.id) === family);
  const costOf = (family: string) => membersOf(family).reduce((sum, s) => sum + firstRoundMs.get(s.id)!, 0);
  for (let round = 1; round <= rounds; round++) {
    const order = round === 1 ? families : [...families].sort((a, b) => costOf(a) - costOf(b));
    for (const family of order) {
      const members = membersOf(family);
      if (round > 1) {
        const projected = performance.now() - began + costOf(family);
        if (projected > budgetMs) {
          say(`${family}: skipping round ${round} (would end at ~${(projected / 60_000).toFixed(1)} min, budget ${budgetMs / 60_000} min)`);
          continue;
        }
      }
      for (const scenario of members) {
        const roundStart = performance.now();
        // Each round starts with the next system: the one right after the previous scenario shares the
        // machine with that scenario's teardown (10 000 sockets closing), so no system always pays it.
        for (const system of rotated(systems, round - 1)) {
          if (!systemsOf(scenario).includes(system)) continue;
          const outcome = await runOne(scenario, system, round);
          runs.push({ scenario: scenario.id, system, round, outcome });
          if (outcome.failure !== undefined) {
            failures.push({ scenario: scenario.id, system, round, reason: outcome.failure });
            console.error(`\n${stamp()} ✖✖✖ FAILED: ${scenario.id} · round ${round} · ${SYSTEM_LABELS[system]}: ${outcome.failure}\n`);
          }
        }
        if (round === 1) firstRoundMs.set(scenario.id, performance.now() - roundStart);
      }
    }
  }
  await finish(false);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** What a failed run keeps: how much arrived, was lost or recovered. Its other numbers describe a broken run. */
const KEPT_ON_FAILURE: ReadonlySet<MetricName> = new Set([
  'delivered_fraction',
  'lost_messages',
  'duplicated_messages',
  'recovered_fraction',
]);

let finishing = false;
async function finish(aborted: boolean): Promise<void> {
  if (finishing) return;
  finishing = true;
  const rows: ResultRow[] = [];
  for (const scenario of selected) {
    for (const system of systems) {
      const mine = runs.filter((run) => run.scenario === scenario.id && run.system === system);
      for (const metric of Object.keys(METRICS) as MetricName[]) {
        const values = mine
          .filter((run) => run.outcome.failure === undefined || KEPT_ON_FAILURE.has(metric))
          .map((run) => run.outcome.metrics[metric])
          .filter((value): value is number => value !== undefined && Number.isFinite(value));
        if (values.length > 0) rows.push({ scenario: scenario.id, system, metric, value: median(values), unit: METRICS[metric].unit });
      }
    }
  }
  const fresh: BenchResults = {
    machine: {
      cpus: os.cpus().length,
      model: os.cpus()[0]?.model.trim() ?? 'unknown',
      totalmem: os.totalmem(),
      node: process.version,
      platform: os.platform(),
      date: new Date().toISOString(),
      quick,
    },
    results: rows,
    scenarios: Object.fromEntries(selected.map((s) => [s.id, s.title])),
    rounds: Math.max(1, ...runs.map((run) => run.round)),
    failures: aborted ? [...failures, { scenario: '*', system: '*', round: 0, reason: 'run aborted at the hard time limit' }] : failures,
    runs: runs.map((run) => ({
      scenario: run.scenario,
      system: run.system,
      round: run.round,
      metrics: run.outcome.metrics as Record<string, number>,
      notes: run.outcome.notes,
    })),
  };
  // A partial run (--only, --systems) replaces its own rows in latest.json and keeps every other.
  const bench = only !== undefined || list('systems') !== undefined ? await mergeIntoLatest(fresh) : fresh;
  console.log(`\n${renderMarkdown(bench ?? fresh)}`);
  if (bench !== undefined) {
    await mkdir(new URL('.', RESULTS_JSON), { recursive: true });
    await writeFile(RESULTS_JSON, `${JSON.stringify(bench, null, 2)}\n`);
    const readme = await writeReport(bench);
    say(`wrote ${fileURLToPath(RESULTS_JSON)}, bench/results/latest.md${readme ? ' and the README block' : ''}`);
  }
  killAllChildren();
  reportLeftovers();
  // This run's failures only: those of scenarios merged from an earlier run are in the table, not this exit status.
  if (fresh.failures.length > 0) {
    console.error(`${stamp()} ✖ ${fresh.failures.length} run(s) failed:`);
    for (const f of fresh.failures) console.error(`  - ${f.scenario} · round ${f.round} · ${f.system}: ${f.reason}`);
    process.exitCode = 1;
  }
}

/**
 * This run's results merged into bench/results/latest.json: the rows, runs and
 * failures of every (scenario, system) pair this run ran replace the old ones;
 * everything else stays, and `measuredAt` says when each scenario was last
 * measured. A quick run is never merged into a full one, nor a full run into
 * a quick one: then nothing is written (undefined), the table only printed.
 */
async function mergeIntoLatest(fresh: BenchResults): Promise<BenchResults | undefined> {
  let old: BenchResults;
  try {
    old = JSON.parse(await readFile(RESULTS_JSON, 'utf8')) as BenchResults;
  } catch {
    return fresh;
  }
  if (old.machine?.quick !== fresh.machine.quick) {
    say(
      `not written: latest.json holds a ${old.machine?.quick ? 'quick' : 'full'} run, and a partial ${quick ? 'quick' : 'full'} run is not merged into it ` +
        `(run it ${quick ? 'without' : 'with'} --quick, or run every scenario)`,
    );
    return undefined;
  }
  const key = (scenario: string, system: string) => `${scenario}\u0000${system}`;
  const ran = new Set(runs.map((run) => key(run.scenario, run.system)));
  const kept = <T extends { scenario: string; system: string }>(items: readonly T[]) =>
    items.filter((item) => !ran.has(key(item.scenario, item.system)));
  const ranScenarios = new Set(runs.map((run) => run.scenario));
  const titles = { ...old.scenarios, ...fresh.scenarios };
  // The table in the order of the scenario list, whatever order the runs came in.
  const order = all.map((s) => s.id);
  const rank = (id: string) => (order.includes(id) ? order.indexOf(id) : order.length);
  const ids = Object.keys(titles).sort((a, b) => rank(a) - rank(b));
  const measuredAt: Record<string, string> = {};
  for (const id of ids) measuredAt[id] = ranScenarios.has(id) ? fresh.machine.date : (old.measuredAt?.[id] ?? old.machine.date);
  const merged: BenchResults = {
    machine: fresh.machine,
    results: [...kept(old.results), ...fresh.results],
    scenarios: Object.fromEntries(ids.map((id) => [id, titles[id]!])),
    measuredAt,
    rounds: Math.max(old.rounds, fresh.rounds),
    failures: [...kept(old.failures), ...fresh.failures],
    runs: [...kept(old.runs), ...fresh.runs],
  };
  say(`merged into latest.json: replaced ${ran.size} scenario × system pair(s), kept the rest`);
  return merged;
}

/** Every child is killed by now; say so loudly if the process table disagrees. */
function reportLeftovers(): void {
  let found = '';
  try {
    found = execFileSync('pgrep', ['-f', 'bench/(server|client)-process'], { encoding: 'utf8' }).trim();
  } catch {
    // pgrep exits 1 when nothing matches, and may be missing: either way nothing to report.
  }
  if (found !== '') console.error(`${stamp()} warning: bench processes still running: ${found.split('\n').join(', ')}`);
}

await main();
clearTimeout(hardLimit);

/** `list` starting at its `by`-th element (modulo its length), in the same cyclic order. */
function rotated<T>(list: readonly T[], by: number): T[] {
  const at = by % list.length;
  return [...list.slice(at), ...list.slice(0, at)];
}
