import { afterEach, describe, expect, it } from 'vitest';
import type { Adapter, AdapterNode, BroadcastMessage, Connection, Presence, PresenceChange } from '../../src/index.js';
import { NodePresence } from '../../src/cluster/node-presence.js';
import { connect, eventually, settles } from '../helpers/client.js';
import { startRuntime } from '../helpers/runtime.js';

/**
 * The contract every adapter keeps, run against each of them (Phoenix.PubSub
 * style): `cluster()` returns a factory of adapters that share one medium,
 * fresh for each test, so tests never see each other's nodes.
 */
export interface AdapterSuite {
  readonly name: string;
  cluster(): () => Adapter;
}

interface TestNode {
  readonly nodeId: string;
  readonly adapter: Adapter;
  readonly received: BroadcastMessage[];
  readonly links: boolean[];
  readonly failures: unknown[];
  track(change: PresenceChange): void;
}

/** What a runtime's registry would answer for a node, kept here from the changes the test makes. */
function ownPresence(nodeId: string, local: NodePresence): Presence {
  const ids = (set: Set<string> | undefined) => [...(set ?? [])].sort();
  return {
    nodes: async () => [nodeId],
    rooms: async () => Object.fromEntries([...local.rooms].map(([room, members]) => [room, members.size])),
    roomSize: async (room) => local.rooms.get(room)?.size ?? 0,
    roomMembers: async (room) => ids(local.rooms.get(room)),
    roomUsers: async (room) => ids(local.rooms.get(room)).flatMap((id) => local.connections.get(id)?.user ?? []),
    userConnections: async (user) => ids(local.users.get(user)),
    onlineUsers: async () => [...local.users.keys()].sort(),
  };
}

const bytes = (data: string | Uint8Array) => Buffer.from(typeof data === 'string' ? Buffer.from(data) : data).toString('hex');
const seen = (message: BroadcastMessage) => ({
  target: message.target,
  except: message.except,
  data: bytes(message.data),
  binary: message.binary,
});

