import { describe, expect, it } from 'vitest';
import type { Health } from '../../src/index.js';
import { eventually, settles } from '../helpers/client.js';
import { heartbeatOf, redisNow, redisPassed, redisWithAdmin } from '../helpers/redis.js';
import { ask, member, startNodes, type ClusterNode, type Member, type MemberRequest } from './nodes.js';

const own = redisWithAdmin();

async function startCluster(count: number): Promise<{ nodes: ClusterNode[]; prefix: string }> {
  return startNodes(count, 'cluster', { REDIS_URL: own.redis.url });
}

/** A member and what it asked for: the ground truth presence is checked against. */
interface Tracked extends Member {
  readonly node: number;
  rooms: Set<string>;
  user: string | undefined;
}

async function tracked(nodes: ClusterNode[], node: number): Promise<Tracked> {
  return { ...(await member(nodes[node]!)), node, rooms: new Set(), user: undefined };
}

/** Asks, then notes what the member is in now. */
async function request(m: Tracked, change: MemberRequest): Promise<void> {
  await ask(m.client, change);
  if (change.join !== undefined) m.rooms.add(change.join);
  if (change.leave !== undefined) m.rooms.delete(change.leave);
  if (change.user !== undefined) m.user = change.user;
}

describe('a cluster of berth nodes in separate processes on one Redis', () => {
  it('room, user and global broadcasts reach every member on every node exactly once, in order per origin', async () => {
    const { nodes } = await startCluster(3);
    const members: Tracked[] = [];
    for (let i = 0; i < 30; i++) members.push(await tracked(nodes, i % 3));
    // Rooms overlap and span nodes; users 'u0'..'u4' each have connections on two or three nodes.
    for (const [i, m] of members.entries()) {
      await request(m, { join: `room${i % 4}` });
      if (i % 5 === 0) await request(m, { join: 'small' });
      await request(m, { user: `u${i % 5}` });
    }
    await settles(async () => expect(await nodes[0]!.presence('roomSize', 'room0')).toBe(8));

    type Sent = { origin: number; text: string; to: (m: Tracked) => boolean };
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
    const { nodes } = await startCluster(3);
    const members: Tracked[] = [];
    for (let i = 0; i < 12; i++) members.push(await tracked(nodes, i % 3));
    for (const [i, m] of members.entries()) {
      await request(m, { join: 'lobby' });
      if (i % 2 === 0) await request(m, { join: `even` });
      if (i < 2)
        await request(m, { user: 'ada' }); // members 0 and 1: on nodes 0 and 1
      else if (i % 3 === 2) await request(m, { user: `user${i}` });
    }
    await request(members[4]!, { leave: 'lobby' });
    await request(members[6]!, { leave: 'even' });
    await request(members[5]!, { user: 'ada' }); // ada now on three nodes; user5 is gone
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

  it('a node killed with SIGKILL drops out of presence once its heartbeat deadline passes, at most nodeTimeoutMs (10 s by default) on, and the others carry on', async () => {
    const nodeTimeout = 10_000;
    const { nodes, prefix } = await startCluster(2);
    const [survivor, victim] = nodes as [ClusterNode, ClusterNode];
    const here = await tracked(nodes, 0);
    const there = [await tracked(nodes, 1), await tracked(nodes, 1)];
    for (const m of [here, ...there]) {
      await request(m, { join: 'lobby' });
      await request(m, { user: 'ada' });
    }
    await settles(async () => expect(await survivor.presence('roomSize', 'lobby')).toBe(3));

    await victim.kill();
    // What its last heartbeat wrote: a deadline on Redis's clock no further than nodeTimeoutMs from now.
    const { deadline } = await heartbeatOf(own.admin, prefix, victim.nodeId);
    expect(deadline - (await redisNow(own.admin))).toBeLessThanOrEqual(nodeTimeout);
    await redisPassed(own.admin, deadline, nodeTimeout + 5000);
    // The first reads after it leave the dead node out, before anyone has removed its entries.
    expect(await survivor.presence('roomMembers', 'lobby')).toEqual([here.id]);
    expect(await survivor.presence('userConnections', 'ada')).toEqual([here.id]);
    expect(await survivor.presence('nodes')).toEqual([survivor.nodeId]);
    await survivor.request({ op: 'sendToRoom', name: 'lobby', data: 'still here' });
    expect(await here.client.next()).toBe('still here');
    const health = await survivor.request<Health>({ op: 'health' });
    expect(health.status).toBe('ok');
  }, 30_000);
});
