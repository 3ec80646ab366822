import { describe, expect, it } from 'vitest';
import { CloseCode, closeCodeCatalog, describeCloseCode, isSendableCloseCode, type Runtime, type RuntimeEvents } from '../src/index.js';
import { connect } from './helpers/client.js';
import { RawWebSocket } from './helpers/raw.js';
import { nextConnection, startRuntime } from './helpers/runtime.js';

/** Every code a close frame may carry in 1000–1015, and samples of 3000–4999. */
const wireCodes = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014];
const sampleCodes = [3000, 3001, 3500, 3999, 4000, 4001, 4100, 4321, 4999];
const notSendable = [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535];

function nextClose(runtime: Runtime): Promise<RuntimeEvents['close']> {
  return new Promise((resolve) => runtime.on('close', resolve));
}

describe('close code catalog', () => {
  it('names every code with a meaning and marks the ones never sent', () => {
    for (const info of closeCodeCatalog) {
      expect(CloseCode[info.name]).toBe(info.code);
      expect(describeCloseCode(info.code)).toBe(info);
      expect(isSendableCloseCode(info.code)).toBe(info.onWire);
      expect(info.meaning.length).toBeGreaterThan(0);
    }
    expect(Object.keys(CloseCode)).toHaveLength(closeCodeCatalog.length);
  });

  it('accepts exactly 1000–1003, 1007–1014 and 3000–4999 as sendable', () => {
    for (let code = 0; code < 6000; code++) {
      const expected = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
      expect(isSendableCloseCode(code), String(code)).toBe(expected);
    }
    expect(isSendableCloseCode(1000.5)).toBe(false);
    expect(isSendableCloseCode(Number.NaN)).toBe(false);
  });
});

describe('close codes end to end', () => {
  it.each([...wireCodes, ...sampleCodes])('client close %i reaches the application with its reason', async (code) => {
    const { runtime, url } = await startRuntime();
    const closed = nextClose(runtime);
    const client = await connect(url);
    const reason = `client says ${code} — ünïcode ✓`;
    client.ws.close(code, reason);
    const event = await closed;
    expect(event).toMatchObject({ code, reason, cause: 'client' });
    expect(event.connection.state).toBe('closed');
    // The server echoes the peer's code, as RFC 6455 §5.5.1 asks.
    expect((await client.closed).code).toBe(code);
  });

  it.each([...wireCodes, ...sampleCodes])('server close %i reaches the client with its reason', async (code) => {
    const { runtime, url } = await startRuntime();
    const opened = nextConnection(runtime);
    const closed = nextClose(runtime);
    const client = await connect(url);
    const connection = await opened;
    const reason = `server says ${code} — ✓`;
    connection.close(code, reason);
    expect(await client.closed).toEqual({ code, reason });
    expect(await closed).toMatchObject({ code, reason, cause: 'server' });
  });

  it('a close frame without a code is reported as 1005', async () => {
    const { runtime, url } = await startRuntime();
    const closed = nextClose(runtime);
    const client = await connect(url);
    client.ws.close();
    expect(await closed).toMatchObject({ code: 1005, reason: '', cause: 'client' });
  });

  it('a reason of exactly 123 UTF-8 bytes travels intact', async () => {
    const { runtime, url } = await startRuntime();
    const opened = nextConnection(runtime);
    const client = await connect(url);
    const reason = '€'.repeat(41); // 3 bytes each
    (await opened).close(4000, reason);
    expect(await client.closed).toEqual({ code: 4000, reason });
  });

  it.each(notSendable)('an invalid close code %i from a client ends in 1002', async (code) => {
    const { runtime, port } = await startRuntime();
    const closed = nextClose(runtime);
    const errors: RuntimeEvents['error'][] = [];
    runtime.on('error', (event) => errors.push(event));
    const raw = await RawWebSocket.open(port);
    raw.sendClose(code, 'bad');
    expect((await raw.serverClose()).code).toBe(1002);
    expect(await closed).toMatchObject({ code: 1002, cause: 'socket-error' });
    expect(errors.map((event) => event.error.code)).toEqual(['ERR_SOCKET']);
  });
});

describe('server close arguments', () => {
  it.each([...notSendable, 1000.5, Number.NaN, '1000' as unknown as number])(
    'close(%s) throws TypeError and leaves the connection open',
    async (code) => {
      const { runtime, url } = await startRuntime();
      const opened = nextConnection(runtime);
      const client = await connect(url);
      const connection = await opened;
      expect(() => connection.close(code)).toThrow(TypeError);
      expect(connection.state).toBe('open');
      expect(connection.send('still here')).toBe(true);
      expect(await client.next()).toBe('still here');
    },
  );

  it('a reason over 123 bytes throws RangeError', async () => {
    const { runtime, url } = await startRuntime();
    const opened = nextConnection(runtime);
    await connect(url);
    const connection = await opened;
    expect(() => connection.close(1000, 'x'.repeat(124))).toThrow(RangeError);
    expect(() => connection.close(1000, '€'.repeat(42))).toThrow(RangeError);
    expect(connection.state).toBe('open');
  });
});
