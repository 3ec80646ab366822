/**
 * A node receives only what it hosts: room and user broadcasts travel on
 * their own Redis channels, and a node subscribes to one while it hosts a
 * member of it (then for a linger). Nodes in separate processes on a Redis
 * of the test's own; the channels' subscribers are read from Redis itself.
 */
import { describe, expect, it } from 'vitest';
import { eventually, settles, type TestClient } from '../helpers/client.js';
import { redisWithAdmin } from '../helpers/redis.js';
import { ask, member, received, startPair, type ClusterNode } from './nodes.js';

const own = redisWithAdmin();

const LINGER_MS = 300;
const pair = () => startPair('interest', { REDIS_URL: own.redis.url, UNSUBSCRIBE_LINGER_MS: String(LINGER_MS) });
/** A member's client: these tests need not its id. */
const clientOn = async (node: ClusterNode): Promise<TestClient> => (await member(node)).client;

const subscribers = async (channel: string) => (await own.admin.pubSubNumSub(channel))[channel];

describe('a node receives only what it hosts', () => {
  it('a room’s broadcasts reach only the nodes with a member in it; a node skips its own, echoed back', async () => {
    const [a, b, prefix] = await pair();
    const onA = await clientOn(a);
    const onB = await clientOn(b);
    await ask(onA, { join: 'here' });
    await ask(onB, { join: 'there' });
    expect(await subscribers(`${prefix}:{room:here}`)).toBe(1);
    expect(await subscribers(`${prefix}:{room:there}`)).toBe(1);
    for (let i = 0; i < 50; i++) {
      await a.request({ op: 'sendToRoom', name: 'here', data: `here ${i}` });
      await a.request({ op: 'sendToRoom', name: 'there', data: `there ${i}` });
    }
    const of = (client: TestClient, room: string) => client.messages.filter((m) => m.startsWith(`${room} `));
    await eventually(() => of(onA, 'here').length === 50 && of(onB, 'there').length === 50, 'both rooms’ messages', 10_000);
    expect(of(onB, 'there')).toEqual(Array.from({ length: 50 }, (_, i) => `there ${i}`));
    // Everyone still gets what is sent to all: it marks the end of what b could have been sent.
    await a.request({ op: 'sendToAll', data: 'all' });
    await eventually(() => onB.messages.includes('all'), 'the message to all');
    // b took the 50 to its room and the one to all, none of a's own room; a took none of its own back.
    expect(await received(b)).toBe(51);
    expect(await received(a)).toBe(0);
  });

  it('a user’s messages reach only the nodes where it is connected', async () => {
    const [a, b, prefix] = await pair();
    const onB = await clientOn(b);
    await ask(onB, { user: 'ada' });
    expect(await subscribers(`${prefix}:{user:ada}`)).toBe(1);
    await a.request({ op: 'sendToUser', name: 'grace', data: 'nobody here' });
    await a.request({ op: 'sendToUser', name: 'ada', data: 'for ada' });
    await eventually(() => onB.messages.includes('for ada'), 'the message to ada');
    expect(await received(b)).toBe(1);
  });

  it('the subscription follows membership: kept over a quick leave and rejoin, dropped after the linger, made again before a join resolves', async () => {
    const [a, b, prefix] = await pair();
    const channel = `${prefix}:{room:there}`;
    const onB = await clientOn(b);
    await ask(onB, { join: 'there' });
    // Out and straight back in: the subscription never went.
    await ask(onB, { leave: 'there' });
    await ask(onB, { join: 'there' });
    await a.request({ op: 'sendToRoom', name: 'there', data: 'still here' });
    expect(await onB.next()).toBe('still here');
    expect(await subscribers(channel)).toBe(1);

    await ask(onB, { leave: 'there' });
    await settles(async () => expect(await subscribers(channel)).toBe(0), 5000);
    const before = await received(b);
    for (let i = 0; i < 20; i++) await a.request({ op: 'sendToRoom', name: 'there', data: `gone ${i}` });
    await a.request({ op: 'sendToAll', data: 'marker' });
    // Whatever b is sent arrives in order: the marker is the next thing it gets.
    expect(await onB.next()).toBe('marker');
    // Only the marker arrived: twenty messages to a room b no longer hosts cost it nothing.
    expect((await received(b)) - before).toBe(1);

    // The join resolves once the subscription is made: a broadcast sent right after it arrives.
    await ask(onB, { join: 'there' });
    expect(await subscribers(channel)).toBe(1);
    await a.request({ op: 'sendToRoom', name: 'there', data: 'back' });
    expect(await onB.next()).toBe('back');
    expect(onB.messages.filter((m) => m.startsWith('gone'))).toEqual([]);
  });
});
