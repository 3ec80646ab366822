#!/usr/bin/env node
/**
 * `berth-scenario`: runs scenario files against your application.
 *
 *   berth-scenario --app ./app.js [--transport memory|ws|both] [--order 0:1,0]
 *                  [--max-orders 24] [--seed 1] [--mermaid dir] scenario.json…
 *
 * `--app` names a module whose default export (or `app` export) is an
 * `AppFactory`: `(options) => runtime`. Prints PASS/FAIL per scenario and
 * transport, a timeline for each failure, and exits 1 if any failed.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { formatResult, runScenario, type AppFactory } from './runner.js';
import { parseScenario, type TransportName } from './scenario.js';

const USAGE =
  'usage: berth-scenario --app <module> [--transport memory|ws|both] [--order <order>] [--max-orders N] [--seed N] [--mermaid <dir>] <scenario.json>…';

function fail(message: string): never {
  console.error(`berth-scenario: ${message}\n${USAGE}`);
  process.exit(2);
}

const args = process.argv.slice(2);
const files: string[] = [];
const flags: Record<string, string> = {};
for (let i = 0; i < args.length; i++) {
  const arg = args[i]!;
  if (arg.startsWith('--')) {
    const value = args[++i];
    if (value === undefined) fail(`${arg} needs a value`);
    flags[arg.slice(2)] = value;
  } else files.push(arg);
}
for (const flag of Object.keys(flags)) {
  if (!['app', 'transport', 'order', 'max-orders', 'seed', 'mermaid'].includes(flag)) fail(`unknown option --${flag}`);
}
if (flags.app === undefined) fail('--app is required');
if (files.length === 0) fail('no scenario file given');
const transports: TransportName[] =
  flags.transport === undefined || flags.transport === 'both'
    ? ['memory', 'ws']
    : flags.transport === 'memory' || flags.transport === 'ws'
      ? [flags.transport]
      : fail(`unknown transport ${flags.transport}`);

const module = (await import(pathToFileURL(path.resolve(flags.app)).href)) as { default?: unknown; app?: unknown };
const app = (module.default ?? module.app) as AppFactory | undefined;
if (typeof app !== 'function') fail(`${flags.app} exports no function as default or as app`);

let failed = 0;
let passed = 0;
for (const file of files) {
  let scenario;
  try {
    scenario = parseScenario(JSON.parse(readFileSync(file, 'utf8')), file);
  } catch (error) {
    console.log(`FAIL ${file}: ${error instanceof Error ? error.message : String(error)}`);
    failed++;
    continue;
  }
  for (const transport of transports.filter((t) => scenario.transports?.includes(t) ?? true)) {
    const result = await runScenario(scenario, {
      app,
      transport,
      ...(flags.order !== undefined && { order: flags.order }),
      ...(flags['max-orders'] !== undefined && { maxOrders: Number(flags['max-orders']) }),
      ...(flags.seed !== undefined && { seed: Number(flags.seed) }),
    });
    console.log(formatResult(result));
    if (result.passed) passed++;
    else {
      failed++;
      if (flags.mermaid !== undefined) {
        mkdirSync(flags.mermaid, { recursive: true });
        const out = path.join(flags.mermaid, `${path.basename(file, '.json')}.${transport}.mmd`);
        writeFileSync(out, result.timeline.toMermaid(`${scenario.name} (${transport}, order ${result.order})`));
        console.log(`  sequence diagram: ${out}`);
      }
    }
  }
}
console.log(`\n${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
