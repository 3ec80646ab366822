import { describe, expect, it } from 'vitest';
import { createMemoryAdapter, createMemoryBus, type Adapter } from '../../src/index.js';
import type { Target } from '../../machines/types.js';
import { adapterConformance } from '../../src/testing/index.js';

// The suite as berth/testing ships it, with vitest's describe, it and expect.
adapterConformance(
  { describe, it, expect },
  {
    name: 'memory',
    cluster: () => {
      const bus = createMemoryBus();
      return () => createMemoryAdapter(bus);
    },
  },
);

describe('the memory adapter carries a broadcast only to nodes that host its target', () => {
  it('a node with no member of a room and no connection of a user receives only what is sent to all', async () => {
    const bus = createMemoryBus();
    const received = new Map<string, string[]>();
    const nodes = ['a', 'b', 'c'].map((nodeId) => {
      const adapter = createMemoryAdapter(bus);
      received.set(nodeId, []);
      void adapter.attach({
        nodeId,
        deliver: (message) => received.get(nodeId)!.push(`${message.target.kind}:${String(message.data)}`),
        dropped: () => {},
        lost: () => {},
        linkChanged: () => {},
        failed: () => {},
        presence: undefined as never,
      });
      return adapter;
    });
    const [a, b, c] = nodes as [Adapter, Adapter, Adapter];
    await b.track?.({ kind: 'connect', id: 'b-1', user: 'ada' });
    await b.track?.({ kind: 'join', id: 'b-1', room: 'lobby' });
    const send = (target: Target, data: string) => a.publish({ target, except: undefined, data, binary: false });
    await send({ kind: 'room', room: 'lobby' }, 'one');
    await send({ kind: 'user', user: 'ada' }, 'two');
    await send({ kind: 'all' }, 'three');
    await b.track?.({ kind: 'leave', id: 'b-1', room: 'lobby' });
    await send({ kind: 'room', room: 'lobby' }, 'four');
    expect(received.get('b')).toEqual(['room:one', 'user:two', 'all:three']);
    expect(received.get('c')).toEqual(['all:three']);
    expect(received.get('a')).toEqual([]);
    for (const adapter of [a, b, c]) await adapter.close();
  });
});
