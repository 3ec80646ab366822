import { describe, expect, it } from 'vitest';
import { createRuntime, type RuntimeOptions } from '../src/index.js';

describe('options are checked at once, naming the option', () => {
  it.each<[string, RuntimeOptions, ErrorConstructor, RegExp]>([
    ['port and server together', { port: 0, server: {} as never }, TypeError, /port or options.server/],
    ['a port out of range', { port: 70_000 }, RangeError, /options.port/],
    ['a fractional port', { port: 1.5 }, TypeError, /options.port/],
    ['a path without a slash', { path: 'ws' }, TypeError, /options.path/],
    ['a zero heartbeat interval', { heartbeat: { intervalMs: 0 } }, RangeError, /heartbeat.intervalMs/],
    ['a non-number heartbeat timeout', { heartbeat: { timeoutMs: '5' as never } }, TypeError, /heartbeat.timeoutMs/],
    ['a negative maxConnections', { maxConnections: -1 }, RangeError, /maxConnections/],
    ['a zero maxPayload', { maxPayload: 0 }, RangeError, /maxPayload/],
    ['a zero closeTimeoutMs', { closeTimeoutMs: 0 }, RangeError, /closeTimeoutMs/],
    // Node's timers fire after 1 ms for anything longer.
    [
      'a closeTimeoutMs past what a timer keeps',
      { closeTimeoutMs: 2 ** 31 },
      RangeError,
      /options.closeTimeoutMs must be at most 2147483647/,
    ],
    [
      'a heartbeat interval past what a timer keeps',
      { heartbeat: { intervalMs: 2 ** 32 } },
      RangeError,
      /options.heartbeat.intervalMs must be at most/,
    ],
    ['a zero handshakeTimeoutMs', { handshakeTimeoutMs: 0 }, RangeError, /options.handshakeTimeoutMs/],
    ['a rate of zero', { rateLimit: { messagesPerSecond: 0 } }, RangeError, /rateLimit.messagesPerSecond/],
    ['a burst below one', { rateLimit: { messagesPerSecond: 5, burst: 0.5 } }, RangeError, /rateLimit.burst/],
    ['an unknown policy', { rateLimit: { messagesPerSecond: 5, policy: 'ignore' as never } }, TypeError, /rateLimit.policy/],
    ['a non-function authenticate', { authenticate: 'yes' as never }, TypeError, /authenticate/],
    ['origins not in an array', { allowedOrigins: 'https://a' as never }, TypeError, /allowedOrigins/],
  ])('%s', (_what, options, kind, message) => {
    expect(() => createRuntime(options)).toThrow(kind);
    expect(() => createRuntime(options)).toThrow(message);
  });

  it('refuses data a frame cannot carry', () => {
    const runtime = createRuntime({});
    expect(() => runtime.sendToAll({ an: 'object' } as never)).toThrow(TypeError);
    expect(() => runtime.sendToRoom('', 'x')).toThrow(TypeError);
    return runtime.close();
  });
});

describe('no server', () => {
  it('with neither port nor server, listens nowhere and takes upgrades from handleUpgrade', async () => {
    const { default: http } = await import('node:http');
    const { connect } = await import('./helpers/client.js');
    const runtime = createRuntime({ path: '/ws' });
    expect(runtime.address()).toBeNull();
    const server = http.createServer();
    server.on('upgrade', (request, socket, head) => {
      if (request.url?.startsWith('/ws')) runtime.handleUpgrade(request, socket, head);
      else socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    try {
      const client = await connect(`ws://127.0.0.1:${port}/ws`);
      runtime.sendToAll('through handleUpgrade');
      expect(await client.next()).toBe('through handleUpgrade');
    } finally {
      await runtime.close({ timeoutMs: 1000 });
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
