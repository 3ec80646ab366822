/**
 * The contract every adapter keeps, as one suite that any adapter runs
 * against itself (as Phoenix.PubSub ships its shared adapter tests). It takes
 * the test framework's `describe`, `it` and `expect`, and uses nothing of
 * berth but its public API, so a third-party adapter runs exactly what
 * berth's own adapters run.
 */
import WebSocket from 'ws';
import { createRuntime } from '../index.js';
import { eventually, settles } from './wait.js';
import type { Adapter, AdapterNode, BroadcastMessage, Connection, Presence, PresenceChange, Runtime } from '../index.js';

/** What the suite needs of an `expect`: vitest's and jest's fit. */
export interface ConformanceExpect {
  (actual: unknown): {
    toEqual(expected: unknown): void;
    toBe(expected: unknown): void;
    toThrow(expected?: unknown): void;
  };
}

/** The test framework: pass your runner's own `describe`, `it` and `expect`. */
export interface ConformanceFramework {
  describe(name: string, body: () => void): void;
  it(name: string, body: () => Promise<void>, timeoutMs?: number): void;
  expect: ConformanceExpect;
}

/** The adapter under test. */
export interface ConformanceSuite {
  /** Shown in the suite's name. */
  readonly name: string;
  /**
   * Called once per test: returns a factory of adapters that share one medium
   * (one bus, one Redis prefix …), fresh for each test so that tests never
   * see each other's nodes. Each adapter the factory makes is one node.
   */
  cluster(): () => Adapter | Promise<Adapter>;
  /**
   * Optional, for an adapter that subscribes per room: like `cluster()`, adapters on a medium that
   * refuses them the subscription to `room` while their link stays up (an ACL that denies its channel,
   * say), and allows the room `lobby` and everything else the adapter needs. With it, the suite checks
   * that the `track` of a join that needed the refused subscription rejects.
   */
  readonly refusing?: { readonly room: string; cluster(): () => Adapter | Promise<Adapter> };
  /** Per test. [default 20000] */
  readonly timeoutMs?: number;
}

interface TestNode {
  readonly nodeId: string;
  readonly adapter: Adapter;
  readonly received: BroadcastMessage[];
  readonly failures: unknown[];
  /** Every `linkChanged` the adapter told, once attached. */
  readonly links: boolean[];
  /** What the adapter said never arrived (`AdapterNode.lost`): nothing, on a healthy medium. */
  readonly losses: Array<{ target: unknown; count: number; origin: string }>;
  /** Tells the adapter; settles once the adapter says the change took effect (a subscription made, say). */
  track(change: PresenceChange): Promise<void>;
}

/**
 * Runs the conformance suite for an adapter: broadcasts reach every other
 * node that hosts a member of their target (as `track` told the adapter; an
 * adapter may spare the others) exactly once and never their own, every
 * field and one publisher's order to each target survive, presence answers for the whole cluster and a node reads its
 * own writes, a closed node leaves presence at once, and real runtimes on the
 * adapter deliver across nodes.
 */
