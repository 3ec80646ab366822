import { connect as connectNats } from 'nats';
import { beforeAll, describe, expect, it } from 'vitest';
import { encodeWire } from '../../src/cluster/envelope.js';
import type { AdapterNode, BroadcastMessage } from '../../src/index.js';
import { createNatsAdapter, tokenOf } from '../../src/nats.js';
import { adapterConformance } from '../../src/testing/index.js';
import { eventually, settles } from '../helpers/client.js';
import { startNats, type TestNats } from '../helpers/nats.js';
import { ask, member, startNode } from '../cluster/nodes.js';

let nats: TestNats;
/** A server whose one user, the one a connection without credentials is, may not subscribe to the room `refused` under any prefix. */
let guarded: TestNats;
beforeAll(async () => {
  nats = await startNats();
  const denied = `*.room.${tokenOf('refused')}`;
  guarded = await startNats(
    `no_auth_user: berth\nauthorization { users = [ { user: berth, password: berth, permissions: { subscribe: { deny: ["${denied}"] } } } ] }\n`,
  );
});

let clusters = 0;
// The suite as berth/testing ships it, with vitest's describe, it and expect.
adapterConformance(
  { describe, it, expect },
  {
    name: 'nats',
    cluster: () => {
      // A prefix per test: nodes of one test never see another test's subjects or buckets.
      const prefix = `conformance${++clusters}`;
      return () => createNatsAdapter({ servers: nats.url, prefix });
    },
    refusing: {
      room: 'refused',
      cluster: () => {
        const prefix = `refusing${++clusters}`;
        return () => createNatsAdapter({ servers: guarded.url, prefix });
      },
    },
  },
);

/** A node as an adapter sees it, recording everything the adapter tells it. */
function testNode(nodeId: string) {
  const seen = {
    received: [] as BroadcastMessage[],
    links: [] as boolean[],
    dropped: 0,
    losses: [] as Array<{ target: unknown; count: number; origin: string }>,
    failures: [] as string[],
  };
  const node: AdapterNode = {
    nodeId,
    deliver: (message) => void seen.received.push(message),
    dropped: (count) => void (seen.dropped += count),
    lost: (target, count, origin) => void seen.losses.push({ target, count, origin }),
    linkChanged: (up) => void seen.links.push(up),
    failed: (error, what) => void seen.failures.push(`${what}: ${String(error)}`),
    presence: undefined as never,
  };
  return { node, seen, text: () => seen.received.map((message) => Buffer.from(message.data as Uint8Array).toString()) };
}

const toLobby = (data: string): BroadcastMessage => ({ target: { kind: 'room', room: 'lobby' }, except: undefined, data, binary: false });

