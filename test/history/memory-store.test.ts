import { describe, expect, it } from 'vitest';
import { createMemoryHistory, type HistoryStore } from '../../src/index.js';
import { historyConformance, type HistorySuite } from '../../src/testing/index.js';

// The suite as berth/testing ships it, with vitest's describe, it and expect.
historyConformance(
  { describe, it, expect },
  { name: 'memory', create: (limits, clock) => createMemoryHistory({ ...limits, now: clock.now }) },
);

/** Collects the suite's cases instead of registering them, so a test can run them and see which fail. */
async function failing(suite: HistorySuite): Promise<string[]> {
  const cases: Array<{ name: string; run: () => Promise<void> }> = [];
  historyConformance({ describe: (_name, body) => body(), it: (name, run) => void cases.push({ name, run }), expect }, suite);
  const failed: string[] = [];
  for (const { name, run } of cases) await run().catch(() => failed.push(name));
  return failed;
}

describe('the history conformance suite can fail', () => {
  it('catches a store that never trims by age', async () => {
    const ageless: HistorySuite = { name: 'ageless', create: (limits) => createMemoryHistory({ ...limits, now: () => 0 }) };
    expect(await failing(ageless)).toEqual(['trims by age, on the clock it was given']);
  });

  it('catches a store that replays from one offset too early', async () => {
    const offByOne: HistorySuite = {
      name: 'off by one',
      create: (limits, clock) => {
        const inner = createMemoryHistory({ ...limits, now: clock.now });
        const store: HistoryStore = {
          append: (stream, message) => inner.append(stream, message),
          position: (stream) => inner.position(stream),
          read: (stream, since) => inner.read(stream, { ...since, offset: Math.max(0, since.offset - 1) }),
          close: () => inner.close(),
        };
        return store;
      },
    };
    expect(await failing(offByOne)).toContain('replays exactly what came after a position, in order, and nothing at the top');
  });
});

describe('memory history options', () => {
  it('are checked at once, naming the option', () => {
    expect(() => createMemoryHistory({ maxMessages: -1 })).toThrow(/options.maxMessages must be within/);
    expect(() => createMemoryHistory({ maxStreams: 0 })).toThrow(/options.maxStreams must be within/);
    expect(() => createMemoryHistory({ maxAgeMs: 1.5 })).toThrow(/options.maxAgeMs must be an integer/);
  });
});
