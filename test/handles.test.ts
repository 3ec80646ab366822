import { describe, expect, it } from 'vitest';
import type { Runtime } from '../src/index.js';
import { connect, eventually } from './helpers/client.js';
import { nextConnection, startRuntime } from './helpers/runtime.js';

function nextClose(runtime: Runtime) {
  return new Promise<{ rooms: readonly string[]; cause: string }>((resolve) => runtime.on('close', resolve));
}

describe('what an application holds cannot corrupt the core', () => {
  it('connection.rooms is a live view with no way to change the supervisor’s set', async () => {
    const { runtime, url } = await startRuntime();
    const opened = nextConnection(runtime);
    await connect(url);
    const connection = await opened;
    const rooms = connection.rooms;
    expect(await connection.join('lobby')).toBe(true);
    // Live: the view taken before the join sees it.
    expect(rooms.has('lobby')).toBe(true);
    expect([...rooms]).toEqual(['lobby']);
    expect(rooms.size).toBe(1);
    // Not a Set in disguise: a cast finds nothing to mutate.
    const cast = rooms as unknown as Set<string>;
    expect(cast).not.toBeInstanceOf(Set);
    expect(typeof cast.add).toBe('undefined');
    expect(typeof cast.delete).toBe('undefined');
    expect(typeof cast.clear).toBe('undefined');
    expect(runtime.snapshot().rooms).toEqual({ lobby: [connection.id] });
    // Reflection cannot reach the set behind it either.
    expect(Object.getOwnPropertyNames(rooms)).toEqual([]);
  });

  it('runtime.supervisor is read-only: a state and a subscription, no way to send it events', async () => {
    const { runtime, url } = await startRuntime();
    const supervisor = runtime.supervisor as unknown as Record<string, unknown>;
    expect(supervisor.send).toBeUndefined();
    expect(supervisor.system).toBeUndefined();
    expect(Object.isFrozen(supervisor)).toBe(true);
    expect(runtime.supervisor.getSnapshot()).toEqual({ status: 'active', value: 'running' });
    // The snapshot carries no context: the registry is read through runtime.snapshot(), as plain data.
    expect('context' in runtime.supervisor.getSnapshot()).toBe(false);

    const seen: string[] = [];
    const subscription = runtime.supervisor.subscribe((snapshot) => seen.push(snapshot.value));
    const opened = nextConnection(runtime);
    await connect(url);
    await opened;
    expect(seen).toContain('running');
    subscription.unsubscribe();

    let completed = false;
    runtime.supervisor.subscribe(
      () => {},
      () => (completed = true),
    );
    await runtime.close({ timeoutMs: 1000 });
    expect(completed).toBe(true);
    expect(runtime.supervisor.getSnapshot()).toEqual({ status: 'done', value: 'stopped' });
  });

  it.each([
    ['the client closes', 'client'],
    ['the server closes', 'server'],
    ['the TCP connection drops', 'client'],
    ['the runtime shuts down', 'shutdown'],
  ] as const)('the close event carries the rooms the connection left when %s', async (how, cause) => {
    const { runtime, url } = await startRuntime();
    const opened = nextConnection(runtime);
    const client = await connect(url);
    const connection = await opened;
    await connection.join('lobby');
    await connection.join('kitchen');
    await connection.leave('kitchen');
    await connection.join('attic');
    const closed = nextClose(runtime);
    if (how === 'the client closes') client.ws.close(4000, 'bye');
    else if (how === 'the server closes') connection.close(4100, 'done');
    else if (how === 'the TCP connection drops') client.ws.terminate();
    else void runtime.close({ timeoutMs: 1000 });
    const event = await closed;
    expect(event.cause).toBe(cause);
    expect([...event.rooms].sort()).toEqual(['attic', 'lobby']);
    await eventually(() => connection.state === 'closed', 'the connection to close');
    expect(connection.rooms.size).toBe(0);
  });

  it('a connection that joined nothing leaves no rooms', async () => {
    const { runtime, url } = await startRuntime();
    const opened = nextConnection(runtime);
    const client = await connect(url);
    await opened;
    const closed = nextClose(runtime);
    client.ws.close();
    expect((await closed).rooms).toEqual([]);
  });
});
