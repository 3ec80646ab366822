/**
 * The scenario library: one scenario file for each bug and risk of the
 * reviewed design, run on both transports against `app.ts`.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { formatResult, parseScenario, runScenario, type TransportName } from '../../src/testing/index.js';
import app from './app.js';

const directory = new URL('./', import.meta.url);
const files = readdirSync(directory)
  .filter((file) => file.endsWith('.json'))
  .sort();

describe('scenario library', () => {
  it('has a scenario for every risk of the review', () => {
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
      ]),
    );
  });

  for (const file of files) {
    const scenario = parseScenario(JSON.parse(readFileSync(new URL(file, directory), 'utf8')), file);
    for (const transport of scenario.transports ?? (['memory', 'ws'] as TransportName[])) {
      it(`${file} on ${transport}`, async () => {
        const result = await runScenario(scenario, { app, transport });
        expect(result.passed, formatResult(result)).toBe(true);
      }, 60_000);
    }
  }
});