describe('the NATS adapter when NATS fails', () => {
  it('NATS restarts: broadcasts while it is down are dropped and counted, the link goes down and up, subscriptions and presence come back', async () => {
    const own = await startNats();
    const a = testNode('restart-a');
    const b = testNode('restart-b');
    const first = createNatsAdapter({ servers: own.url, prefix: 'restart' });
    const second = createNatsAdapter({ servers: own.url, prefix: 'restart' });
    await first.attach(a.node);
    await second.attach(b.node);
    try {
      second.track!({ kind: 'connect', id: 'b-1', user: 'bob' });
      await second.track!({ kind: 'join', id: 'b-1', room: 'lobby' });
      first.publish(toLobby('before'));
      await eventually(() => b.text().join() === 'before', 'the broadcast before');

      await own.kill();
      await eventually(() => a.seen.links.at(-1) === false && b.seen.links.at(-1) === false, 'both links down');
      for (let i = 0; i < 3; i++) first.publish(toLobby(`during ${i}`));
      expect(a.seen.dropped).toBe(3);
      await expect(first.presence!.roomSize('lobby')).rejects.toThrow(/not connected to NATS/);

      // The server comes back empty: its presence buckets lived in memory.
      await own.restart();
      await eventually(() => a.seen.links.at(-1) === true && b.seen.links.at(-1) === true, 'both links up again', 15_000);
      await settles(async () => {
        expect(await first.presence!.roomSize('lobby')).toBe(1);
        expect(await first.presence!.userConnections('bob')).toEqual(['b-1']);
        expect(await first.presence!.nodes()).toEqual(['restart-a', 'restart-b']);
      });
      first.publish(toLobby('after'));
      await eventually(() => b.text().join() === 'before,after', 'the broadcast after');
      // b saw none of the three, and knows exactly how many it missed.
      expect(b.seen.losses).toEqual([{ target: { kind: 'room', room: 'lobby' }, count: 3, origin: 'restart-a' }]);
    } finally {
      await Promise.all([first.close(), second.close()]);
    }
  }, 40_000);

  it('NATS down at start: attach settles local-only with the link down, then the node joins when NATS comes up', async () => {
    const late = await startNats();
    await late.kill();
    const a = testNode('late-a');
    const adapter = createNatsAdapter({ servers: late.url, prefix: 'late' });
    await adapter.attach(a.node);
    try {
      expect(a.seen.links).toEqual([false]);
      adapter.publish({ target: { kind: 'all' }, except: undefined, data: 'nobody', binary: false });
      expect(a.seen.dropped).toBe(1);
      await late.restart();
      await eventually(() => a.seen.links.at(-1) === true, 'the link to come up', 15_000);
      expect(await adapter.presence!.nodes()).toEqual(['late-a']);
    } finally {
      await adapter.close();
    }
  }, 30_000);

  it('a stalled NATS: broadcasts past the publish backlog are dropped and counted, presence reads and a join’s subscription reject instead of hanging, close does not hang', async () => {
    const stalled = await startNats();
    const a = testNode('stall-a');
    const adapter = createNatsAdapter({ servers: stalled.url, prefix: 'stall', maxPublishBacklogBytes: 64 * 1024, presenceTimeoutMs: 300 });
    await adapter.attach(a.node);
    stalled.stall();
    try {
      // 4 MiB, far more than the socket buffers hold: the server confirms none of it.
      for (let i = 0; i < 128; i++)
        adapter.publish({ target: { kind: 'all' }, except: undefined, data: Buffer.alloc(32 * 1024, 1), binary: true });
      // 64 KiB of backlog holds two or three of them; the rest were dropped at once.
      expect(a.seen.dropped).toBeGreaterThanOrEqual(125);
      expect(a.seen.dropped).toBeLessThanOrEqual(126);
      await expect(adapter.presence!.roomSize('lobby')).rejects.toThrow(/presence read \(roomSize\) took longer than 300 ms/);
      // A join's subscription the server does not confirm in time, the link still up: its track says so.
      await expect(Promise.resolve(adapter.track!({ kind: 'connect', id: 's-1', user: 'stalled' }))).rejects.toThrow(
        /^NATS did not subscribe this node to stall\.user\.\S+ with the link up: subscribing to \S+ took longer than 300 ms$/,
      );
      // It settles (NATS could not take the presence away: the runtime reports that, and the heartbeat expires).
      await Promise.resolve(adapter.close()).catch(() => {});
    } finally {
      stalled.resume();
    }
  }, 20_000);

  it('a node killed with SIGKILL leaves presence once its heartbeat lapses', async () => {
    const env = { NATS_URL: nats.url, BERTH_PREFIX: 'killed', NODE_TIMEOUT_MS: '2000' };
    const [doomed, survivor] = await Promise.all([startNode(env), startNode(env)]);
    for (const node of [doomed, survivor]) await ask((await member(node)).client, { join: 'lobby' });
    await settles(async () => expect(await survivor.presence('roomSize', 'lobby')).toBe(2));
    await doomed.kill();
    await settles(async () => {
      expect(await survivor.presence('nodes')).toEqual([survivor.nodeId]);
      expect(await survivor.presence('roomSize', 'lobby')).toBe(1);
      expect(await survivor.presence('rooms')).toEqual({ lobby: 1 });
    }, 10_000);
  }, 30_000);
});

describe('the NATS adapter subscribes per room and user', () => {
  it('a room’s subject is <prefix>.room.<base64url of its name>, subscribed once its join settles, whatever the name holds', async () => {
    const raw = await connectNats({ servers: nats.url });
    const b = testNode('subjects-b');
    const adapter = createNatsAdapter({ servers: nats.url, prefix: 'subjects' });
    await adapter.attach(b.node);
    try {
      const rooms = ['a.b *> é 🍽', 'x'.repeat(300)];
      adapter.track!({ kind: 'connect', id: 'b-1', user: undefined });
      for (const room of rooms) await adapter.track!({ kind: 'join', id: 'b-1', room });
      expect(tokenOf(rooms[0]!)).toBe(Buffer.from(rooms[0]!).toString('base64url'));
      // A long name's token is a digest of it, so the subject stays short.
      expect(tokenOf(rooms[1]!)).toMatch(/^=[\w-]{43}$/);
      for (const [i, room] of rooms.entries()) {
        const message: BroadcastMessage = { target: { kind: 'room', room }, except: undefined, data: `to ${i}`, binary: false };
        raw.publish(`subjects.room.${tokenOf(room)}`, encodeWire('elsewhere', { epoch: 1, seq: i + 1 }, message));
      }
      await eventually(() => b.text().join() === 'to 0,to 1', 'both broadcasts');
      expect(b.seen.received.map((message) => message.target)).toEqual(rooms.map((room) => ({ kind: 'room', room })));
    } finally {
      await adapter.close();
      await raw.close();
    }
  });

  it('a connection given is used and never closed; its subscriptions end with the adapter', async () => {
    const given = await connectNats({ servers: nats.url });
    const other = createNatsAdapter({ servers: nats.url, prefix: 'given' });
    const adapter = createNatsAdapter({ connection: given, prefix: 'given' });
    const a = testNode('given-a');
    const b = testNode('given-b');
    await adapter.attach(a.node);
    await other.attach(b.node);
    try {
      await adapter.track!({ kind: 'connect', id: 'a-1', user: 'ada' });
      // Without noEcho, the server sends this node's broadcasts back to it: they are skipped.
      adapter.publish({ target: { kind: 'user', user: 'ada' }, except: undefined, data: 'own', binary: false });
      other.publish({ target: { kind: 'user', user: 'ada' }, except: undefined, data: 'to ada', binary: false });
      await eventually(() => a.text().join() === 'to ada', 'the broadcast to ada');
      // Presence is written beside the subscription, not before the track resolves: read once it is in.
      await settles(async () => expect(await other.presence!.userConnections('ada')).toEqual(['a-1']));
    } finally {
      await adapter.close();
      await other.close();
    }
    expect(given.isClosed()).toBe(false);
    // Had the adapter left a subscription behind, the server would send this back before its PONG.
    const before = given.stats().inMsgs;
    given.publish('given.all', 'anyone?');
    await given.flush();
    expect(given.stats().inMsgs).toBe(before);
    await given.close();
  });
});

