import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { formatResult, parseScenario, runScenario, type Scenario, type Step } from '../../src/testing/index.js';
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
        'x.json (x): steps[1] must have exactly one of connect, client, send, expect, expectResumed, expectMessages, expectClose, pause, resume, close, drop, reconnect, move, advance, broadcast, assert, concurrent, repeat; it has send, close',
      ),
    );
    expect(() => parseScenario({ name: 'x', steps: [{ concurrent: [{ connect: 'a' }] }] })).toThrow(
      /concurrent" must list at least two steps/,
    );
    expect(() => parseScenario({ name: 'x', steps: [{ advance: 'soon' }] })).toThrow(/"advance" must be a number/);
    expect(() => parseScenario({ steps: [] })).toThrow(/"name" must be a non-empty string/);
    // A runtime a step names must be one of the scenario's.
    expect(() => parseScenario({ name: 'x', steps: [{ client: 'a' }, { move: 'a', to: 1 }] })).toThrow(
      `scenario (x): steps[1]: move needs "to", the index of one of the scenario's 1 runtime (0 to 0)`,
    );
    expect(() => parseScenario({ name: 'x', runtimes: 2, steps: [{ client: 'a', runtime: 2 }] })).toThrow(/"runtime" of client must be/);
    expect(() => parseScenario({ name: 'x', runtimes: 2, steps: [{ broadcast: { all: true, text: 'x', runtime: -1 } }] })).toThrow(
      /"runtime" of broadcast must be/,
    );
    expect(() => parseScenario({ name: 'x', runtimes: 0, steps: [] })).toThrow(/"runtimes" must be a whole number from 1 to 16/);
  });
});

/** ada, a berth/client client in the lobby, drops; the room gets two messages while she is away. */
const dropped: Step[] = [
  { client: 'ada', user: 'ada' },
  { send: 'ada', json: { join: 'lobby' } },
  { expect: 'ada', json: { joined: 'lobby', ok: true } },
  { broadcast: { room: 'lobby', text: 'before' } },
  { expectMessages: 'ada', stream: 'room:lobby', texts: ['before'] },
  { drop: 'ada' },
  { broadcast: { room: 'lobby', text: 'away 1' } },
  { broadcast: { room: 'lobby', text: 'away 2' } },
];
const windowed = { recovery: { windowMs: 1000 }, heartbeat: false };

