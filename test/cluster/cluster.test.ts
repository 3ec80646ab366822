import { beforeAll, describe, expect, it } from 'vitest';
import type { Health } from '../../src/index.js';
import { connect, eventually, settles, type TestClient } from '../helpers/client.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { startNode, type ClusterNode } from './nodes.js';

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});

let clusters = 0;
async function startCluster(count: number, env: { NODE_TIMEOUT_MS?: string } = {}): Promise<ClusterNode[]> {
  const prefix = `cluster${++clusters}`;
  return Promise.all(Array.from({ length: count }, () => startNode({ REDIS_URL: redis.url, BERTH_PREFIX: prefix, ...env })));
}

interface Member {
  readonly client: TestClient;
  readonly id: string;
  readonly node: number;
  rooms: Set<string>;
  user: string | undefined;
}

async function member(nodes: ClusterNode[], node: number): Promise<Member> {
  const client = await connect(nodes[node]!.url);
  const hello = await client.next();
  return { client, id: hello.slice('id '.length), node, rooms: new Set(), user: undefined };
}

/** Sends a protocol request and waits for its acknowledgement. */
async function ask(m: Member, request: { join?: string; leave?: string; user?: string }): Promise<void> {
  const text = JSON.stringify(request);
  m.client.ws.send(text);
  expect(await m.client.next()).toBe(`ok ${text}`);
  if (request.join !== undefined) m.rooms.add(request.join);
  if (request.leave !== undefined) m.rooms.delete(request.leave);
  if (request.user !== undefined) m.user = request.user;
}

