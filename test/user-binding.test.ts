import { describe, expect, it } from 'vitest';
import type { Connection, Runtime } from '../src/index.js';
import { connect, eventually } from './helpers/client.js';
import { startRuntime } from './helpers/runtime.js';

function connections(runtime: Runtime): Connection[] {
  const seen: Connection[] = [];
  runtime.on('connection', (connection) => seen.push(connection));
  return seen;
}

describe('user binding after registration', () => {
  it('setUser after registration makes user-targeted sends reach the connection', async () => {
    const { runtime, url } = await startRuntime();
    const seen = connections(runtime);
    const client = await connect(url);
    await eventually(() => seen.length === 1, 'the connection');
    const connection = seen[0]!;
    runtime.sendToUser('ada', 'before binding');
    expect(await connection.setUser('ada')).toBe(true);
    expect(connection.user).toBe('ada');
    expect(runtime.snapshot().users).toEqual({ ada: [connection.id] });
    runtime.sendToUser('ada', 'after binding');
    expect(await client.next()).toBe('after binding');
    expect(client.messages).toEqual(['after binding']);
  });

  it('rebinding moves the mapping; unbinding removes it', async () => {
    const { runtime, url } = await startRuntime();
    const seen = connections(runtime);
    const client = await connect(url);
    await eventually(() => seen.length === 1, 'the connection');
    const connection = seen[0]!;
    await connection.setUser('ada');
    await connection.setUser('bob');
    runtime.sendToUser('ada', 'to ada');
    runtime.sendToUser('bob', 'to bob');
    expect(await client.next()).toBe('to bob');
    expect(runtime.snapshot().users).toEqual({ bob: [connection.id] });
    await connection.setUser(undefined);
    expect(connection.user).toBeUndefined();
    expect(runtime.snapshot().users).toEqual({});
    runtime.sendToUser('bob', 'to nobody');
    connection.send('direct');
    expect(await client.next()).toBe('direct');
  });

  it('a user on two connections gets both; after one disconnects only the other', async () => {
    const { runtime, url } = await startRuntime();
    const seen = connections(runtime);
    const first = await connect(url);
    const second = await connect(url);
    await eventually(() => seen.length === 2, 'both connections');
    await Promise.all(seen.map((connection) => connection.setUser('ada')));
    runtime.sendToUser('ada', 'one');
    expect(await first.next()).toBe('one');
    expect(await second.next()).toBe('one');

    first.ws.close(1000);
    await first.closed;
    await eventually(() => seen[0]!.state === 'closed', 'the first connection to close');
    expect(runtime.snapshot().users).toEqual({ ada: [seen[1]!.id] });
    runtime.sendToUser('ada', 'two');
    expect(await second.next()).toBe('two');
    expect(first.messages).toEqual(['one']);

    second.ws.terminate();
    await eventually(() => seen[1]!.state === 'closed', 'the second connection to close');
    expect(runtime.snapshot().users).toEqual({});
    // Nobody left: the send does nothing and throws nothing.
    runtime.sendToUser('ada', 'three');
  });

  it('a user returned by authenticate is bound before the connection event', async () => {
    const { runtime, url } = await startRuntime({
      authenticate: (request) => ({ user: new URL(request.url!, 'http://x').searchParams.get('user') ?? undefined }),
    });
    const users: Array<string | undefined> = [];
    runtime.on('connection', (connection) => {
      users.push(connection.user);
      runtime.sendToUser('ada', `hello ${connection.id}`);
    });
    const client = await connect(`${url}?user=ada`);
    expect(await client.next()).toMatch(/^hello /);
    expect(users).toEqual(['ada']);
  });

  it('rejects an empty or non-string user as misuse', async () => {
    const { runtime, url } = await startRuntime();
    const seen = connections(runtime);
    await connect(url);
    await eventually(() => seen.length === 1, 'the connection');
    expect(() => seen[0]!.setUser('')).toThrow(TypeError);
    expect(() => seen[0]!.setUser(42 as unknown as string)).toThrow(TypeError);
    expect(() => runtime.sendToUser('', 'x')).toThrow(TypeError);
  });
});
