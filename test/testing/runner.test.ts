import { describe, expect, it } from 'vitest';
import { formatResult, parseScenario, runScenario, type Scenario } from '../../src/testing/index.js';
import app from '../scenarios/app.js';

/** Whoever speaks first is heard first: an expectation that holds in one order of two sends only. */
const orderDependent: Scenario = {
  name: 'first come, first said',
  steps: [
    { connect: 'ada' },
    { connect: 'bob' },
    { connect: 'carol' },
    { send: 'carol', json: { join: 'lobby' } },
    { expect: 'carol', json: { joined: 'lobby' } },
    {
      concurrent: [
        { send: 'ada', json: { say: 'lobby', text: 'first' } },
        { send: 'bob', json: { say: 'lobby', text: 'second' } },
      ],
    },
    { expect: 'carol', json: { said: 'first' } },
    { expect: 'carol', json: { said: 'second' } },
  ],
};

describe('scenario runner', () => {
  it('a failing step fails the scenario, names the step, and keeps a per-client timeline', async () => {
    const result = await runScenario(
      {
        name: 'wrong echo',
        steps: [{ connect: 'ada' }, { send: 'ada', json: { echo: 1 } }, { expect: 'ada', json: { echo: 2 }, timeoutMs: 500 }],
      },
      { app },
    );
    expect(result.passed).toBe(false);
    expect(result.failure).toBe('steps[2] (expect): got {"echo":1}, expected JSON containing {"echo":2}');
    const text = formatResult(result);
    expect(text).toMatch(/^FAIL wrong echo \[memory\]/);
    expect(text).toMatch(/ada\n.*connect.*\n.*server +registered as/);
    expect(text).toMatch(/sent +\{"echo":1\}/);
    expect(text).toMatch(/received +\{"echo":1\}/);
    const mermaid = result.timeline.toMermaid('wrong echo');
    expect(mermaid.split('\n').slice(0, 4)).toEqual([
      'sequenceDiagram',
      '  title wrong echo',
      '  participant c_ada as ada',
      '  participant server',
    ]);
    expect(mermaid).toContain('c_ada->>server: {"echo" 1}');
    expect(mermaid).toContain('server->>c_ada: {"echo" 1}');
  });

  it('explores the orders of concurrent steps, reports the failing one, and replays it', async () => {
    for (const transport of ['memory', 'ws'] as const) {
      const result = await runScenario(orderDependent, { app, transport });
      expect(result.passed, formatResult(result)).toBe(false);
      // Order 0:0,1 (as written) passes; the second order tried fails.
      expect(result.orders).toBe(2);
      expect(result.order).toBe('0:1,0');
      expect(result.failure).toMatch(/^steps\[6\] \(expect\): got \{"said":"second","room":"lobby"\}/);
      const replayed = await runScenario(orderDependent, { app, transport, order: result.order! });
      expect(replayed.passed).toBe(false);
      expect(replayed.failure).toBe(result.failure);
      expect((await runScenario(orderDependent, { app, transport, order: '0:0,1' })).passed).toBe(true);
    }
  });

  it('tries every order of small groups, and a seeded sample past maxOrders', async () => {
    const three: Scenario = {
      name: 'three at once',
      steps: [
        { connect: 'a' },
        {
          concurrent: [
            { send: 'a', json: { echo: 1 } },
            { send: 'a', json: { echo: 2 } },
            { send: 'a', json: { echo: 3 } },
          ],
        },
        { assert: { connections: 1 } },
      ],
    };
    expect((await runScenario(three, { app })).orders).toBe(6);
    expect((await runScenario(three, { app, maxOrders: 4, seed: 7 })).orders).toBe(4);
  });

  it('refuses a malformed scenario file with the step that is wrong', () => {
    expect(() => parseScenario({ name: 'x', steps: [{ connect: 'a' }, { send: 'a', close: 'a' }] }, 'x.json')).toThrow(
      new TypeError(
        'x.json (x): steps[1] must have exactly one of connect, send, expect, expectClose, pause, resume, close, drop, advance, broadcast, assert, concurrent, repeat; it has send, close',
      ),
    );
    expect(() => parseScenario({ name: 'x', steps: [{ concurrent: [{ connect: 'a' }] }] })).toThrow(
      /concurrent" must list at least two steps/,
    );
    expect(() => parseScenario({ name: 'x', steps: [{ advance: 'soon' }] })).toThrow(/"advance" must be a number/);
    expect(() => parseScenario({ steps: [] })).toThrow(/"name" must be a non-empty string/);
  });
});
