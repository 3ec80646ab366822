import { describe, expect, it } from 'vitest';
import { decodeBinary, decodeText, encodeBinary, InvalidMessage, MAX_HEADER } from '../../src/wire/codec.js';

describe('the berth.v1 codec', () => {
  it('a binary message: header length, JSON header, payload, and back', () => {
    const bytes = encodeBinary({ t: 'msg', s: 'room:ö' }, new Uint8Array([0, 255]));
    const head = new TextEncoder().encode('{"t":"msg","s":"room:ö"}');
    expect([...bytes]).toEqual([0, head.length, ...head, 0, 255]);
    expect(bytes.constructor).toBe(Uint8Array);
    const { message, payload } = decodeBinary(bytes);
    expect(message).toEqual({ t: 'msg', s: 'room:ö' });
    expect([...payload]).toEqual([0, 255]);
  });

  it('writes into the buffer the caller allocates, and a Buffer decodes to a Buffer payload (a view, not a copy)', () => {
    const bytes = encodeBinary({ t: 'reply', id: 1 }, new Uint8Array([7]), Buffer.allocUnsafe);
    expect(Buffer.isBuffer(bytes)).toBe(true);
    const { payload } = decodeBinary(bytes);
    expect(Buffer.isBuffer(payload)).toBe(true);
    payload[0] = 8;
    expect(bytes.at(-1)).toBe(8);
  });

  it('a header is at most 65535 bytes of UTF-8, counted in bytes, not characters', () => {
    // {"s":"…"} is 8 bytes around the name.
    const fits = encodeBinary({ s: 'x'.repeat(MAX_HEADER - 8) }, new Uint8Array(0));
    expect(decodeBinary(fits).message.s).toHaveLength(MAX_HEADER - 8);
    expect(() => encodeBinary({ s: 'x'.repeat(MAX_HEADER - 7) }, new Uint8Array(0))).toThrow(RangeError);
    // Two bytes each: half as many characters fit.
    expect(() => encodeBinary({ s: 'é'.repeat((MAX_HEADER - 7) / 2) }, new Uint8Array(0))).toThrow(RangeError);
  });

  it.each([
    ['not JSON', 'hello', 'a text frame must be a JSON object'],
    ['JSON, not an object', '[1]', 'a message must be a JSON object with "t"'],
    ['null', 'null', 'a message must be a JSON object with "t"'],
  ])('a text frame that is %s is an InvalidMessage', (_, text, why) => {
    expect(() => decodeText(text)).toThrow(new InvalidMessage(why));
  });

  it.each([
    ['shorter than its header length', [0], 'a binary frame starts with a 16-bit header length'],
    ['whose header runs past its end', [0, 9, 123], 'binary header longer than the frame'],
    ['whose header is not JSON', [0, 1, 120], 'a binary header must be a JSON object'],
    ['whose header is not an object', [0, 1, 49], 'a message must be a JSON object with "t"'],
  ])('a binary frame %s is an InvalidMessage', (_, bytes, why) => {
    expect(() => decodeBinary(new Uint8Array(bytes))).toThrow(new InvalidMessage(why));
  });
});
