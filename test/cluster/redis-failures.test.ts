import { createClient } from 'redis';
import { beforeAll, describe, expect, it } from 'vitest';
import { BerthError, type Connection, type Health } from '../../src/index.js';
import { createRedisAdapter } from '../../src/redis.js';
import { connect, eventually, settles } from '../helpers/client.js';
import { heartbeatOf, redisPassed, startRedis, type TestRedis } from '../helpers/redis.js';
import { startRuntime } from '../helpers/runtime.js';
import { ask, member, startNode } from './nodes.js';

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});

describe('Redis failures', () => {
  it('Redis restarts: nodes reconnect, rebuild presence and deliver across again; local delivery never stopped', async () => {
    const env = { REDIS_URL: redis.url, BERTH_PREFIX: 'restart' };
    const [a, b] = await Promise.all([startNode(env), startNode(env)]);
    const [onA, alsoOnA, onB] = [(await member(a)).client, (await member(a)).client, (await member(b)).client];
    for (const client of [onA, alsoOnA, onB]) await ask(client, { join: 'lobby' });
    await settles(async () => expect(await a.presence('roomSize', 'lobby')).toBe(3));
    await a.request({ op: 'sendToRoom', name: 'lobby', data: 'before' });
    for (const client of [onA, alsoOnA, onB]) expect(await client.next()).toBe('before');

    await redis.kill();
    await settles(async () => expect((await a.request<Health>({ op: 'health' })).cluster.linkUp).toBe(false));
    const down = await a.request<Health>({ op: 'health' });
    expect(down.status).toBe('degraded');
    expect(down.reasons.join()).toMatch(/cluster link down/);
    for (let i = 0; i < 5; i++) await a.request({ op: 'sendToRoom', name: 'lobby', data: `during ${i}` });
    for (const client of [onA, alsoOnA]) {
      const received = await client.received(2 + 1 + 5); // id, ok, before, during 0..4
      expect(received.slice(3)).toEqual(['during 0', 'during 1', 'during 2', 'during 3', 'during 4']);
    }
    const dropped = (await a.request<Health>({ op: 'health' })).cluster.dropped;
    expect(dropped).toBe(5);
    await expect(a.presence('nodes')).rejects.toThrow(/ERR_ADAPTER|cluster presence/);

    await redis.restart();
    for (const node of [a, b]) {
      await settles(async () => expect((await node.request<Health>({ op: 'health' })).status).toBe('ok'), 15_000);
    }
    // Redis came back empty: each node wrote its presence again.
    await settles(async () => expect(await b.presence('roomSize', 'lobby')).toBe(3));
    expect(await b.presence('nodes')).toEqual([a.nodeId, b.nodeId].sort());
    await a.request({ op: 'sendToRoom', name: 'lobby', data: 'after' });
    expect(await onB.next()).toBe('after');
    // onB never saw the messages sent while Redis was down (at most once, and counted).
    expect(onB.messages.filter((m) => m.startsWith('during'))).toEqual([]);
  }, 40_000);

  it('Redis down at start: the runtime starts local-only and degraded, then joins the cluster when Redis comes up', async () => {
    const late = await startRedis();
    await late.kill();
    const { runtime, url } = await startRuntime({ adapter: createRedisAdapter({ url: late.url, prefix: 'late', connectTimeoutMs: 2000 }) });
    const errors: BerthError[] = [];
    runtime.on('error', ({ error }) => errors.push(error));
    expect(runtime.health().status).toBe('degraded');
    expect(runtime.health().cluster.linkUp).toBe(false);
    expect(runtime.metrics.snapshot().errors.ERR_ADAPTER).toBe(1); // reported once, before this test could listen
    expect(runtime.metrics.snapshot().crossNode.linkUp).toBe(false);
    expect(await runtime.metrics.prometheus()).toMatch(/^berth_cluster_link_up 0$/m);
    const client = await connect(url);
    runtime.sendToAll('local only');
    expect(await client.next()).toBe('local only');
    const failure = await runtime.presence.nodes().catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(BerthError);
    expect((failure as BerthError).code).toBe('ERR_ADAPTER');

    await late.restart();
    await eventually(() => runtime.health().status === 'ok', 'the link to come up', 10_000);
    expect(await runtime.presence.nodes()).toEqual([runtime.nodeId]);
    expect(await runtime.metrics.prometheus()).toMatch(/^berth_cluster_link_up 1$/m);
    await late.kill();
  }, 20_000);

  it('a live node keeps its presence past nodeTimeoutMs, and one swept away by mistake registers again', async () => {
    // A heartbeat every 300 ms against a 3 s timeout: only a 2.7 s stall of this process could lapse it.
    const options = { url: redis.url, prefix: 'heartbeat', nodeTimeoutMs: 3000, heartbeatIntervalMs: 300 };
    const { runtime, url } = await startRuntime({ adapter: createRedisAdapter(options) });
    const opened = new Promise<Connection>((resolve) => runtime.on('connection', resolve));
    await connect(url);
    await (await opened).join('lobby');
    const admin = createClient({ url: redis.url });
    await admin.connect();
    try {
      // Past the deadline it had once it joined, on Redis's clock: the heartbeats have moved it on, the same instance.
      const joined = await heartbeatOf(admin, 'heartbeat', runtime.nodeId);
      await redisPassed(admin, joined.deadline, 10_000);
      expect(await runtime.presence.roomSize('lobby')).toBe(1);
      const { instance, deadline } = await heartbeatOf(admin, 'heartbeat', runtime.nodeId);
      expect(instance).toBe(joined.instance);
      expect(deadline).toBeGreaterThan(joined.deadline);

      // Its heartbeat's field taken away, as a node that found it lapsed would.
      await admin.hDel('heartbeat:{nodes}', instance);
      expect(await runtime.presence.nodes()).toEqual([]);
      // The next heartbeat finds its key gone, and the node writes itself back whole.
      await settles(async () => expect(await runtime.presence.roomSize('lobby')).toBe(1));
      expect(await runtime.presence.nodes()).toEqual([runtime.nodeId]);
    } finally {
      await admin.close();
    }
  });

  it('a stalled Redis: broadcasts past the publish backlog are dropped and counted, not queued; close does not hang', async () => {
    const stalled = await startRedis();
    const adapter = createRedisAdapter({ url: stalled.url, prefix: 'stall', maxPublishBacklogBytes: 1024 * 1024 });
    const { runtime, url } = await startRuntime({ adapter, outbox: { maxBytes: 64 * 1024 * 1024 } });
    runtime.on('error', () => {});
    const client = await connect(url);
    const quarter = Buffer.alloc(256 * 1024, 7);
    stalled.stall();
    try {
      for (let i = 0; i < 40; i++) runtime.sendToAll(quarter);
      // Local delivery does not wait for Redis.
      await client.received(40, 10_000);
      const { crossNode } = runtime.metrics.snapshot();
      expect(crossNode.published).toBe(40);
      // 1 MiB of backlog holds 4 or 5 of them; the rest were dropped at once.
      expect(crossNode.dropped).toBeGreaterThanOrEqual(35);
      expect(crossNode.dropped).toBeLessThanOrEqual(36);
      // With Redis still frozen, close gives up on it rather than hang.
      await runtime.close();
      expect(runtime.health().status).toBe('closed');
    } finally {
      stalled.resume();
    }
  }, 20_000);

  it('a stalled Redis with its link up: health says degraded once broadcasts are dropped, presence reads reject with ERR_ADAPTER instead of hanging', async () => {
    const stalled = await startRedis();
    const adapter = createRedisAdapter({
      url: stalled.url,
      prefix: 'stall-health',
      maxPublishBacklogBytes: 64 * 1024,
      presenceTimeoutMs: 300,
    });
    const { runtime, url } = await startRuntime({ adapter, health: { clusterTroubleMs: 1500 } });
    const errors: string[] = [];
    runtime.on('error', ({ error }) => void errors.push(error.message));
    await connect(url);
    expect(runtime.health().status).toBe('ok');
    stalled.stall();
    try {
      for (let i = 0; i < 4; i++) runtime.sendToAll(Buffer.alloc(32 * 1024, 1));
      const health = runtime.health();
      // Redis's TCP link is still up: only the drops tell.
      expect(health.cluster.linkUp).toBe(true);
      expect(health.cluster.dropped).toBeGreaterThan(0);
      expect(health.status).toBe('degraded');
      expect(health.reasons.join()).toMatch(/broadcasts to other nodes dropped/);
      const read = await runtime.presence.roomSize('lobby').then(
        () => 'answered',
        (error: unknown) => (error instanceof BerthError ? error.code : String(error)),
      );
      expect(read).toBe('ERR_ADAPTER');
      expect(runtime.health().reasons.join()).toMatch(/adapter presence read failed/);
      expect(errors.join()).toMatch(/presence read \(roomSize\) took longer than 300 ms/);
    } finally {
      stalled.resume();
    }
    // Once the cluster is well again for clusterTroubleMs, health clears.
    await settles(async () => expect(runtime.health().status).toBe('ok'), 5000);
    expect(await runtime.presence.roomSize('nobody')).toBe(0);
    await runtime.close();
  }, 20_000);

  it('Redis drops only a slow node’s subscriber (its pub/sub output-buffer limit): what that node missed is counted exactly, told as `lost`, and its health says degraded', async () => {
    const admin = createClient({ url: redis.url });
    await admin.connect();
    await admin.configSet('client-output-buffer-limit', 'pubsub 256kb 0 0');
    try {
      const env = { REDIS_URL: redis.url, BERTH_PREFIX: 'subscriber-drop' };
      const [a, b] = await Promise.all([startNode(env), startNode(env)]);
      const onB = (await member(b)).client;
      await ask(onB, { join: 'lobby' });
      await a.request({ op: 'sendToRoom', name: 'lobby', data: 'before' });
      expect(await onB.next()).toBe('before');

      // b stops reading; 8 MB to the lobby overflow what the kernel buffers and Redis's 256 KB limit,
      // so Redis closes b's subscriber connection, and b's other connection stays up.
      b.process.kill('SIGSTOP');
      const payload = 'x'.repeat(4000);
      const channel = 'subscriber-drop:{room:lobby}';
      expect((await admin.pubSubNumSub(channel))[channel]).toBe(1);
      await a.request({ op: 'burst', name: 'lobby', data: payload, count: 2000 });
      await settles(async () => expect(Number(await admin.pubSubNumSub(channel).then((n) => n[channel]))).toBe(0));
      b.process.kill('SIGCONT');

      // Once b has its subscription back, the next message arrives, and shows b the gap before it.
      await settles(async () => expect(Number(await admin.pubSubNumSub(channel).then((n) => n[channel]))).toBe(1), 10_000);
      await a.request({ op: 'sendToRoom', name: 'lobby', data: 'after' });
      const sent = 2002;
      await eventually(() => onB.messages.includes('after'), 'the message after the drop');
      expect(onB.messages.at(-1)).toBe('after');
      const delivered = onB.messages.length - 2; // its id, ok
      const lost = await b.request<Array<{ target: unknown; count: number; origin: string }>>({ op: 'lost' });
      expect(lost.length).toBeGreaterThan(0);
      for (const event of lost) expect(event).toMatchObject({ target: { kind: 'room', room: 'lobby' }, origin: a.nodeId });
      // Never silent: every message a sent is either delivered on b or counted as lost there.
      expect(delivered + lost.reduce((sum, event) => sum + event.count, 0)).toBe(sent);
      expect(delivered).toBeLessThan(sent);
      // In order, none twice.
      const burst = onB.messages.slice(3).filter((message) => message.startsWith('x'));
      expect(new Set(burst).size).toBe(burst.length);
      const health = await b.request<Health>({ op: 'health' });
      expect(health.status).toBe('degraded');
      expect(health.cluster.lost).toBe(sent - delivered);
      expect(health.reasons.join()).toMatch(/broadcasts from other nodes lost/);
      // a learns it too: Redis said some of its publishes reached no subscriber while b hosted the lobby.
      // Those are among what b lost; the rest Redis took and discarded with b's subscriber connection.
      const onA = await a.request<Health>({ op: 'health' });
      expect(onA.cluster.dropped).toBeGreaterThan(0);
      expect(onA.cluster.dropped).toBeLessThanOrEqual(health.cluster.lost);
      expect(onA.status).toBe('degraded');
      expect(onA.reasons.join()).toMatch(/broadcasts to other nodes dropped/);
    } finally {
      await admin.configSet('client-output-buffer-limit', 'pubsub 32mb 8mb 60');
      await admin.close();
    }
  }, 40_000);

  it('a message on the channel that is not a berth broadcast is reported; delivery carries on', async () => {
    const { runtime, url } = await startRuntime({ adapter: createRedisAdapter({ url: redis.url, prefix: 'garbage' }) });
    const errors: BerthError[] = [];
    runtime.on('error', ({ error }) => errors.push(error));
    const client = await connect(url);
    const admin = createClient({ url: redis.url });
    await admin.connect();
    await admin.publish('garbage:broadcast', 'not a broadcast');
    await eventually(() => errors.length === 1, 'the error');
    expect(errors[0]!.code).toBe('ERR_ADAPTER');
    expect(errors[0]!.message).toMatch(/receive on garbage:broadcast/);
    runtime.sendToAll('fine');
    expect(await client.next()).toBe('fine');
    await admin.close();
  });
});
