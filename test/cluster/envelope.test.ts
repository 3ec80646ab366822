import { describe, expect, it } from 'vitest';
import type { AdapterNode, BroadcastMessage } from '../../src/cluster/adapter.js';
import { decodeWire, encodeWire, Envelopes } from '../../src/cluster/envelope.js';
import type { Target } from '../../machines/types.js';

function node(nodeId: string) {
  const delivered: string[] = [];
  const lost: Array<[string, number, string]> = [];
  const failed: string[] = [];
  const port: AdapterNode = {
    nodeId,
    deliver: (message) => delivered.push(Buffer.from(message.data).toString()),
    dropped: () => {},
    lost: (target, count, origin) => lost.push([target.kind === 'room' ? target.room : target.kind, count, origin]),
    linkChanged: () => {},
    failed: (_error, what) => failed.push(what),
    presence: undefined as never,
  };
  return { envelopes: new Envelopes(port), delivered, lost, failed };
}

const lobby: Target = { kind: 'room', room: 'lobby' };
const message = (data: string, target: Target = lobby): BroadcastMessage => ({ target, except: undefined, data, binary: false });

describe('the cross-node envelope numbers each publisher’s broadcasts per target', () => {
  it('round-trips every field, with its stamp', () => {
    const wire = encodeWire(
      'n1',
      { epoch: 3, seq: 7 },
      { target: { kind: 'user', user: 'ada' }, except: 'n1-4', data: 'hé', binary: true },
    );
    const decoded = decodeWire(wire);
    expect(decoded.origin).toBe('n1');
    expect(decoded.stamp).toEqual({ epoch: 3, seq: 7 });
    expect(decoded.message.target).toEqual({ kind: 'user', user: 'ada' });
    expect(decoded.message.except).toBe('n1-4');
    expect(decoded.message.binary).toBe(true);
    expect(Buffer.from(decoded.message.data).toString()).toBe('hé');
  });

  it('counts exactly the broadcasts a gap says were missed, per publisher and target, and delivers the rest once', () => {
    const a = node('aaaa');
    const c = node('cccc');
    const b = node('bbbb');
    const sealed = Array.from({ length: 10 }, (_, i) => a.envelopes.seal(message(`a${i + 1}`)));
    const fromC = Array.from({ length: 3 }, (_, i) => c.envelopes.seal(message(`c${i + 1}`)));
    const toAll = a.envelopes.seal(message('all', { kind: 'all' }));
    // b misses a's 3rd to 5th and 9th, and c's 2nd; a's 6th arrives twice.
    for (const i of [0, 1, 5, 5, 6, 7, 9]) b.envelopes.open(sealed[i]!, 'ch');
    for (const i of [0, 2]) b.envelopes.open(fromC[i]!, 'ch');
    b.envelopes.open(toAll, 'ch');
    expect(b.delivered).toEqual(['a1', 'a2', 'a6', 'a7', 'a8', 'a10', 'c1', 'c3', 'all']);
    expect(b.lost).toEqual([
      ['lobby', 3, 'aaaa'],
      ['lobby', 1, 'aaaa'],
      ['lobby', 1, 'cccc'],
    ]);
    expect(b.failed).toEqual([]);
  });

  it('a broadcast its publisher could not send still uses up its number, so the receivers count it', () => {
    const a = node('aaaa');
    const b = node('bbbb');
    b.envelopes.open(a.envelopes.seal(message('1')), 'ch');
    a.envelopes.skip(lobby);
    a.envelopes.skip(lobby);
    b.envelopes.open(a.envelopes.seal(message('4')), 'ch');
    expect(b.delivered).toEqual(['1', '4']);
    expect(b.lost).toEqual([['lobby', 2, 'aaaa']]);
  });

  it('skips its own echoes, and reports what is not a broadcast', () => {
    const a = node('aaaa');
    a.envelopes.open(a.envelopes.seal(message('mine')), 'ch');
    a.envelopes.open(Buffer.from('garbage'), 'ch');
    expect(a.delivered).toEqual([]);
    expect(a.failed).toEqual(['receive on ch']);
  });

  it('after forget (unsubscribed), the first broadcast seen is taken as it comes: what came between was not this node’s', () => {
    const a = node('aaaa');
    const b = node('bbbb');
    b.envelopes.open(a.envelopes.seal(message('1')), 'ch');
    b.envelopes.forget('room:lobby');
    a.envelopes.seal(message('2'));
    b.envelopes.open(a.envelopes.seal(message('3')), 'ch');
    expect(b.delivered).toEqual(['1', '3']);
    expect(b.lost).toEqual([]);
  });
});
