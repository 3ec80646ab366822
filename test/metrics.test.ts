import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { Connection } from '../src/index.js';
import { connect, eventually } from './helpers/client.js';
import { lagMonitorTick, startRuntime } from './helpers/runtime.js';

describe('metrics', () => {
  it('counts connections, broadcasts, deliveries, fan-out latency and closes', async () => {
    const { runtime, url } = await startRuntime();
    runtime.on('connection', (connection) => void connection.join('lobby'));
    const clients = await Promise.all([connect(url), connect(url), connect(url)]);
    await eventually(() => runtime.snapshot().rooms.lobby?.length === 3, 'everyone in the lobby');
    for (let i = 0; i < 5; i++) runtime.sendToRoom('lobby', `m${i}`);
    runtime.sendToRoom('empty-room', 'nobody');
    for (const client of clients) await client.received(5);
    clients[0]!.ws.close(4100, 'bye');
    await eventually(() => runtime.health().connections.current === 2, 'the close');

    const snapshot = runtime.metrics.snapshot();
    expect(snapshot.connections).toMatchObject({ current: 2, accepted: 3 });
    expect(snapshot.rooms).toBe(1);
    expect(snapshot.broadcasts.count).toBe(6);
    expect(snapshot.broadcasts.deliveries).toBe(15);
    // Only broadcasts that reached someone are timed.
    expect(snapshot.broadcasts.fanoutSeconds.count).toBe(5);
    // Cumulative buckets: never fewer below a bound than below a smaller one, and none holds more than were timed.
    const cumulative = snapshot.broadcasts.fanoutSeconds.buckets.map((bucket) => bucket.count);
    expect(cumulative).toEqual([...cumulative].sort((a, b) => a - b));
    expect(cumulative.every((count) => count <= 5)).toBe(true);
    expect(snapshot.closedByCode).toEqual({ 4100: 1 });
    expect(snapshot.closedByCause).toEqual({ client: 1 });
    expect(snapshot.outbox).toMatchObject({ depthMax: 0, bytesQueued: 0 });
    expect(snapshot.crossNode.published).toBe(6);
  });

  it('exposes Prometheus text produced by prom-client, and registers into your registry', async () => {
    const { runtime, url } = await startRuntime();
    await connect(url);
    runtime.sendToAll('hello');
    await eventually(() => runtime.metrics.snapshot().broadcasts.fanoutSeconds.count === 1, 'the flush');
    const text = await runtime.metrics.prometheus();
    expect(text).toContain('# TYPE berth_connections gauge');
    expect(text).toMatch(/^berth_connections 1$/m);
    expect(text).toContain('# TYPE berth_broadcast_fanout_seconds histogram');
    expect(text).toMatch(/^berth_broadcast_fanout_seconds_count 1$/m);
    expect(text).toMatch(/^berth_deliveries_total 1$/m);
    expect(text).toContain('berth_outbox_connections{depth_le="0"} 1');

    const mine = new Registry();
    runtime.metrics.register(mine);
    expect(await mine.metrics()).toMatch(/^berth_connections_accepted_total 1$/m);
  });

  it('reports outbox depth and turns degraded past the threshold, ok again once drained', async () => {
    const { runtime, url } = await startRuntime({ health: { maxOutboxDepth: 10 }, outbox: { overflow: 'drop-oldest' } });
    const opened = new Promise<Connection>((resolve) => runtime.on('connection', resolve));
    const client = await connect(url);
    const connection = await opened;
    // The client stops reading; the kernel and socket buffers fill, then the outbox.
    (client.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();
    const chunk = 'x'.repeat(64 * 1024);
    for (let turn = 0; turn < 200 && connection.outbox.depth <= 10; turn++) {
      for (let i = 0; i < 10; i++) connection.send(chunk);
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(connection.outbox.depth).toBeGreaterThan(10);
    const degraded = runtime.health();
    expect(degraded.status).toBe('degraded');
    expect(degraded.reasons.join()).toMatch(/outbox holds \d+ frames/);
    expect(degraded.outbox.depthMax).toBe(connection.outbox.depth);
    expect(runtime.metrics.snapshot().outbox.depth.find((bucket) => bucket.le === 10)!.connections).toBe(0);

    (client.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    await eventually(() => connection.outbox.depth === 0, 'the outbox to drain', 15_000);
    expect(runtime.health().status).toBe('ok');
  });

  it('turns degraded when the event loop stalls', async () => {
    const { runtime } = await startRuntime({ health: { maxEventLoopLagMs: 50 } });
    runtime.health(); // a fresh window, measuring from the monitor's next tick
    await lagMonitorTick();
    const until = performance.now() + 300;
    while (performance.now() < until) {
      // A handler hogging the loop, as a slow synchronous one would.
    }
    // The tick after the stall measures it.
    await lagMonitorTick();
    const health = runtime.health();
    expect(health.status).toBe('degraded');
    expect(health.reasons.join()).toMatch(/event-loop delay/);
  });
});
