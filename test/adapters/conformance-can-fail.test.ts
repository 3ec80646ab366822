import { describe, expect, it } from 'vitest';
import { createMemoryAdapter, createMemoryBus, type Adapter, type BroadcastMessage } from '../../src/index.js';
import { adapterConformance, type ConformanceSuite } from '../../src/testing/index.js';

/** Collects the suite's cases instead of registering them, so a test can run them and see which fail. */
function casesOf(suite: ConformanceSuite): Array<{ name: string; run: () => Promise<void> }> {
  const cases: Array<{ name: string; run: () => Promise<void> }> = [];
  adapterConformance({ describe: (_name, body) => body(), it: (name, run) => void cases.push({ name, run }), expect }, suite);
  return cases;
}

async function failing(suite: ConformanceSuite): Promise<string[]> {
  const failed: string[] = [];
  for (const { name, run } of casesOf(suite)) await run().catch(() => failed.push(name));
  return failed;
}

describe('the shipped conformance suite can fail', () => {
  it('passes the memory adapter', async () => {
    const bus = () => {
      const shared = createMemoryBus();
      return () => createMemoryAdapter(shared);
    };
    expect(await failing({ name: 'memory', cluster: bus })).toEqual([]);
  });

  it('catches an adapter that echoes a node’s own broadcasts back to it', async () => {
    const echoing = (): (() => Adapter) => {
      const shared = createMemoryBus();
      return () => {
        const inner = createMemoryAdapter(shared);
        let deliver: ((message: Parameters<Adapter['publish']>[0]) => void) | undefined;
        return {
          ...inner,
          attach(node) {
            deliver = (message) => node.deliver(message);
            return inner.attach(node);
          },
          publish(message) {
            deliver?.(message);
            return inner.publish(message);
          },
        };
      };
    };
    expect(await failing({ name: 'echoing', cluster: echoing })).toContain(
      'carries a broadcast to every other node with a member of its room once, never back to its own',
    );
  });

  it('catches an adapter that loses the binary flag', async () => {
    const lossy = (): (() => Adapter) => {
      const shared = createMemoryBus();
      return () => {
        const inner = createMemoryAdapter(shared);
        return { ...inner, attach: inner.attach, publish: (message) => inner.publish({ ...message, binary: false }) };
      };
    };
    expect(await failing({ name: 'lossy', cluster: lossy })).toContain(
      'keeps every field: targets, except, text (UTF-8) and binary, and the order of one publisher to one target',
    );
  });

  it('catches an adapter that swaps two broadcasts of one publisher to one room', async () => {
    const swapping = (): (() => Adapter) => {
      const shared = createMemoryBus();
      return () => {
        const inner = createMemoryAdapter(shared);
        let held: BroadcastMessage | undefined;
        const publish = (message: BroadcastMessage) => {
          if (message.target.kind !== 'room') return inner.publish(message);
          if (held === undefined) return void (held = message);
          void inner.publish(message);
          void inner.publish(held);
          held = undefined;
        };
        return { ...inner, attach: inner.attach, publish };
      };
    };
    expect(await failing({ name: 'swapping', cluster: swapping })).toContain(
      'keeps every field: targets, except, text (UTF-8) and binary, and the order of one publisher to one target',
    );
  });
});
