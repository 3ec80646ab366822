/**
 * The scenario library: one scenario file for each bug and risk of the
 * reviewed design, and for sessions and resume, run on both transports
 * against `app.ts`.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { formatResult, parseScenario, runScenario, type TransportName } from '../../src/testing/index.js';
import app from './app.js';

const directory = new URL('./', import.meta.url);
const files = readdirSync(directory)
  .filter((file) => file.endsWith('.json'))
  .sort();

/**
 * Scenarios that find a defect of berth not fixed yet: each must fail, and
 * with this failure. Once the defect is fixed its scenario passes, this test
 * fails, and the entry goes: the scenario then guards the fix.
 */
/** Scenarios that fail for a defect berth still has: each must fail with its defect's message, and only so. */
const KNOWN_DEFECTS: Record<string, { readonly failure: RegExp; readonly defect: string }> = {};

describe('scenario library', () => {
  it('has a scenario for every risk of the review, and for resume', () => {
    expect(files).toEqual(
      expect.arrayContaining([
        'double-cleanup.json',
        'close-codes.json',
        'heartbeat.json',
        'join-race.json',
        'user-binding.json',
        'slow-client-close.json',
        'slow-client-drop-oldest.json',
        'slow-client-drop-newest.json',
        'connection-limit.json',
        'broadcast-1mb.json',
        'churn.json',
        'resume-after-drop.json',
        'resume-after-window.json',
        'resume-history-trimmed.json',
        'resume-races.json',
        'resume-racing-broadcasts.json',
      ]),
    );
  });

  for (const file of files) {
    const scenario = parseScenario(JSON.parse(readFileSync(new URL(file, directory), 'utf8')), file);
    const known = KNOWN_DEFECTS[file];
    for (const transport of scenario.transports ?? (['memory', 'ws'] as TransportName[])) {
      if (known !== undefined) {
        it(`${file} on ${transport} finds a known defect: ${known.defect}`, async () => {
          const result = await runScenario(scenario, { app, transport });
          expect(result.passed, `the defect no longer shows: remove ${file} from KNOWN_DEFECTS\n${formatResult(result)}`).toBe(false);
          expect(result.failure, formatResult(result)).toMatch(known.failure);
        }, 60_000);
        continue;
      }
      it(`${file} on ${transport}`, async () => {
        const result = await runScenario(scenario, { app, transport });
        expect(result.passed, formatResult(result)).toBe(true);
      }, 60_000);
    }
  }
});
