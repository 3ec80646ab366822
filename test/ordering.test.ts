import { describe, expect, it } from 'vitest';
import type { Connection } from '../src/index.js';
import { connect, eventually } from './helpers/client.js';
import { startRuntime } from './helpers/runtime.js';
import { seededRandom as random } from '../src/util/random.js';

describe('per-connection order', () => {
  it('interleaved direct, room, user and global sends arrive in send order', async () => {
    const { runtime, url } = await startRuntime();
    const opened: Connection[] = [];
    runtime.on('connection', (connection) => opened.push(connection));
    const target = await connect(url);
    const other = await connect(url);
    await eventually(() => opened.length === 2, 'both connections');
    const [connection, otherConnection] = opened as [Connection, Connection];
    await connection.join('room');
    await connection.setUser('ada');
    await otherConnection.join('room');

    // What `other` shares with the target: the room and global sends, by number.
    const shared: string[] = [];
    const next = random(0x5eed);
    const total = 4000;
    const binaryEvery = 7;
    for (let i = 0; i < total; i++) {
      const text = `${i}`;
      const payload = i % binaryEvery === 0 ? Buffer.from(text) : text;
      switch (Math.floor(next() * 4)) {
        case 0:
          connection.send(payload, { binary: false });
          break;
        case 1:
          runtime.sendToRoom('room', payload, { binary: false });
          shared.push(text);
          break;
        case 2:
          runtime.sendToUser('ada', payload, { binary: false });
          break;
        default:
          runtime.sendToAll(payload, { binary: false });
          shared.push(text);
      }
      // Yield now and then so writes interleave with socket I/O.
      if (i % 97 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    const received = await target.received(total, 15_000);
    expect(received).toEqual(Array.from({ length: total }, (_, i) => `${i}`));
    // The other connection only shares room and global sends, still in order; a last one to all marks the end.
    runtime.sendToAll('end');
    expect(await other.received(shared.length + 1, 15_000)).toEqual([...shared, 'end']);
  });

  it('sends made from inside event handlers keep their order too', async () => {
    const { runtime, url } = await startRuntime();
    runtime.on('connection', (connection) => {
      void connection.join('room');
      connection.send('welcome');
    });
    runtime.on('message', ({ connection, data }) => {
      const n = Number(data);
      connection.send(`${n}a`);
      runtime.sendToRoom('room', `${n}b`);
      connection.send(`${n}c`);
      runtime.sendToAll(`${n}d`);
    });
    const client = await connect(url);
    expect(await client.next()).toBe('welcome');
    for (let n = 0; n < 200; n++) client.ws.send(String(n));
    const received = await client.received(1 + 200 * 4);
    expect(received.slice(1)).toEqual(Array.from({ length: 200 }, (_, n) => ['a', 'b', 'c', 'd'].map((s) => `${n}${s}`)).flat());
  });
});
