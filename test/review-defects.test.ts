/**
 * Defects a review found, each pinned by a test that failed before its fix.
 */
import { describe, expect, it } from 'vitest';
import { SimulatedClock } from 'xstate';
import { createMemoryAdapter, createMemoryBus, type Runtime } from '../src/index.js';
import { runScenario } from '../src/testing/index.js';
import { connect, eventually } from './helpers/client.js';
import { halfSentUpgrade, RawWebSocket } from './helpers/raw.js';
import { lagMonitorTick, nextConnection, startRuntime } from './helpers/runtime.js';

function blockEventLoop(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // busy: the lag monitor records this turn's delay
  }
}

async function gauge(runtime: Runtime, name: string): Promise<number> {
  const text = await runtime.metrics.prometheus();
  const line = text.split('\n').find((row) => row.startsWith(`${name} `));
  if (line === undefined) throw new Error(`no ${name} in the scrape`);
  return Number(line.split(' ')[1]);
}

describe('event-loop lag: every reader sees its own window', () => {
  it('a health poll does not empty the window of the scrape or of the snapshot', async () => {
    const { runtime } = await startRuntime();
    // Each reader has a monitor of its own; none has been read, so a tick before the stall and one after
    // give each window a measure of it.
    await lagMonitorTick();
    blockEventLoop(50);
    await lagMonitorTick();
    expect(runtime.health().eventLoopLagMs).toBeGreaterThan(0);
    // Health's own read emptied its window, and only its own: the snapshot's and the scrape's still hold what they measured.
    expect(runtime.health().eventLoopLagMs).toBe(0);
    expect(runtime.metrics.snapshot().eventLoopLagMs).toBeGreaterThan(0);
    expect(runtime.metrics.snapshot().eventLoopLagMs).toBe(0);
    expect(await gauge(runtime, 'berth_event_loop_lag_seconds')).toBeGreaterThan(0);
    expect(await gauge(runtime, 'berth_event_loop_lag_seconds')).toBe(0);
  });
});

describe('berth_broadcasts_total counts what this node sent', () => {
  it('broadcasts received from another node are not counted as sent here', async () => {
    const bus = createMemoryBus();
    const a = await startRuntime({ adapter: createMemoryAdapter(bus) });
    const b = await startRuntime({ adapter: createMemoryAdapter(bus) });
    const opened = nextConnection(b.runtime);
    const client = await connect(b.url);
    await (await opened).join('lobby');
    a.runtime.sendToRoom('lobby', 'from a');
    a.runtime.sendToRoom('lobby', 'again from a');
    await client.received(2);
    expect(await gauge(a.runtime, 'berth_broadcasts_total')).toBe(2);
    expect(await gauge(b.runtime, 'berth_broadcasts_total')).toBe(0);
    expect(b.runtime.metrics.snapshot().broadcasts.count).toBe(0);
    // What b delivered is still counted, as deliveries and as messages in from other nodes.
    expect(b.runtime.metrics.snapshot().broadcasts.deliveries).toBe(2);
    expect(b.runtime.metrics.snapshot().crossNode.received).toBe(2);
  });
});

describe('one close timeout governs: closeTimeoutMs', () => {
  it('a peer that sent its close frame but never ends its TCP side is let go after closeTimeoutMs, not ws’s 30 s', async () => {
    const { runtime, port } = await startRuntime({ closeTimeoutMs: 200, heartbeat: false });
    const opened = nextConnection(runtime);
    const raw = await RawWebSocket.open(port, '/', { allowHalfOpen: true });
    const connection = await opened;
    const closed = new Promise<{ code: number; cause: string }>((resolve) => runtime.on('close', resolve));
    raw.sendClose(4000, 'bye');
    await eventually(() => connection.state === 'closed', 'the connection to be let go', 5000);
    expect(await closed).toMatchObject({ code: 4000, cause: 'client' });
  });
});

describe('the rate limiter follows the runtime’s clock', () => {
  it('simulated time refills the bucket', async () => {
    const clock = new SimulatedClock();
    const { runtime, url } = await startRuntime({ clock, rateLimit: { messagesPerSecond: 1, burst: 1, policy: 'drop' } });
    const received: string[] = [];
    let drops = 0;
    runtime.on('message', ({ data }) => void received.push(String(data)));
    runtime.on('dropped', ({ count }) => void (drops += count));
    const client = await connect(url);
    client.ws.send('one');
    client.ws.send('two');
    await eventually(() => received.length + drops === 2, 'both messages handled');
    expect(received).toEqual(['one']);
    clock.increment(1000);
    client.ws.send('three');
    await eventually(() => received.length + drops === 3, 'the third message handled');
    expect(received).toEqual(['one', 'three']);
  });
});

describe('the scenario runner never skips a step it does not know', () => {
  it('an unknown step fails with its path and name', async () => {
    const app = (options: Record<string, unknown>) => import('../src/index.js').then(({ createRuntime }) => createRuntime({ ...options }));
    const scenario = { name: 'typo', steps: [{ connect: 'ada' }, { sned: 'ada', text: 'hi' }] } as never;
    await expect(runScenario(scenario, { app })).rejects.toThrow(/steps\[1\].*sned/);
  });
});