describe('scenario runner: berth/client clients', () => {
  it('drops, reconnects and resumes a client, and records its states, resume and stream messages in the timeline', async () => {
    for (const transport of ['memory', 'ws'] as const) {
      const result = await runScenario(
        {
          name: 'resumed',
          steps: [
            ...dropped,
            { reconnect: 'ada' },
            { expectResumed: 'ada', recovered: true },
            { expectMessages: 'ada', stream: 'room:lobby', texts: ['before', 'away 1', 'away 2'] },
            { assert: { rooms: { lobby: ['ada'] }, states: { ada: 'open' }, noGhosts: true, maxLive: { ada: 1 } } },
          ],
        },
        { app, transport },
      );
      expect(result.passed, formatResult(result)).toBe(true);
      const text = result.timeline.format();
      expect(text).toMatch(/state +reconnecting/);
      expect(text).toMatch(/network +back up/);
      expect(text).toMatch(/sent +resume/);
      expect(text).toMatch(/server +resumed the session of /);
      expect(text).toMatch(/session +resumed: recovered/);
      expect(text).toMatch(/received +room:lobby #3: away 2/);
    }
  });

  it('a resume expected recovered that is not fails, saying why it was not', async () => {
    const result = await runScenario(
      {
        name: 'too late',
        options: windowed,
        steps: [...dropped, { advance: 1000 }, { reconnect: 'ada' }, { expectResumed: 'ada', recovered: true }],
      },
      { app },
    );
    expect(result.passed).toBe(false);
    expect(result.failure).toBe("steps[10] (expectResumed): ada's resumed: not recovered, unknown-session; expected recovered");
    expect(formatResult(result)).toMatch(/session +resumed: not recovered, unknown-session/);
  });

  it('lost streams and a reason that differ from the expected ones fail, naming both', async () => {
    const trimmed: Scenario = {
      name: 'trimmed',
      options: { history: { maxMessages: 1 } },
      steps: [
        ...dropped,
        { reconnect: 'ada' },
        { expectResumed: 'ada', recovered: false, lost: [{ stream: 'room:lobby', reason: 'expired' }] },
      ],
    };
    const result = await runScenario(trimmed, { app });
    expect(result.failure).toBe('steps[9] (expectResumed): ada lost [room:lobby (trimmed)], expected [room:lobby (expired)]');
    const reason = await runScenario(
      { ...trimmed, steps: [...dropped, { reconnect: 'ada' }, { expectResumed: 'ada', recovered: false, reason: 'unknown-session' }] },
      { app },
    );
    expect(reason.failure).toBe(
      "steps[9] (expectResumed): ada's resumed: not recovered, lost; lost room:lobby (trimmed); expected the reason unknown-session",
    );
  });

  it('messages of a stream other than expected fail with what arrived, offsets included', async () => {
    const result = await runScenario(
      {
        name: 'a gap',
        steps: [...dropped, { reconnect: 'ada' }, { expectMessages: 'ada', stream: 'room:lobby', texts: ['before', 'away 2'] }],
      },
      { app },
    );
    expect(result.failure).toBe(
      'steps[9] (expectMessages): ada received [#1 before, #2 away 1, #3 away 2] on room:lobby, expected [before, away 2]',
    );
    const fewer = await runScenario(
      {
        name: 'more',
        steps: [...dropped.slice(0, 4), { expectMessages: 'ada', stream: 'room:lobby', texts: ['before', 'later'], timeoutMs: 100 }],
      },
      { app },
    );
    expect(fewer.failure).toBe('steps[4] (expectMessages): ada received [#1 before] on room:lobby within 100 ms, expected 2 messages');
  });

  it('a resume and the expiry in a concurrent group are tried in both orders, and the order that loses the session is reported', async () => {
    const race: Scenario = {
      name: 'resume or expiry first',
      options: windowed,
      steps: [...dropped, { concurrent: [{ reconnect: 'ada' }, { advance: 1000 }] }, { expectResumed: 'ada', recovered: true }],
    };
    for (const transport of ['memory', 'ws'] as const) {
      const result = await runScenario(race, { app, transport });
      expect(result.orders).toBe(2);
      expect(result.order).toBe('0:1,0');
      expect(result.failure).toMatch(/not recovered, unknown-session; expected recovered$/);
      expect((await runScenario(race, { app, transport, order: '0:0,1' })).passed).toBe(true);
    }
  });

  it('an assertion of no two connections at once fails when there were', async () => {
    const result = await runScenario(
      {
        name: 'two',
        steps: [...dropped.slice(0, 3), { drop: 'ada' }, { reconnect: 'ada' }, { assert: { maxLive: { ada: 0 } }, timeoutMs: 50 }],
      },
      { app },
    );
    expect(result.failure).toBe('steps[5] (assert): after 50 ms: the server held 1 connections of ada open at once, expected at most 0');
  });

  it('says which kind of client a step is for', async () => {
    const paused = await runScenario({ name: 'pause', steps: [{ client: 'ada' }, { pause: 'ada' }] }, { app });
    expect(paused.failure).toBe('steps[1] (pause): pause is for raw clients; ada is a berth/client client');
    const raw = await runScenario({ name: 'raw', steps: [{ connect: 'bob' }, { expectResumed: 'bob' }] }, { app });
    expect(raw.failure).toBe('steps[1] (expectResumed): expectResumed: no berth/client client named bob (open one with "client")');
    const twice = await runScenario({ name: 'twice', steps: [{ client: 'ada' }, { reconnect: 'ada' }] }, { app });
    expect(twice.failure).toBe('steps[1] (reconnect): ada was not dropped: nothing to reconnect');
  });

  it('refuses malformed berth/client steps with what is wrong', () => {
    const refuse = (step: unknown) => () => parseScenario({ name: 'x', steps: [step] }, 'x.json');
    expect(refuse({ expectMessages: 'ada', texts: ['a'] })).toThrow(
      new TypeError('x.json (x): steps[0]: expectMessages needs "stream" (as "room:lobby")'),
    );
    expect(refuse({ expectMessages: 'ada', stream: 'room:a', texts: ['a'], json: [{}] })).toThrow(/takes "texts" or "json", not both/);
    expect(refuse({ expectMessages: 'ada', stream: 'room:a', texts: [1] })).toThrow(/"texts" of expectMessages must be a list of strings/);
    expect(refuse({ expectResumed: 'ada', recovered: 'yes' })).toThrow(/"recovered" of expectResumed must be true or false/);
    expect(refuse({ expectResumed: 'ada', lost: [{ stream: 'room:a' }] })).toThrow(/"lost" of expectResumed must be a list of/);
    expect(refuse({ expectResumed: 'ada', recovered: true, reason: 'x' })).toThrow(/a resume expected recovered has no "lost" or "reason"/);
    expect(refuse({ client: 'ada', headers: { a: 1 } })).toThrow(/"headers" of client must be an object of strings/);
    expect(refuse({ client: 'ada', path: 'x' })).toThrow(/"path" of client must be a path starting with \//);
    expect(refuse({ reconnect: '' })).toThrow(/"reconnect" must name a client/);
    expect(refuse({ assert: { noGhosts: false } })).toThrow(/"noGhosts" can only be true/);
    expect(refuse({ assert: { maxLive: { ada: 'one' } } })).toThrow(/"maxLive" must map client names to whole numbers/);
  });
});

describe('docs/testing.md', () => {
  const page = readFileSync(new URL('../../docs/testing.md', import.meta.url), 'utf8');
  const pasted = /`resume.json`:\n\n```json\n([\s\S]*?)```/.exec(page)![1]!;

  it('resume.json passes as pasted, on both transports', async () => {
    const scenario = parseScenario(JSON.parse(pasted), 'resume.json');
    for (const transport of ['memory', 'ws'] as const) {
      const result = await runScenario(scenario, { app, transport });
      expect(result.passed, formatResult(result)).toBe(true);
    }
  });

  it('past the window it fails as the page says', async () => {
    const late = parseScenario(JSON.parse(pasted.replace('{ "advance": 4000 }', '{ "advance": 5000 }')), 'resume.json');
    const result = await runScenario(late, { app });
    expect(result.failure).toBe("steps[8] (expectResumed): ada's resumed: not recovered, unknown-session; expected recovered");
  });
});
