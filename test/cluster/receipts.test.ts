import { describe, expect, it } from 'vitest';
import { Receipts } from '../../src/cluster/receipts.js';
import type { Target } from '../../machines/types.js';

const lobby: Target = { kind: 'room', room: 'lobby' };

function receipts(hosted: () => boolean) {
  const asked: string[] = [];
  const unreceived: number[] = [];
  let answer: (() => void) | undefined;
  const subject = new Receipts({
    othersHost: (target) => {
      asked.push(target.kind);
      return new Promise((resolve) => (answer = () => resolve(hosted())));
    },
    unreceived: (_target, count) => void unreceived.push(count),
  });
  return { subject, asked, unreceived, answer: async () => (answer?.(), await Promise.resolve()) };
}

describe('Receipts: publishes that reached no other node although one hosts the target', () => {
  it('asks presence once when a target that had receivers has none, and counts the publishes meanwhile if another node hosts it', async () => {
    const { subject, asked, unreceived, answer } = receipts(() => true);
    subject.published(lobby, 'room:lobby', 0); // never reached anyone: nothing to ask
    expect(asked).toEqual([]);
    subject.published(lobby, 'room:lobby', 2);
    subject.published(lobby, 'room:lobby', 0);
    subject.published(lobby, 'room:lobby', 0);
    subject.published(lobby, 'room:lobby', 0);
    expect(asked).toEqual(['room']);
    await answer();
    expect(unreceived).toEqual([3]);
    // Still expected elsewhere: the next one that reaches nobody is checked again.
    subject.published(lobby, 'room:lobby', 0);
    expect(asked).toEqual(['room', 'room']);
  });

  it('forgets a target whose other nodes left for good: later publishes cost nothing', async () => {
    const { subject, asked, unreceived, answer } = receipts(() => false);
    subject.published(lobby, 'room:lobby', 1);
    subject.published(lobby, 'room:lobby', 0);
    await answer();
    expect(unreceived).toEqual([]);
    subject.published(lobby, 'room:lobby', 0);
    subject.published(lobby, 'room:lobby', 0);
    expect(asked).toEqual(['room']);
  });
});
