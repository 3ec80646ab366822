import { describe, expect, it } from 'vitest';
import { ReplayFrames } from '../../src/runtime/recovery/replay-frames.js';

const message = (offset: number, data = `m${offset}`) => ({ offset, data, binary: false });

describe('replay frames', () => {
  it('frames a message of a stream once, for every client that resumes, and tells streams and epochs apart', () => {
    const frames = new ReplayFrames(1 << 20);
    const first = frames.frame('room:lobby', 'e1', message(3));
    expect(frames.frame('room:lobby', 'e1', message(3))).toBe(first);
    expect(frames.frame('room:other', 'e1', message(3))).not.toBe(first);
    expect(frames.frame('room:lobby', 'e2', message(3))).not.toBe(first);
    const text = Buffer.concat(first.chunks.map((chunk) => Buffer.from(chunk)))
      .subarray(2)
      .toString();
    expect(JSON.parse(text)).toEqual({ t: 'msg', s: 'room:lobby', o: 3, e: 'e1', d: 'm3' });
  });

  it('keeps at most its byte budget, the oldest frames going first', () => {
    const frames = new ReplayFrames(200);
    const kept = Array.from({ length: 10 }, (_, i) => frames.frame('room:a', 'e', message(i + 1, 'x'.repeat(40))));
    expect(frames.bytes).toBeLessThanOrEqual(200);
    // The newest is still shared, the oldest was let go (a new frame, equal bytes).
    expect(frames.frame('room:a', 'e', message(10, 'x'.repeat(40)))).toBe(kept[9]);
    expect(frames.frame('room:a', 'e', message(1, 'x'.repeat(40)))).not.toBe(kept[0]);
    // One larger than the budget is built, and not kept.
    frames.frame('room:a', 'e', message(99, 'y'.repeat(400)));
    expect(frames.bytes).toBeLessThanOrEqual(200);
  });
});
