import { describe, expect, it } from 'vitest';
import type { Connection, RuntimeEvents } from '../src/index.js';
import { connect, eventually } from './helpers/client.js';
import { startRuntime } from './helpers/runtime.js';

describe('a throwing application handler costs at most its own connection', () => {
  it.each([
    [
      'throws',
      () => {
        throw new Error('handler bug');
      },
    ],
    [
      'rejects',
      async () => {
        throw new Error('handler bug');
      },
    ],
  ])('a message handler that %s closes its connection with 1011; others keep receiving', async (_how, fail) => {
    const { runtime, url } = await startRuntime();
    const errors: RuntimeEvents['error'][] = [];
    runtime.on('error', (event) => errors.push(event));
    runtime.on('message', ({ data }) => {
      if (data === 'crash') return fail();
      return undefined;
    });
    // A second handler still runs for the same message.
    const seen: string[] = [];
    runtime.on('message', ({ data }) => void seen.push(String(data)));
    runtime.on('connection', (connection) => void connection.join('lobby'));
    const victim = await connect(url);
    const bystanders = await Promise.all([connect(url), connect(url)]);
    await eventually(() => runtime.snapshot().rooms.lobby?.length === 3, 'everyone in the lobby');

    victim.ws.send('crash');
    expect(await victim.closed).toEqual({ code: 1011, reason: 'internal error' });
    expect(seen).toEqual(['crash']);
    await eventually(() => errors.length === 1, 'the error event');
    expect(errors[0]!.error.code).toBe('ERR_HANDLER_FAILED');
    expect(errors[0]!.error.message).toContain('handler bug');
    expect(errors[0]!.connection?.state).not.toBe('open');

    runtime.sendToRoom('lobby', 'still flowing');
    for (const client of bystanders) expect(await client.next()).toBe('still flowing');
    // Nothing the handler did degrades health (a machine busy with other work may show event-loop delay).
    expect(runtime.health().reasons.filter((reason) => !reason.startsWith('event-loop delay'))).toEqual([]);
    expect(runtime.supervisor.getSnapshot().status).toBe('active');
  });

  it('a throwing connection handler closes that connection with 1011', async () => {
    const { runtime, url } = await startRuntime();
    runtime.on('error', () => {});
    let count = 0;
    runtime.on('connection', () => {
      if (++count === 1) throw new Error('bad greeting');
    });
    const first = await connect(url);
    const second = await connect(url);
    expect((await first.closed).code).toBe(1011);
    runtime.sendToAll('hi');
    expect(await second.next()).toBe('hi');
  });

  it('a throwing close handler is reported and nothing else happens', async () => {
    const { runtime, url } = await startRuntime();
    const errors: RuntimeEvents['error'][] = [];
    runtime.on('error', (event) => errors.push(event));
    runtime.on('close', () => {
      throw new Error('close bug');
    });
    const leaving = await connect(url);
    const staying = await connect(url);
    leaving.ws.close(1000);
    await eventually(() => errors.length === 1, 'the error event');
    expect(errors[0]!.error.code).toBe('ERR_HANDLER_FAILED');
    runtime.sendToAll('carry on');
    expect(await staying.next()).toBe('carry on');
  });

  it('a throwing error handler does not take the process down', async () => {
    const { runtime, url } = await startRuntime();
    runtime.on('error', () => {
      throw new Error('error handler bug');
    });
    runtime.on('message', () => {
      throw new Error('handler bug');
    });
    const original = console.error;
    const logged: unknown[] = [];
    console.error = (...args: unknown[]) => void logged.push(args);
    try {
      const client = await connect(url);
      client.ws.send('x');
      expect((await client.closed).code).toBe(1011);
      expect(logged.length).toBe(1);
    } finally {
      console.error = original;
    }
    const other = await connect(url);
    runtime.sendToAll('alive');
    expect(await other.next()).toBe('alive');
  });

  it('handlers may call any API, including from the close event', async () => {
    const { runtime, url } = await startRuntime();
    runtime.on('connection', (connection: Connection) => void connection.join('lobby'));
    runtime.on('close', ({ connection }) => runtime.sendToRoom('lobby', `${connection.id} left`));
    const leaving = await connect(url);
    const staying = await connect(url);
    await eventually(() => runtime.snapshot().rooms.lobby?.length === 2, 'both in the lobby');
    leaving.ws.close();
    expect(await staying.next()).toMatch(/ left$/);
    expect(leaving.messages).toEqual([]);
  });
});
