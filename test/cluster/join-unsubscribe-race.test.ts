/**
 * A join racing its room's unsubscribe, explored with the scenario runner:
 * the app under test is a node on a Redis of the test's own whose
 * subscriptions linger 0 ms, so the last member's leave unsubscribes the
 * room's channel at once and the next join subscribes it again, with the two
 * commands close together on the subscriber connection. Broadcasts come from
 * another node, in its own process, that hosts nobody. Whatever the order of
 * the leave and the join, a member whose join resolved receives the next
 * broadcast from the other node.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime, type Runtime } from '../../src/index.js';
import { createRedisAdapter } from '../../src/redis.js';
import { formatResult, runScenario, type AppOptions, type Scenario } from '../../src/testing/index.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { startNode, type ClusterNode } from './nodes.js';

let redis: TestRedis;
let publisher: ClusterNode;
const PREFIX = 'join-race';
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await publisher?.kill();
});

/** Node b: `{"join"|"leave": room}` as the scenario app; `{"relay": room, "text": t}` asks node a to broadcast `{"said": t}` there. */
function app(options: AppOptions): Runtime {
  const runtime = createRuntime({ ...options, adapter: createRedisAdapter({ url: redis.url, prefix: PREFIX, unsubscribeLingerMs: 0 }) });
  runtime.on('error', () => {});
  runtime.on('message', async ({ connection, data }) => {
    const message = JSON.parse(String(data)) as { join?: string; leave?: string; relay?: string; text?: string };
    if (message.join !== undefined) connection.send(JSON.stringify({ joined: message.join, ok: await connection.join(message.join) }));
    if (message.leave !== undefined) connection.send(JSON.stringify({ left: message.leave, ok: await connection.leave(message.leave) }));
    if (message.relay !== undefined) {
      await publisher.request({ op: 'sendToRoom', name: message.relay, data: JSON.stringify({ said: message.text }) });
    }
  });
  return runtime;
}

/** `from` leaves the lobby and `to` joins it, issued together (the runner tries both orders). */
const handOver = (from: string, to: string, text: string) => [
  {
    concurrent: [
      { send: from, json: { leave: 'lobby' } },
      { send: to, json: { join: 'lobby' } },
    ],
  },
  { expect: from, json: { left: 'lobby', ok: true } },
  { expect: to, json: { joined: 'lobby', ok: true } },
  { send: to, json: { relay: 'lobby', text } },
  { expect: to, json: { said: text } },
];

/** `from` leaves, and once that resolved (the unsubscribe is on its way) `to` joins. */
const handOverAfter = (from: string, to: string, text: string) => [
  { send: from, json: { leave: 'lobby' } },
  { expect: from, json: { left: 'lobby', ok: true } },
  { send: to, json: { join: 'lobby' } },
  { expect: to, json: { joined: 'lobby', ok: true } },
  { send: to, json: { relay: 'lobby', text } },
  { expect: to, json: { said: text } },
];

const scenario: Scenario = {
  name: 'a join racing the unsubscribe of its room',
  steps: [
    { connect: 'ada' },
    { connect: 'bob' },
    { send: 'ada', json: { join: 'lobby' } },
    { expect: 'ada', json: { joined: 'lobby', ok: true } },
    { send: 'ada', json: { relay: 'lobby', text: 'first' } },
    { expect: 'ada', json: { said: 'first' } },
    {
      repeat: 5,
      steps: [
        ...handOver('ada', 'bob', 'to bob'),
        ...handOver('bob', 'ada', 'to ada'),
        ...handOverAfter('ada', 'bob', 'then to bob'),
        ...handOverAfter('bob', 'ada', 'then to ada'),
      ],
    },
  ],
} as Scenario;

describe('a join racing its room’s unsubscribe, across nodes', () => {
  it('never leaves a member that receives nothing, in every order of the leave and the join', async () => {
    publisher = await startNode({ REDIS_URL: redis.url, BERTH_PREFIX: PREFIX, UNSUBSCRIBE_LINGER_MS: '0' });
    for (const transport of ['memory', 'ws'] as const) {
      const result = await runScenario(scenario, { app, transport });
      expect(result.passed, formatResult(result)).toBe(true);
      expect(result.orders).toBeGreaterThan(1);
    }
  }, 120_000);
});