export function adapterConformance(framework: ConformanceFramework, suite: ConformanceSuite): void {
  const { describe, it, expect } = framework;
  const timeout = suite.timeoutMs ?? 20_000;
  let sequence = 0;

  /** Attaches `count` nodes to one fresh medium (of `cluster`), runs `body`, and closes them whatever happens. */
  async function withNodes(count: number, body: (nodes: TestNode[]) => Promise<void>, cluster = suite.cluster): Promise<void> {
    const create = cluster();
    const nodes: TestNode[] = [];
    try {
      for (let i = 0; i < count; i++) {
        const adapter = await create();
        const local = new Map<string, { user: string | undefined; rooms: Set<string> }>();
        const node: TestNode = {
          nodeId: `n${++sequence}x${i}`,
          adapter,
          received: [],
          failures: [],
          links: [],
          losses: [],
          track: async (change) => {
            applyChange(local, change);
            await adapter.track?.(change);
          },
        };
        const port: AdapterNode = {
          nodeId: node.nodeId,
          presence: presenceOf(node.nodeId, local),
          deliver: (message) => node.received.push(message),
          dropped: () => {},
          lost: (target, count, origin) => node.losses.push({ target, count, origin }),
          linkChanged: (up) => node.links.push(up),
          failed: (error) => node.failures.push(error),
        };
        await adapter.attach(port);
        nodes.push(node);
      }
      await body(nodes);
    } finally {
      await Promise.all(nodes.map((node) => node.adapter.close()));
    }
  }

  describe(`adapter conformance: ${suite.name}`, () => {
    it(
      'carries a broadcast to every other node with a member of its room once, never back to its own',
      () =>
        withNodes(3, async ([a, b, c]) => {
          for (const [node, id] of [
            [b!, 'b-1'],
            [c!, 'c-1'],
          ] as const) {
            await node.track({ kind: 'connect', id, user: undefined });
            await node.track({ kind: 'join', id, room: 'lobby' });
          }
          const message: BroadcastMessage = { target: { kind: 'room', room: 'lobby' }, except: undefined, data: 'hello', binary: false };
          await a!.adapter.publish(message);
          await eventually(() => b!.received.length === 1 && c!.received.length === 1, 'delivery to b and c');
          // A marker after it: once it arrives, nothing more of the first is on its way.
          const marker: BroadcastMessage = { target: { kind: 'all' }, except: undefined, data: 'marker', binary: false };
          await b!.adapter.publish(marker);
          await eventually(() => a!.received.length === 1 && c!.received.length === 2, 'the marker');
          expect(a!.received.map(seen)).toEqual([seen(marker)]);
          expect(b!.received.map(seen)).toEqual([seen(message)]);
          expect(c!.received.map(seen)).toEqual([seen(message), seen(marker)]);
          expect([a, b, c].flatMap((node) => node!.failures)).toEqual([]);
          expect([a, b, c].flatMap((node) => node!.losses)).toEqual([]);
        }),
      timeout,
    );

    it(
      'keeps every field: targets, except, text (UTF-8) and binary, and the order of one publisher to one target',
      () =>
        withNodes(2, async ([a, b]) => {
          const sent: BroadcastMessage[] = [
            { target: { kind: 'room', room: 'salle à manger 🍽' }, except: 'x-1', data: 'héllo wörld 👋', binary: false },
            { target: { kind: 'user', user: 'ada:lovelace' }, except: undefined, data: new Uint8Array([0, 1, 2, 255]), binary: true },
            { target: { kind: 'all' }, except: undefined, data: new Uint8Array([104, 105]), binary: false },
            { target: { kind: 'all' }, except: undefined, data: '', binary: false },
          ];
          for (let i = 0; i < 200; i++) sent.push({ target: { kind: 'room', room: 'r' }, except: undefined, data: `#${i}`, binary: false });
          // b hosts a member of each target.
          await b!.track({ kind: 'connect', id: 'b-1', user: 'ada:lovelace' });
          await b!.track({ kind: 'join', id: 'b-1', room: 'salle à manger 🍽' });
          await b!.track({ kind: 'join', id: 'b-1', room: 'r' });
          for (const message of sent) await a!.adapter.publish(message);
          await eventually(() => b!.received.length === sent.length, `${sent.length} messages`);
          // In order per target: a sharded medium carries each target on its own shard, so targets may interleave.
          const byTarget = (messages: BroadcastMessage[]) => {
            const sequences = new Map<string, unknown[]>();
            for (const message of messages) {
              const target = JSON.stringify(message.target);
              sequences.set(target, [...(sequences.get(target) ?? []), seen(message)]);
            }
            return Object.fromEntries([...sequences].sort(([x], [y]) => (x < y ? -1 : 1)));
          };
          expect(byTarget(b!.received)).toEqual(byTarget(sent));
          expect(b!.losses).toEqual([]);
        }),
      timeout,
    );

    it(
      'answers presence for the whole cluster',
      () =>
        withNodes(2, async ([a, b]) => {
          void a!.track({ kind: 'connect', id: 'a-1', user: 'ada' });
          void a!.track({ kind: 'connect', id: 'a-2', user: undefined });
          void b!.track({ kind: 'connect', id: 'b-1', user: undefined });
          void b!.track({ kind: 'bind', id: 'b-1', user: 'ada' });
          void b!.track({ kind: 'connect', id: 'b-2', user: 'bob' });
          void a!.track({ kind: 'join', id: 'a-1', room: 'lobby' });
          void a!.track({ kind: 'join', id: 'a-2', room: 'lobby' });
          void b!.track({ kind: 'join', id: 'b-1', room: 'lobby' });
          void b!.track({ kind: 'join', id: 'b-2', room: 'games' });
          void b!.track({ kind: 'join', id: 'b-2', room: 'games' }); // twice: still one membership
          for (const reader of [a!, b!]) {
            const presence = presenceOfAdapter(reader.adapter);
            await settles(async () => {
              expect(await presence.nodes()).toEqual([a!.nodeId, b!.nodeId].sort());
              expect(await presence.roomSize('lobby')).toBe(3);
              expect(await presence.roomMembers('lobby')).toEqual(['a-1', 'a-2', 'b-1']);
              expect(await presence.roomUsers('lobby')).toEqual(['ada', 'ada']);
              expect(await presence.roomUsers('games')).toEqual(['bob']);
              expect(await presence.rooms()).toEqual({ games: 1, lobby: 3 });
              expect(await presence.userConnections('ada')).toEqual(['a-1', 'b-1']);
              expect(await presence.onlineUsers()).toEqual(['ada', 'bob']);
              expect(await presence.roomSize('nowhere')).toBe(0);
              expect(await presence.roomMembers('nowhere')).toEqual([]);
              expect(await presence.userConnections('nobody')).toEqual([]);
            });
          }

          void a!.track({ kind: 'leave', id: 'a-2', room: 'lobby' });
          void a!.track({ kind: 'disconnect', id: 'a-1' });
          void b!.track({ kind: 'bind', id: 'b-2', user: undefined });
          void b!.track({ kind: 'bind', id: 'b-1', user: 'cy' });
          await settles(async () => {
            const presence = presenceOfAdapter(a!.adapter);
            expect(await presence.roomMembers('lobby')).toEqual(['b-1']);
            expect(await presence.roomUsers('lobby')).toEqual(['cy']);
            expect(await presence.roomUsers('games')).toEqual([]);
            expect(await presence.rooms()).toEqual({ games: 1, lobby: 1 });
            expect(await presence.userConnections('ada')).toEqual([]);
            expect(await presence.onlineUsers()).toEqual(['cy']);
          });
        }),
      timeout,
    );

    it(
      'a node reads its own writes at once',
      () =>
        withNodes(1, async ([a]) => {
          const presence = presenceOfAdapter(a!.adapter);
          void a!.track({ kind: 'connect', id: 'a-1', user: 'ada' });
          void a!.track({ kind: 'join', id: 'a-1', room: 'lobby' });
          expect(await presence.roomMembers('lobby')).toEqual(['a-1']);
          void a!.track({ kind: 'disconnect', id: 'a-1' });
          expect(await presence.roomSize('lobby')).toBe(0);
          expect(await presence.onlineUsers()).toEqual([]);
        }),
      timeout,
    );

    it(
      'a node that closes leaves presence at once and receives nothing more',
      () =>
        withNodes(2, async ([a, b]) => {
          const presence = presenceOfAdapter(a!.adapter);
          void b!.track({ kind: 'connect', id: 'b-1', user: 'bob' });
          void b!.track({ kind: 'join', id: 'b-1', room: 'lobby' });
          await settles(async () => expect(await presence.roomSize('lobby')).toBe(1));
          await b!.adapter.close();
          // Straight after close resolves, not eventually.
          expect(await presence.nodes()).toEqual([a!.nodeId]);
          expect(await presence.roomSize('lobby')).toBe(0);
          expect(await presence.onlineUsers()).toEqual([]);
          await a!.adapter.publish({ target: { kind: 'all' }, except: undefined, data: 'after', binary: false });
          await new Promise((resolve) => setTimeout(resolve, 100));
          expect(b!.received).toEqual([]);
        }),
      timeout,
    );

    const { refusing } = suite;
    if (refusing !== undefined) {
      it(
        'the track of a join whose subscription the medium refuses rejects, its link up; the next join asks again; other rooms carry on',
        () =>
          withNodes(
            2,
            async ([a, b]) => {
              const rejects = (tracked: Promise<void>) =>
                tracked.then(
                  () => false,
                  (error: unknown) => error instanceof Error,
                );
              await a!.track({ kind: 'connect', id: 'a-1', user: undefined });
              await a!.track({ kind: 'join', id: 'a-1', room: 'lobby' });
              expect(await rejects(a!.track({ kind: 'join', id: 'a-1', room: refusing.room }))).toBe(true);
              // Another member's join needs the same subscription: it is asked for again, and refused again.
              await a!.track({ kind: 'connect', id: 'a-2', user: undefined });
              expect(await rejects(a!.track({ kind: 'join', id: 'a-2', room: refusing.room }))).toBe(true);
              // The link stayed up, and carries the rooms it may.
              await b!.adapter.publish({ target: { kind: 'room', room: 'lobby' }, except: undefined, data: 'still here', binary: false });
              await eventually(() => a!.received.length === 1, 'the broadcast to the lobby');
              expect(a!.links).toEqual([]);
              expect([a, b].flatMap((node) => node!.failures)).toEqual([]);
            },
            refusing.cluster,
          ),
        timeout,
      );
    }

    it(
      'runtimes on it deliver across nodes and answer runtime.presence',
      async () => {
        const create = suite.cluster();
        const runtimes: Runtime[] = [];
        const clients: WebSocket[] = [];
        try {
          for (let i = 0; i < 2; i++) {
            const runtime = createRuntime({ port: 0, host: '127.0.0.1', adapter: await create() });
            runtimes.push(runtime);
            await runtime.ready;
          }
          const [first, second] = runtimes as [Runtime, Runtime];
          const opened: Connection[] = [];
          for (const runtime of runtimes) runtime.on('connection', (connection) => void opened.push(connection));
          const one = await connect(first.address()!.port, clients);
          const two = await connect(second.address()!.port, clients);
          await eventually(() => opened.length === 2, 'both connections');
          for (const connection of opened) {
            await connection.join('lobby');
            await connection.setUser('ada');
          }
          await settles(async () => expect(await first.presence.roomSize('lobby')).toBe(2));
          expect(await second.presence.userConnections('ada')).toEqual(opened.map((connection) => connection.id).sort());
          first.sendToRoom('lobby', 'to the room');
          second.sendToUser('ada', 'to ada', { except: opened[0]!.id });
          expect(await one.next()).toBe('to the room');
          // Broadcasts from different nodes have no order between them.
          expect([await two.next(), await two.next()].sort()).toEqual(['to ada', 'to the room']);
          first.sendToAll('marker');
          expect(await one.next()).toBe('marker');
          expect(await two.next()).toBe('marker');
          two.close();
          await settles(async () => expect(await first.presence.roomMembers('lobby')).toEqual([opened[0]!.id]));
          expect(() => first.presence.roomSize('')).toThrow(TypeError);
        } finally {
          for (const client of clients) client.terminate();
          await Promise.all(runtimes.map((runtime) => runtime.close({ timeoutMs: 1000 })));
        }
      },
      timeout,
    );
  });
}

