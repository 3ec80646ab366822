import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { EVICT_AFTER_MS, IDLE_MS, RESYNC_EVERY, SharedContexts } from '../../src/delivery/deflate-contexts.js';
import { Frame } from '../../src/delivery/frame.js';
import { chat } from './helpers.js';

const TRAILER = Buffer.from([0x00, 0x00, 0xff, 0xff]);

describe('shared compression contexts', () => {
  it('compresses a target’s messages in order, each against the ones before it, and an inflater of them all reads every one', () => {
    const contexts = new SharedContexts(4, 6, () => 0);
    const messages = Array.from({ length: 40 }, (_, i) => chat('r', i));
    const frames = messages.map((message) => Frame.text(message));
    const first = contexts.open('r', frames[0]!)!;
    const rest = frames.slice(1).map((frame) => contexts.compress(frame, 'r')!);
    const all = [first, ...rest];
    expect(all.map((shared) => shared.seq)).toEqual(messages.map((_, i) => i + 1));
    expect(all.map((shared) => shared.reset)).toEqual(messages.map((_, i) => i === 0));
    // One inflate stream over all of them, each with the trailer the receiver appends (RFC 7692 §7.2.2).
    const inflated = zlib.inflateRawSync(Buffer.concat(all.flatMap((shared) => [shared.frame.payload(), TRAILER])), {
      finishFlush: zlib.constants.Z_SYNC_FLUSH,
    });
    expect(inflated.toString()).toBe(messages.join(''));
    expect(rest.at(-1)!.frame.payloadLength * 2).toBeLessThan(first.frame.payloadLength);
  });

  it('starts afresh within RESYNC_EVERY messages of a connection straying, and not without one', () => {
    const contexts = new SharedContexts(4, 6, () => 0);
    const first = contexts.open('r', Frame.text(chat('r', 0)))!;
    const next = (i: number) => contexts.compress(Frame.text(chat('r', i)), 'r')!;
    for (let i = 1; i < 3 * RESYNC_EVERY; i++) expect(next(i).reset).toBe(false);
    first.context.strayed();
    const after = Array.from({ length: RESYNC_EVERY + 4 }, (_, i) => next(100 + i));
    expect(after.filter((shared) => shared.reset)).toHaveLength(1);
    // Once afresh, it refers to nothing before: a new inflater reads it and what follows.
    const from = after.findIndex((shared) => shared.reset);
    const inflated = zlib.inflateRawSync(Buffer.concat(after.slice(from).flatMap((shared) => [shared.frame.payload(), TRAILER])), {
      finishFlush: zlib.constants.Z_SYNC_FLUSH,
    });
    expect(inflated.toString()).toBe(
      after
        .slice(from)
        .map((_, i) => chat('r', 100 + from + i))
        .join(''),
    );
  });

  it('at most max contexts; a target gets one by closing one unused for EVICT_AFTER_MS, and an unused one closes after IDLE_MS', () => {
    let now = 0;
    const contexts = new SharedContexts(2, 6, () => now);
    expect(contexts.open('a', Frame.text(chat('a', 0)))).toBeDefined();
    expect(contexts.open('b', Frame.text(chat('b', 0)))).toBeDefined();
    expect(contexts.open('c', Frame.text(chat('c', 0)))).toBeUndefined();
    expect(contexts.size).toBe(2);
    // `a` stays in use; `b` does not: once it has been unused long enough, `c` takes its place.
    now = EVICT_AFTER_MS + 1;
    const a1 = contexts.compress(Frame.text(chat('a', 1)), 'a')!;
    a1.context.taken();
    expect(contexts.open('c', Frame.text(chat('c', 1)))).toBeDefined();
    expect(contexts.compress(Frame.text(chat('b', 1)), 'b')).toBeUndefined();
    expect(contexts.compress(Frame.text(chat('a', 2)), 'a')).toBeDefined();
    // A frame taken long ago, with no message since, does not keep a context in use: `c` was last
    // compressed at EVICT_AFTER_MS + 1, so two seconds later `d` may take its place.
    contexts.compress(Frame.text(chat('c', 2)), 'c')!.context.taken();
    a1.context.taken();
    now += 2 * EVICT_AFTER_MS;
    contexts.compress(Frame.text(chat('a', 3)), 'a')!.context.taken();
    expect(contexts.open('d', Frame.text(chat('d', 0)))).toBeDefined();
    expect(contexts.compress(Frame.text(chat('c', 3)), 'c')).toBeUndefined();
    // Nobody takes `a`'s frames any more: past IDLE_MS it closes at its next message.
    now += IDLE_MS + 1;
    expect(contexts.compress(Frame.text(chat('a', 4)), 'a')).toBeUndefined();
    expect(contexts.size).toBe(1);
    contexts.close();
    expect(contexts.open('e', Frame.text(chat('e', 0)))).toBeUndefined();
  });
});