export function runAdapterSuite(suite: AdapterSuite): void {
  describe(`adapter conformance: ${suite.name}`, () => {
    const attached: Adapter[] = [];
    afterEach(async () => {
      await Promise.all(attached.splice(0).map((adapter) => adapter.close()));
    });

    let sequence = 0;
    async function nodes(count: number): Promise<TestNode[]> {
      const create = suite.cluster();
      const out: TestNode[] = [];
      for (let i = 0; i < count; i++) {
        const adapter = create();
        const local = new NodePresence();
        const node: TestNode = {
          nodeId: `n${++sequence}x${i}`,
          adapter,
          received: [],
          links: [],
          failures: [],
          track: (change) => {
            local.apply(change);
            void adapter.track?.(change);
          },
        };
        const port: AdapterNode = {
          presence: ownPresence(node.nodeId, local),
          nodeId: node.nodeId,
          deliver: (message) => node.received.push(message),
          dropped: () => {},
          linkChanged: (up) => node.links.push(up),
          failed: (error) => node.failures.push(error),
        };
        await adapter.attach(port);
        attached.push(adapter);
        out.push(node);
      }
      return out;
    }

    it('carries a broadcast to every other node once, never back to its own', async () => {
      const [a, b, c] = await nodes(3);
      const message: BroadcastMessage = { target: { kind: 'room', room: 'lobby' }, except: undefined, data: 'hello', binary: false };
      await a!.adapter.publish(message);
      await eventually(() => b!.received.length === 1 && c!.received.length === 1, 'delivery to b and c');
      // A marker after it: once it arrives, nothing more of the first is on its way.
      await b!.adapter.publish({ target: { kind: 'all' }, data: 'marker', binary: false });
      await eventually(() => a!.received.length === 1 && c!.received.length === 2, 'the marker');
      expect(a!.received.map(seen)).toEqual([{ target: { kind: 'all' }, except: undefined, data: bytes('marker'), binary: false }]);
      expect(b!.received.map(seen)).toEqual([seen(message)]);
      expect(c!.received.map(seen)).toEqual([seen(message), seen({ target: { kind: 'all' }, data: 'marker', binary: false })]);
      expect([a, b, c].flatMap((node) => node!.failures)).toEqual([]);
    });

    it('keeps every field: targets, except, text (UTF-8) and binary, and the order of one publisher', async () => {
      const [a, b] = await nodes(2);
      const sent: BroadcastMessage[] = [
        { target: { kind: 'room', room: 'salle à manger 🍽' }, except: 'x-1', data: 'héllo wörld 👋', binary: false },
        { target: { kind: 'user', user: 'ada:lovelace' }, except: undefined, data: new Uint8Array([0, 1, 2, 255]), binary: true },
        { target: { kind: 'all' }, except: undefined, data: new Uint8Array([104, 105]), binary: false },
        { target: { kind: 'all' }, except: undefined, data: '', binary: false },
      ];
      for (let i = 0; i < 200; i++) sent.push({ target: { kind: 'room', room: 'r' }, except: undefined, data: `#${i}`, binary: false });
      for (const message of sent) await a!.adapter.publish(message);
      await eventually(() => b!.received.length === sent.length, `${sent.length} messages`);
      expect(b!.received.map(seen)).toEqual(sent.map(seen));
    });

    it('answers presence for the whole cluster', async () => {
      const [a, b] = await nodes(2);
      a!.track({ kind: 'connect', id: 'a-1', user: 'ada' });
      a!.track({ kind: 'connect', id: 'a-2', user: undefined });
      b!.track({ kind: 'connect', id: 'b-1', user: undefined });
      b!.track({ kind: 'bind', id: 'b-1', user: 'ada' });
      b!.track({ kind: 'connect', id: 'b-2', user: 'bob' });
      a!.track({ kind: 'join', id: 'a-1', room: 'lobby' });
      a!.track({ kind: 'join', id: 'a-2', room: 'lobby' });
      b!.track({ kind: 'join', id: 'b-1', room: 'lobby' });
      b!.track({ kind: 'join', id: 'b-2', room: 'games' });
      b!.track({ kind: 'join', id: 'b-2', room: 'games' }); // twice: still one membership
      for (const reader of [a!, b!]) {
        const presence = reader.adapter.presence!;
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

      a!.track({ kind: 'leave', id: 'a-2', room: 'lobby' });
      a!.track({ kind: 'disconnect', id: 'a-1' });
      b!.track({ kind: 'bind', id: 'b-2', user: undefined });
      b!.track({ kind: 'bind', id: 'b-1', user: 'cy' });
      await settles(async () => {
        const presence = a!.adapter.presence!;
        expect(await presence.roomMembers('lobby')).toEqual(['b-1']);
        expect(await presence.roomUsers('lobby')).toEqual(['cy']);
        expect(await presence.roomUsers('games')).toEqual([]);
        expect(await presence.rooms()).toEqual({ games: 1, lobby: 1 });
        expect(await presence.userConnections('ada')).toEqual([]);
        expect(await presence.onlineUsers()).toEqual(['cy']);
      });
    });

    it('a node reads its own writes at once', async () => {
      const [a] = await nodes(1);
      a!.track({ kind: 'connect', id: 'a-1', user: 'ada' });
      a!.track({ kind: 'join', id: 'a-1', room: 'lobby' });
      expect(await a!.adapter.presence!.roomMembers('lobby')).toEqual(['a-1']);
      a!.track({ kind: 'disconnect', id: 'a-1' });
      expect(await a!.adapter.presence!.roomSize('lobby')).toBe(0);
      expect(await a!.adapter.presence!.onlineUsers()).toEqual([]);
    });

    it('a node that closes leaves presence at once and receives nothing more', async () => {
      const [a, b] = await nodes(2);
      b!.track({ kind: 'connect', id: 'b-1', user: 'bob' });
      b!.track({ kind: 'join', id: 'b-1', room: 'lobby' });
      await settles(async () => expect(await a!.adapter.presence!.roomSize('lobby')).toBe(1));
      await b!.adapter.close();
      // Straight after close resolves, not eventually.
      expect(await a!.adapter.presence!.nodes()).toEqual([a!.nodeId]);
      expect(await a!.adapter.presence!.roomSize('lobby')).toBe(0);
      expect(await a!.adapter.presence!.onlineUsers()).toEqual([]);
      await a!.adapter.publish({ target: { kind: 'all' }, data: 'after', binary: false });
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(b!.received).toEqual([]);
    });

    it('runtimes on it deliver across nodes and answer runtime.presence', async () => {
      const create = suite.cluster();
      const first = await startRuntime({ adapter: create() });
      const second = await startRuntime({ adapter: create() });
      const opened: Connection[] = [];
      for (const { runtime } of [first, second]) runtime.on('connection', (connection) => opened.push(connection));
      const one = await connect(first.url);
      const two = await connect(second.url);
      await eventually(() => opened.length === 2, 'both connections');
      for (const connection of opened) {
        await connection.join('lobby');
        await connection.setUser('ada');
      }
      await settles(async () => expect(await first.runtime.presence.roomSize('lobby')).toBe(2));
      expect(await second.runtime.presence.userConnections('ada')).toEqual(opened.map((c) => c.id).sort());
      first.runtime.sendToRoom('lobby', 'to the room');
      second.runtime.sendToUser('ada', 'to ada', { except: opened[0]!.id });
      expect(await one.next()).toBe('to the room');
      // Broadcasts from different nodes have no order between them.
      expect([await two.next(), await two.next()].sort()).toEqual(['to ada', 'to the room']);
      first.runtime.sendToAll('marker');
      expect(await one.next()).toBe('marker');
      expect(await two.next()).toBe('marker');
      two.ws.close();
      await settles(async () => expect(await first.runtime.presence.roomMembers('lobby')).toEqual([opened[0]!.id]));
      expect(() => first.runtime.presence.roomSize('')).toThrow(TypeError);
    });
  });
}