describe('health().outbox.bytesQueued is the bytes held, each shared frame once', () => {
  it('a broadcast queued to 50 outboxes counts its bytes once; the per-recipient sum has its own name', async () => {
    const { runtime, url } = await startRuntime();
    runtime.on('connection', (connection) => void connection.join('room'));
    const clients = await Promise.all(Array.from({ length: 50 }, () => connect(url)));
    await eventually(() => runtime.snapshot().rooms.room?.length === 50, 'all in the room');
    const payload = 'x'.repeat(100_000);
    // A broadcast to a new target is written at once; the ones after it to the same room coalesce.
    runtime.sendToRoom('room', 'first');
    await Promise.all(clients.map((client) => client.received(1)));
    // In one turn: the frames wait in the outboxes until the turn's flush.
    for (let i = 0; i < 5; i++) runtime.sendToRoom('room', payload);
    const { outbox } = runtime.health();
    // A payload of 64 KiB or more takes a 10-byte header.
    const frameBytes = 100_000 + 10;
    expect(outbox.bytesQueued).toBe(5 * frameBytes);
    expect(outbox.bytesReferenced).toBe(50 * 5 * frameBytes);
    expect(await gauge(runtime, 'berth_outbox_bytes')).toBe(5 * frameBytes);
    expect(await gauge(runtime, 'berth_outbox_bytes_referenced')).toBe(50 * 5 * frameBytes);
    await Promise.all(clients.map((client) => client.received(6)));
    expect(runtime.health().outbox).toMatchObject({ bytesQueued: 0, bytesReferenced: 0 });
  });
});

describe('a connection ws terminates itself is attributed', () => {
  it('a peer flooding pings without reading the pongs closes as socket-error, with an error event', async () => {
    const { runtime, port } = await startRuntime({ heartbeat: false });
    const opened = nextConnection(runtime);
    const raw = await RawWebSocket.open(port);
    const connection = await opened;
    const errors: string[] = [];
    runtime.on('error', ({ error }) => void errors.push(`${error.code} ${(error.cause as { code?: string } | undefined)?.code}`));
    const closed = new Promise<{ code: number; cause: string }>((resolve) => runtime.on('close', resolve));
    raw.pause();
    const ping = Buffer.alloc(125, 1);
    // Bounded: ws gives up once 60 pongs wait behind full kernel buffers.
    for (let sent = 0; sent < 400_000 && connection.state === 'open'; sent++) {
      raw.sendFrame(0x9, ping);
      if (!raw.writable) await raw.drained();
    }
    expect(await closed).toMatchObject({ code: 1006, cause: 'socket-error' });
    expect(errors).toContain('ERR_SOCKET ERR_PONG_FLOOD');
    raw.destroy();
  }, 60_000);
});

describe('the server berth owns times out half-sent upgrades', () => {
  it('an upgrade whose headers arrived is not cut by the timeout while authenticate takes longer', async () => {
    let port = 0;
    const { runtime, url, ...started } = await startRuntime({
      handshakeTimeoutMs: 200,
      // Longer than the timeout: done once an upgrade begun after this one has been cut by it.
      authenticate: async () => {
        expect(await halfSentUpgrade(port)).toMatch(/^HTTP\/1\.1 408/);
        return { user: 'slow' };
      },
    });
    port = started.port;
    const opened = nextConnection(runtime);
    const client = await connect(url);
    expect((await opened).user).toBe('slow');
    runtime.sendToAll('through');
    expect(await client.next()).toBe('through');
  });

  it('an upgrade request whose headers never end is answered 408 after handshakeTimeoutMs', async () => {
    const { port } = await startRuntime({ handshakeTimeoutMs: 300 });
    expect(await halfSentUpgrade(port)).toMatch(/^HTTP\/1\.1 408/);
  });
});

describe('a connection ending for its own reason reports only that reason', () => {
  it('a heartbeat timeout with writes in flight is not also a failed send', async () => {
    const { runtime, port } = await startRuntime({ heartbeat: { intervalMs: 100, timeoutMs: 100 } });
    const opened = nextConnection(runtime);
    // A raw peer never answers pings; paused, it reads nothing either.
    const raw = await RawWebSocket.open(port);
    const connection = await opened;
    raw.pause();
    const errors: string[] = [];
    runtime.on('error', ({ error }) => void errors.push(error.code));
    const closed = new Promise<{ cause: string }>((resolve) => runtime.on('close', resolve));
    const chunk = 'x'.repeat(10_000);
    for (let i = 0; i < 500; i++) connection.send(chunk);
    expect((await closed).cause).toBe('heartbeat');
    expect(errors).toEqual([]);
    raw.destroy();
  });
});

describe('a connection actor that fails leaves presence', () => {
  it('the adapter hears of the disconnect', async () => {
    const changes: Array<{ kind: string; id: string }> = [];
    const adapter = { ...createMemoryAdapter(), track: (change: { kind: string; id: string }) => void changes.push(change) };
    const { runtime, url } = await startRuntime({ adapter });
    const opened = nextConnection(runtime);
    await connect(url);
    const connection = await opened;
    await connection.join('lobby');
    const errors: string[] = [];
    runtime.on('error', ({ error }) => void errors.push(error.code));
    // A bug in berth, simulated: the actor's closeSocket action throws, and the actor fails.
    (connection as unknown as { closeSocket(): void }).closeSocket = () => {
      throw new Error('boom');
    };
    connection.close();
    await eventually(() => connection.state === 'closed', 'the failed connection to close');
    expect(errors).toContain('ERR_ACTOR_FAILED');
    expect(changes.filter((change) => change.id === connection.id).map((change) => change.kind)).toEqual(['connect', 'join', 'disconnect']);
    expect(runtime.snapshot().connections).toEqual({});
  });
});