function presenceOfAdapter(adapter: Adapter): Presence {
  if (adapter.presence === undefined) throw new TypeError('this adapter keeps no cluster presence (adapter.presence is undefined)');
  return adapter.presence;
}

const hex = (data: string | Uint8Array) => Buffer.from(typeof data === 'string' ? Buffer.from(data) : data).toString('hex');

/** A message as compared: the payload as bytes, whichever form the adapter hands over. */
function seen(message: BroadcastMessage) {
  return { target: message.target, except: message.except, data: hex(message.data), binary: message.binary };
}

type LocalEntries = Map<string, { user: string | undefined; rooms: Set<string> }>;

function applyChange(local: LocalEntries, change: PresenceChange): void {
  const entry = local.get(change.id);
  switch (change.kind) {
    case 'connect':
      local.set(change.id, { user: change.user, rooms: new Set() });
      return;
    case 'disconnect':
      local.delete(change.id);
      return;
    case 'bind':
      if (entry !== undefined) entry.user = change.user;
      return;
    case 'join':
      entry?.rooms.add(change.room);
      return;
    case 'leave':
      entry?.rooms.delete(change.room);
      return;
  }
}

/** What a runtime's own registry would answer for a node, from the changes the test made. */
function presenceOf(nodeId: string, local: LocalEntries): Presence {
  const entries = () => [...local].sort(([a], [b]) => (a < b ? -1 : 1));
  const inRoom = (room: string) => entries().filter(([, entry]) => entry.rooms.has(room));
  return {
    nodes: async () => [nodeId],
    rooms: async () => {
      const sizes: Record<string, number> = {};
      for (const [, entry] of entries()) for (const room of entry.rooms) sizes[room] = (sizes[room] ?? 0) + 1;
      return Object.fromEntries(Object.entries(sizes).sort(([a], [b]) => (a < b ? -1 : 1)));
    },
    roomSize: async (room) => inRoom(room).length,
    roomMembers: async (room) => inRoom(room).map(([id]) => id),
    roomUsers: async (room) =>
      inRoom(room)
        .flatMap(([, entry]) => entry.user ?? [])
        .sort(),
    userConnections: async (user) => entries().flatMap(([id, entry]) => (entry.user === user ? [id] : [])),
    onlineUsers: async () => [...new Set(entries().flatMap(([, entry]) => entry.user ?? []))].sort(),
  };
}

/** A ws client on loopback whose text messages are taken in order with `next()`. */
function connect(port: number, clients: WebSocket[]): Promise<{ next(): Promise<string>; close(): void }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
  clients.push(ws);
  const messages: string[] = [];
  ws.on('message', (data) => void messages.push(String(data)));
  const next = async (): Promise<string> => {
    await eventually(() => messages.length > 0, 'a message');
    return messages.shift()!;
  };
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ next, close: () => ws.close() }));
    ws.once('error', reject);
  });
}
