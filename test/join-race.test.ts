import type { AnyActorRef } from 'xstate';
import { describe, expect, it } from 'vitest';
import type { Runtime } from '../src/index.js';
import { connect, eventually } from './helpers/client.js';
import { nextConnection, startRuntime } from './helpers/runtime.js';

function expectNoGhost(runtime: Runtime, id: string): void {
  const { rooms, users, connections } = runtime.snapshot();
  for (const members of Object.values(rooms)) expect(members).not.toContain(id);
  for (const members of Object.values(users)) expect(members).not.toContain(id);
  expect(connections[id]?.rooms ?? []).toEqual([]);
}

describe('the room-join race', () => {
  it('join, then close in the same tick: the join lands and leaving removes it', async () => {
    const { runtime, url } = await startRuntime();
    const opened = nextConnection(runtime);
    const client = await connect(url);
    const connection = await opened;
    const joined = connection.join('lobby');
    connection.close(4000, 'bye');
    expect(await joined).toBe(true);
    expectNoGhost(runtime, connection.id);
    await client.closed;
    await eventually(() => connection.state === 'closed', 'the connection to close');
    expectNoGhost(runtime, connection.id);
  });

  it('close, then join in the same tick: the join is refused', async () => {
    const { runtime, url } = await startRuntime();
    const opened = nextConnection(runtime);
    await connect(url);
    const connection = await opened;
    connection.close(4000, 'bye');
    expect(connection.state).toBe('disconnecting');
    expect(await connection.join('lobby')).toBe(false);
    expect(await connection.setUser('ada')).toBe(false);
    expectNoGhost(runtime, connection.id);
  });

  it('join from the close handler, after the connection is gone: refused', async () => {
    const { runtime, url } = await startRuntime();
    const results: Promise<boolean>[] = [];
    runtime.on('close', ({ connection }) => {
      results.push(connection.join('lobby'), connection.setUser('ada'));
    });
    const opened = nextConnection(runtime);
    const client = await connect(url);
    const connection = await opened;
    client.ws.close(4000);
    await eventually(() => results.length === 2, 'the close handler');
    expect(await Promise.all(results)).toEqual([false, false]);
    expectNoGhost(runtime, connection.id);
  });

  it('a join carried by the last message before the peer’s close frame leaves no ghost', async () => {
    const { runtime, url } = await startRuntime();
    const joins: Promise<boolean>[] = [];
    runtime.on('message', ({ connection, data }) => joins.push(connection.join(String(data))));
    const opened = nextConnection(runtime);
    const client = await connect(url);
    const connection = await opened;
    // Message frames and the close frame leave in one TCP write and are parsed in one go.
    client.ws.send('room-1');
    client.ws.send('room-2');
    client.ws.close(4000, 'bye');
    await client.closed;
    await eventually(() => connection.state === 'closed', 'the connection to close');
    expect(joins).toHaveLength(2);
    await Promise.all(joins);
    expectNoGhost(runtime, connection.id);
  });

  it('joins retried on every turn while the peer goes away never leave a ghost', async () => {
    const { runtime, url } = await startRuntime();
    const opened = nextConnection(runtime);
    const client = await connect(url);
    const connection = await opened;
    const outcomes: boolean[] = [];
    let turns = 0;
    const hammer = async () => {
      while (connection.state !== 'closed' && turns < 10_000) {
        turns++;
        outcomes.push(await connection.join(`room-${turns % 7}`));
        // Some joins in, the peer drops while they go on.
        if (turns === 20) client.ws.terminate();
        await new Promise((resolve) => setImmediate(resolve));
      }
    };
    await hammer();
    outcomes.push(await connection.join('late'));
    expect(outcomes).toContain(true);
    expect(outcomes.at(-1)).toBe(false);
    // Once refused, never accepted again.
    expect(outcomes.slice(outcomes.indexOf(false))).not.toContain(true);
    expectNoGhost(runtime, connection.id);
    expect(runtime.snapshot().rooms).toEqual({});
  });

  // The handle refuses joins itself once it is disconnecting; these go straight
  // to the real supervisor, as a join already in flight would, to prove the
  // supervisor's own guard in every order of join, leaving and gone. The
  // application's `runtime.supervisor` is read-only: the actor itself comes
  // from an inspection observer, as the inspector sees it.
  const orders = [
    ['join', 'leaving', 'gone'],
    ['leaving', 'join', 'gone'],
    ['leaving', 'gone', 'join'],
  ] as const;

  it.each(orders)('supervisor order: %s, %s, %s', async (...order) => {
    let supervisor: AnyActorRef | undefined;
    const { runtime, url } = await startRuntime({
      inspect: (event) => {
        if (event.type === '@xstate.actor' && (event.actorRef as AnyActorRef).id === 'supervisor')
          supervisor = event.actorRef as AnyActorRef;
      },
    });
    const opened = nextConnection(runtime);
    const client = await connect(url);
    const connection = await opened;
    const results: boolean[] = [];
    for (const step of order) {
      if (step === 'join') {
        supervisor!.send({ type: 'room.join', id: connection.id, room: 'lobby', respond: (ok: boolean) => results.push(ok) });
        supervisor!.send({ type: 'user.bind', id: connection.id, user: 'ada', respond: (ok: boolean) => results.push(ok) });
      } else if (step === 'leaving') {
        connection.close(4000, 'bye');
        expect(connection.state).toBe('disconnecting');
      } else {
        await client.closed;
        await eventually(() => connection.state === 'closed', 'the connection to be gone');
      }
      if (connection.state !== 'open') expectNoGhost(runtime, connection.id);
    }
    expect(results).toEqual(order[0] === 'join' ? [true, true] : [false, false]);
    expect(runtime.snapshot()).toEqual({ connections: {}, rooms: {}, users: {} });
  });
});
