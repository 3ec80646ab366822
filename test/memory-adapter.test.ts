import { describe, expect, it } from 'vitest';
import { createMemoryAdapter, createMemoryBus, type Adapter, type Connection, type Runtime } from '../src/index.js';
import { connect, eventually, type TestClient } from './helpers/client.js';
import { startRuntime } from './helpers/runtime.js';

async function node(adapter: Adapter): Promise<{ runtime: Runtime; url: string; opened: Connection[] }> {
  const { runtime, url } = await startRuntime({ adapter });
  const opened: Connection[] = [];
  runtime.on('connection', (connection) => opened.push(connection));
  return { runtime, url, opened };
}

describe('adapter seam: runtimes on one memory bus', () => {
  it('room, user and global broadcasts reach every node once; except works across nodes', async () => {
    const bus = createMemoryBus();
    const a = await node(createMemoryAdapter(bus));
    const b = await node(createMemoryAdapter(bus));
    const onA = await connect(a.url);
    const onB = await connect(b.url);
    const loneB = await connect(b.url);
    await eventually(() => a.opened.length === 1 && b.opened.length === 2, 'connections on both nodes');
    await a.opened[0]!.join('room');
    await b.opened[0]!.join('room');
    await a.opened[0]!.setUser('ada');
    await b.opened[1]!.setUser('ada');

    a.runtime.sendToRoom('room', 'room from a');
    b.runtime.sendToUser('ada', 'user from b');
    a.runtime.sendToAll('all from a', { except: b.opened[1]!.id });
    const last = (client: TestClient) => client.next();
    expect([await last(onA), await last(onA), await last(onA)]).toEqual(['room from a', 'user from b', 'all from a']);
    expect([await last(onB), await last(onB)]).toEqual(['room from a', 'all from a']);
    expect(await last(loneB)).toBe('user from b');

    // Nothing arrives twice: a marker sent last is the next message everywhere.
    a.runtime.sendToAll('marker');
    for (const client of [onA, onB, loneB]) expect(await client.next()).toBe('marker');
  });

  it('a cluster of one (the default) delivers locally only', async () => {
    const a = await node(createMemoryAdapter());
    const b = await node(createMemoryAdapter());
    const onA = await connect(a.url);
    const onB = await connect(b.url);
    a.runtime.sendToAll('only a');
    b.runtime.sendToAll('only b');
    expect(await onA.next()).toBe('only a');
    expect(await onB.next()).toBe('only b');
  });

  it('a failing adapter is reported as ERR_ADAPTER and local delivery carries on', async () => {
    const failing: Adapter = {
      attach() {},
      publish: () => Promise.reject(new Error('bus down')),
      track() {
        throw new Error('presence down');
      },
      close() {},
    };
    const { runtime, url } = await startRuntime({ adapter: failing });
    const errors: string[] = [];
    runtime.on('error', ({ error }) => errors.push(`${error.code}: ${error.message}`));
    const client = await connect(url);
    runtime.sendToAll('local still works');
    expect(await client.next()).toBe('local still works');
    await eventually(() => errors.some((e) => e.includes('bus down')), 'the publish error');
    expect(errors.every((e) => e.startsWith('ERR_ADAPTER'))).toBe(true);
    expect(errors.some((e) => e.includes('presence down'))).toBe(true);
  });

  it('tells the adapter every presence change of its node, in order', async () => {
    const changes: string[] = [];
    const tracking: Adapter = {
      attach() {},
      publish() {},
      track: (change) => void changes.push(Object.values(change).join(' ')),
      close() {},
    };
    const { runtime, url } = await startRuntime({ adapter: tracking });
    const opened = new Promise<Connection>((resolve) => runtime.on('connection', resolve));
    const client = await connect(url);
    const connection = await opened;
    await connection.join('room');
    await connection.setUser('ada');
    await connection.leave('room');
    client.ws.close();
    await eventually(() => connection.state === 'closed', 'the close');
    const id = connection.id;
    expect(changes).toEqual([`connect ${id} `, `join ${id} room`, `bind ${id} ada`, `leave ${id} room`, `disconnect ${id}`]);
  });
});

describe('adapter failures at attach', () => {
  it('an attach that throws rejects ready instead of escaping createRuntime', async () => {
    const { createRuntime } = await import('../src/index.js');
    const runtime = createRuntime({
      port: 0,
      host: '127.0.0.1',
      adapter: {
        attach() {
          throw new Error('cannot reach the bus');
        },
        publish() {},
        close() {},
      },
    });
    await expect(runtime.ready).rejects.toThrow(/cannot reach the bus/);
    await runtime.close();
  });
});

describe('an adapter that says when a change took effect', () => {
  it('a join (and a user binding) resolves once the promise its track returned settled: true, or false when it failed (reported, and the join undone)', async () => {
    const pending: Array<{ kind: string; settle: (ok: boolean) => void }> = [];
    const inner = createMemoryAdapter();
    const adapter: Adapter = {
      attach: (node) => inner.attach(node),
      publish: (message) => inner.publish(message),
      close: () => inner.close(),
      track: (change) =>
        change.kind === 'join' || change.kind === 'bind'
          ? new Promise<void>((resolve, reject) =>
              pending.push({ kind: change.kind, settle: (ok) => (ok ? resolve() : reject(new Error('no subscription'))) }),
            )
          : undefined,
    };
    const { runtime, url, opened } = await node(adapter);
    const errors: string[] = [];
    runtime.on('error', ({ error }) => void errors.push(`${error.code} ${error.message}`));
    await connect(url);
    await eventually(() => opened.length === 1, 'the connection');
    let joined: boolean | undefined;
    void opened[0]!.join('lobby').then((ok) => (joined = ok));
    await eventually(() => pending.length === 1, 'the track of the join');
    // A leave after it, which the adapter does not track, goes through the supervisor after the join and resolves.
    expect(await opened[0]!.leave('elsewhere')).toBe(false);
    // The join was accepted by the supervisor, but not resolved while the adapter is still at it.
    expect(runtime.snapshot().rooms.lobby).toEqual([opened[0]!.id]);
    expect(joined).toBeUndefined();
    pending[0]!.settle(true);
    await eventually(() => joined === true, 'the join');
    let bound: boolean | undefined;
    void opened[0]!.setUser('ada').then((ok) => (bound = ok));
    await eventually(() => pending.length === 2, 'the track of the binding');
    expect(bound).toBeUndefined();
    // A failed one resolves false, and says what failed.
    pending[1]!.settle(false);
    await eventually(() => bound === false, 'the binding');
    expect(errors).toEqual(['ERR_ADAPTER adapter presence update failed: no subscription']);
    // A join whose subscription failed is no join: its member would miss what the other nodes send.
    let second: boolean | undefined;
    void opened[0]!.join('news').then((ok) => (second = ok));
    await eventually(() => pending.length === 3, 'the track of the second join');
    pending[2]!.settle(false);
    await eventually(() => second === false, 'the second join');
    expect(runtime.snapshot().rooms.news).toBeUndefined();
    const { errors: counted, crossNode } = runtime.metrics.snapshot();
    expect(counted.ERR_ADAPTER).toBe(2);
    expect(crossNode.lastFailure?.what).toBe('presence update');
  });
});
