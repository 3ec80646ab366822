/**
 * The scenario runner's `move` step on a durable cluster: two runtimes of the
 * scenario app on a real Redis with durable streams. A client moved to the other
 * runtime — while away, then while connected — resumes there, recovered, with
 * what it missed replayed once and in order and its room kept.
 */
import { readFileSync } from 'node:fs';
import { beforeAll, expect, test } from 'vitest';
import { createRedisAdapter } from '../../../src/redis.js';
import { formatResult, parseScenario, runScenario, type AppOptions, type Scenario } from '../../../src/testing/index.js';
import { startRedis, type TestRedis } from '../../helpers/redis.js';
import app from '../../scenarios/app.js';

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});

/** The scenario app, its runtimes on one durable Redis cluster per run. */
const durableApp = (options: AppOptions) =>
  app({
    ...options,
    adapter: createRedisAdapter({
      url: redis.url,
      prefix: `move-${process.pid}-${options.scenarioNode!.run}`,
      durable: true,
    }),
  });

const scenario: Scenario = {
  name: 'move between durable runtimes',
  runtimes: 2,
  options: { heartbeat: false, recovery: { windowMs: 30_000 } },
  steps: [
    { client: 'ada', user: 'ada' },
    { client: 'bob', user: 'bob', runtime: 1 },
    { send: 'ada', json: { join: 'lobby' } },
    { expect: 'ada', json: { joined: 'lobby', ok: true } },
    { send: 'bob', json: { join: 'lobby' } },
    { expect: 'bob', json: { joined: 'lobby', ok: true } },
    { send: 'bob', json: { say: 'lobby', text: 'before' } },
    { expectMessages: 'ada', stream: 'room:lobby', json: [{ said: 'before' }] },
    // Away, and moved while away: the reconnect goes to runtime 1.
    { drop: 'ada' },
    { send: 'bob', json: { say: 'lobby', text: 'away' } },
    { expectMessages: 'bob', stream: 'room:lobby', json: [{ said: 'before' }, { said: 'away' }] },
    { move: 'ada', to: 1 },
    { reconnect: 'ada', timeoutMs: 5000 },
    { expectResumed: 'ada', recovered: true },
    { expectMessages: 'ada', stream: 'room:lobby', json: [{ said: 'before' }, { said: 'away' }] },
    { assert: { rooms: { lobby: ['ada', 'bob'] }, noGhosts: true }, runtime: 1, timeoutMs: 5000 },
    // Moved back while connected.
    { move: 'ada', to: 0, timeoutMs: 5000 },
    { expectResumed: 'ada', recovered: true },
    { send: 'bob', json: { say: 'lobby', text: 'after' } },
    { expectMessages: 'ada', stream: 'room:lobby', json: [{ said: 'before' }, { said: 'away' }, { said: 'after' }], timeoutMs: 5000 },
    { assert: { rooms: { lobby: ['ada'] }, noGhosts: true }, timeoutMs: 5000 },
    { assert: { rooms: { lobby: ['bob'] }, noGhosts: true }, runtime: 1, timeoutMs: 5000 },
  ],
};

for (const transport of ['ws', 'memory'] as const) {
  test(`move: a client resumes on another durable runtime, away or connected [${transport}]`, async () => {
    const result = await runScenario(scenario, { app: durableApp, transport });
    expect(result.passed, formatResult(result)).toBe(true);
  }, 30_000);
}

test('the move scenario of docs/testing.md passes on durable runtimes', async () => {
  const page = readFileSync(new URL('../../../docs/testing.md', import.meta.url), 'utf8');
  const section = page.slice(page.indexOf('## Several runtimes and `move`'));
  const scenario = parseScenario(JSON.parse(/```json\n([\s\S]*?)```/.exec(section)![1]!), 'docs/testing.md');
  const result = await runScenario(scenario, { app: durableApp, transport: 'ws' });
  expect(result.passed, formatResult(result)).toBe(true);
}, 30_000);
