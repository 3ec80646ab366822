/**
 * `npm run bench`: berth, ws and Socket.IO under the same scenarios, servers
 * and clients in separate child processes, alternating systems within each
 * scenario (berth, ws, Socket.IO), every scenario once, then again while the
 * time budget allows; medians into bench/results/latest.json and the
 * Markdown table.
 *
 *   npm run bench [-- --quick] [--only fanout-1,churn] [--systems berth,ws]
 *                 [--rounds 2] [--clients 1] [--budget-min 12]
 *
 * See bench/README.md for the method and how to read the table.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { killAllChildren } from './children.js';
import { METRICS, type MetricName, type ResultRow } from './metrics.js';
import { SYSTEM_LABELS, SYSTEMS, type SystemName } from './protocol.js';
import { RESULTS_JSON, renderMarkdown, writeReport, type BenchResults, type Failure } from './report.js';
import { runBroadcast } from './runs/broadcast.js';
import { runChurn } from './runs/churn.js';
import { runCluster } from './runs/cluster.js';
import { runIdle } from './runs/idle.js';
import { closeSession, openSession, type Outcome } from './runs/session.js';
import { CLUSTER_SYSTEMS, familyOf, scenarios, type Scenario } from './scenarios.js';

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
    `usage: npm run bench -- [--quick] [--only ${[...new Set(all.map((s) => familyOf(s.id)))].join(',')}] [--systems ${SYSTEMS.join(',')}] [--rounds N] [--clients N] [--budget-min N]`,
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
  let session;
  try {
    session = await openSession(system, scenario.kind === 'churn' ? 1 : clientProcesses, log);
    switch (scenario.kind) {
      case 'broadcast':
        return await runBroadcast(session, scenario);
      case 'idle':
        return await runIdle(session, scenario);
      case 'churn':
        return await runChurn(session, scenario);
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
        for (const system of systems) {
          if (scenario.kind === 'cluster' && !CLUSTER_SYSTEMS.includes(system)) continue;
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

let finishing = false;
async function finish(aborted: boolean): Promise<void> {
  if (finishing) return;
  finishing = true;
  const rows: ResultRow[] = [];
  for (const scenario of selected) {
    for (const system of systems) {
      const mine = runs.filter((run) => run.scenario === scenario.id && run.system === system);
      for (const metric of Object.keys(METRICS) as MetricName[]) {
        // A failed run keeps only its delivered fraction: its other numbers describe a broken run.
        const values = mine
          .filter((run) => run.outcome.failure === undefined || metric === 'delivered_fraction')
          .map((run) => run.outcome.metrics[metric])
          .filter((value): value is number => value !== undefined && Number.isFinite(value));
        if (values.length > 0) rows.push({ scenario: scenario.id, system, metric, value: median(values), unit: METRICS[metric].unit });
      }
    }
  }
  const bench: BenchResults = {
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
  await mkdir(new URL('.', RESULTS_JSON), { recursive: true });
  await writeFile(RESULTS_JSON, `${JSON.stringify(bench, null, 2)}\n`);
  const readme = await writeReport(bench);
  console.log(`\n${renderMarkdown(bench)}`);
  say(`wrote ${fileURLToPath(RESULTS_JSON)}, bench/results/latest.md${readme ? ' and the README block' : ''}`);
  killAllChildren();
  reportLeftovers();
  if (bench.failures.length > 0) {
    console.error(`${stamp()} ✖ ${bench.failures.length} run(s) failed:`);
    for (const f of bench.failures) console.error(`  - ${f.scenario} · round ${f.round} · ${f.system}: ${f.reason}`);
    process.exitCode = 1;
  }
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