describe('the NATS adapter’s presence limits', () => {
  it('a read whose answer would pass maxPresenceEntries rejects, saying so; roomSize counts and is never capped', async () => {
    const [first, second] = [0, 1].map(() => createNatsAdapter({ servers: nats.url, prefix: 'capped', maxPresenceEntries: 3 }));
    await first!.attach(testNode('capped-a').node);
    await second!.attach(testNode('capped-b').node);
    try {
      for (let i = 1; i <= 4; i++) {
        second!.track!({ kind: 'connect', id: `b-${i}`, user: 'bob' });
        second!.track!({ kind: 'join', id: `b-${i}`, room: 'lobby' });
      }
      await settles(async () => expect(await first!.presence!.roomSize('lobby')).toBe(4));
      await expect(first!.presence!.roomMembers('lobby')).rejects.toThrow(
        /^presence roomMembers would read 4 entries, more than maxPresenceEntries \(3\): not read$/,
      );
      await expect(first!.presence!.userConnections('bob')).rejects.toThrow(/more than maxPresenceEntries \(3\)/);
      expect(await first!.presence!.onlineUsers()).toEqual(['bob']);
    } finally {
      await Promise.all([first!.close(), second!.close()]);
    }
  });
});

describe('the NATS adapter’s options', () => {
  it('refuses both servers and a connection, or neither', async () => {
    expect(() => createNatsAdapter({})).toThrow(/exactly one of options.servers or options.connection/);
    const given = await connectNats({ servers: nats.url });
    expect(() => createNatsAdapter({ servers: nats.url, connection: given })).toThrow(TypeError);
    await given.close();
  });

  it.each<[string, Record<string, unknown>, ErrorConstructor, RegExp]>([
    ['no server at all', { servers: [] }, TypeError, /^options.servers must be a URL or a non-empty array of URLs$/],
    ['a server with a space', { servers: ['nats://a b'] }, TypeError, /^options.servers\[0\] must be a nats:\/\//],
    ['a prefix with a dot', { prefix: 'a.b' }, TypeError, /^options.prefix must be at most 64 letters, digits, - or _, got "a.b"$/],
    ['a nodeTimeoutMs under a second', { nodeTimeoutMs: 10 }, RangeError, /^options.nodeTimeoutMs must be at least 1000, got 10$/],
    [
      'a heartbeat slower than half the timeout',
      { heartbeatIntervalMs: 6000 },
      RangeError,
      /^options.heartbeatIntervalMs must be at most half/,
    ],
    [
      'entries that would expire before dead nodes do',
      { entryTtlMs: 20_000 },
      RangeError,
      /^options.entryTtlMs must be at least 4 × options.nodeTimeoutMs/,
    ],
    ['a backlog of zero', { maxPublishBacklogBytes: 0 }, RangeError, /^options.maxPublishBacklogBytes must be within/],
    ['a cap of zero', { maxPresenceEntries: 0 }, RangeError, /^options.maxPresenceEntries must be within/],
    [
      'a non-number presence timeout',
      { presenceTimeoutMs: '5' },
      TypeError,
      /^options.presenceTimeoutMs must be a finite number, got "5"$/,
    ],
  ])('checks its options in the runtime’s style: %s', (_what, options, kind, message) => {
    const create = () => createNatsAdapter({ servers: 'nats://127.0.0.1:1', ...options });
    expect(create).toThrow(kind);
    expect(create).toThrow(message);
  });
});