describe('a cluster of berth nodes in separate processes on one Redis', () => {
  it('room, user and global broadcasts reach every member on every node exactly once, in order per origin', async () => {
    const nodes = await startCluster(3);
    const members: Member[] = [];
    for (let i = 0; i < 30; i++) members.push(await member(nodes, i % 3));
    // Rooms overlap and span nodes; users 'u0'..'u4' each have connections on two or three nodes.
    for (const [i, m] of members.entries()) {
      await ask(m, { join: `room${i % 4}` });
      if (i % 5 === 0) await ask(m, { join: 'small' });
      await ask(m, { user: `u${i % 5}` });
    }
    await settles(async () => expect(await nodes[0]!.presence('roomSize', 'room0')).toBe(8));

    type Sent = { origin: number; text: string; to: (m: Member) => boolean };
    const sent: Sent[] = [];
    for (let round = 0; round < 20; round++) {
      for (const [origin, node] of nodes.entries()) {
        const room = `room${round % 4}`;
        const user = `u${round % 5}`;
        const tag = `${origin}:${round}`;
        await node.request({ op: 'sendToRoom', name: room, data: `room ${tag}` });
        sent.push({ origin, text: `room ${tag}`, to: (m) => m.rooms.has(room) });
        await node.request({ op: 'sendToUser', name: user, data: `user ${tag}` });
        sent.push({ origin, text: `user ${tag}`, to: (m) => m.user === user });
        await node.request({ op: 'sendToAll', data: `all ${tag}` });
        sent.push({ origin, text: `all ${tag}`, to: () => true });
      }
    }
    // A final marker from each node: per-origin order means nothing of that origin can follow it.
    for (const [origin, node] of nodes.entries()) {
      await node.request({ op: 'sendToAll', data: `end ${origin}` });
    }
    for (const m of members) {
      await eventually(() => nodes.every((_, origin) => m.client.messages.includes(`end ${origin}`)), `the end markers at ${m.id}`);
      const got = m.client.messages.filter((text) => !text.startsWith('id ') && !text.startsWith('ok ') && !text.startsWith('end '));
      for (const origin of nodes.keys()) {
        const expected = sent.filter((s) => s.origin === origin && s.to(m)).map((s) => s.text);
        const fromOrigin = got.filter((text) => text.split(' ')[1]!.startsWith(`${origin}:`));
        expect(fromOrigin, `${m.id} from node ${origin}`).toEqual(expected);
      }
      expect(got.length).toBe(sent.filter((s) => s.to(m)).length);
    }
  });

  it('presence matches the ground truth on every node after joins, leaves, disconnects and a user on two nodes', async () => {
    const nodes = await startCluster(3);
    const members: Member[] = [];
    for (let i = 0; i < 12; i++) members.push(await member(nodes, i % 3));
    for (const [i, m] of members.entries()) {
      await ask(m, { join: 'lobby' });
      if (i % 2 === 0) await ask(m, { join: `even` });
      if (i < 2)
        await ask(m, { user: 'ada' }); // members 0 and 1: on nodes 0 and 1
      else if (i % 3 === 2) await ask(m, { user: `user${i}` });
    }
    await ask(members[4]!, { leave: 'lobby' });
    await ask(members[6]!, { leave: 'even' });
    await ask(members[5]!, { user: 'ada' }); // ada now on three nodes; user5 is gone
    members[7]!.client.ws.close();
    members[8]!.client.ws.terminate(); // no close frame: the server sees the TCP connection drop
    const gone = new Set([members[7]!.id, members[8]!.id]);
    const alive = members.filter((m) => !gone.has(m.id));

    const truth = {
      nodes: nodes.map((n) => n.nodeId).sort(),
      lobby: alive
        .filter((m) => m.rooms.has('lobby'))
        .map((m) => m.id)
        .sort(),
      even: alive
        .filter((m) => m.rooms.has('even'))
        .map((m) => m.id)
        .sort(),
      ada: alive
        .filter((m) => m.user === 'ada')
        .map((m) => m.id)
        .sort(),
      users: [...new Set(alive.flatMap((m) => (m.user === undefined ? [] : [m.user])))].sort(),
    };
    expect(truth.ada).toHaveLength(3);
    for (const node of nodes) {
      await settles(async () => {
        expect(await node.presence('nodes')).toEqual(truth.nodes);
        expect(await node.presence('roomMembers', 'lobby')).toEqual(truth.lobby);
        expect(await node.presence('roomSize', 'lobby')).toBe(truth.lobby.length);
        expect(await node.presence('roomMembers', 'even')).toEqual(truth.even);
        expect(await node.presence('rooms')).toEqual({ even: truth.even.length, lobby: truth.lobby.length });
        expect(await node.presence('userConnections', 'ada')).toEqual(truth.ada);
        expect(await node.presence('onlineUsers')).toEqual(truth.users);
      });
    }
  });

  it('a node killed with SIGKILL drops out of presence within nodeTimeoutMs (10 s by default) and the others carry on', async () => {
    const nodes = await startCluster(2);
    const [survivor, victim] = nodes as [ClusterNode, ClusterNode];
    const here = await member(nodes, 0);
    const there = [await member(nodes, 1), await member(nodes, 1)];
    for (const m of [here, ...there]) {
      await ask(m, { join: 'lobby' });
      await ask(m, { user: 'ada' });
    }
    await settles(async () => expect(await survivor.presence('roomSize', 'lobby')).toBe(3));

    const killedAt = Date.now();
    await victim.kill();
    let expiredAfter: number;
    for (;;) {
      // Timed from when the question was asked: a slow answer on a busy machine is not a late expiry.
      const askedAt = Date.now() - killedAt;
      const members = await survivor.presence<string[]>('roomMembers', 'lobby');
      if (members.length === 1) {
        expiredAfter = askedAt;
        break;
      }
      expect(askedAt, 'presence of the killed node outlived nodeTimeoutMs').toBeLessThan(10_000 + 500);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    console.log(`presence of a SIGKILLed node expired after ${expiredAfter} ms (nodeTimeoutMs 10000)`);
    expect(await survivor.presence('roomMembers', 'lobby')).toEqual([here.id]);
    expect(await survivor.presence('userConnections', 'ada')).toEqual([here.id]);
    expect(await survivor.presence('nodes')).toEqual([survivor.nodeId]);
    await survivor.request({ op: 'sendToRoom', name: 'lobby', data: 'still here' });
    expect(await here.client.next()).toBe('still here');
    const health = await survivor.request<Health>({ op: 'health' });
    expect(health.status).toBe('ok');
  }, 30_000);
});
