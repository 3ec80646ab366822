/**
 * The test-process side of the durable cluster tests: three node processes
 * (node.ts) on one Redis, `berth/client` clients each behind a TCP proxy of its
 * own (the "load balancer" the test moves), that join their rooms once by
 * request and never again, and a publisher per node.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach } from 'vitest';
import WebSocket from 'ws';
import { createClient, type BerthClient, type WebSocketClass } from '../../../src/client.js';
import { eventually } from '../../../src/testing/wait.js';
import { startTcpProxy, type TcpProxy } from '../../helpers/tcp-proxy.js';
import { check, complete, summary, type ClientLog, type Owed, type Seen, type Verdict } from './ledger.js';
import type { DurableHello, DurableReply, DurableRequest, Sent } from './node.js';

const NODE = fileURLToPath(new URL('./node.ts', import.meta.url));

type Body = DurableRequest extends infer R ? (R extends DurableRequest ? Omit<R, 'id'> : never) : never;

export interface DurableNode {
  readonly name: string;
  readonly port: number;
  readonly process: ChildProcess;
  request<T = unknown>(body: Body): Promise<T>;
  /** SIGKILL: nothing of it runs after. */
  kill(): Promise<void>;
  readonly exited: Promise<void>;
}

const children = new Set<ChildProcess>();
afterEach(() => {
  for (const child of children) child.kill('SIGKILL');
  children.clear();
});

/** The adapter a node runs on, and how long its sessions are kept. */
export interface DurableEnv {
  REDIS_URL?: string;
  REDIS_CLUSTER?: string;
  /** '1' (the default here): durable streams. '0' runs the same test on berth without them, where it must fail. */
  BERTH_DURABLE?: string;
  RECOVERY_WINDOW_MS?: string;
}

export async function startDurableNode(name: string, prefix: string, env: DurableEnv): Promise<DurableNode> {
  const child = fork(NODE, [], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, BERTH_DURABLE: process.env.BERTH_DURABLE ?? '1', ...env, BERTH_PREFIX: prefix, NODE_NAME: name },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  let sequence = 0;
  const hello = await new Promise<DurableHello['ready']>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code} before it was ready`)));
    child.on('message', (message: DurableHello | DurableReply) => {
      if ('ready' in message) return resolve(message.ready);
      const waiter = pending.get(message.id);
      pending.delete(message.id);
      if (message.error !== undefined) waiter?.reject(new Error(`${name}: ${message.error}`));
      else waiter?.resolve(message.result);
    });
  });
  child.on('exit', () => {
    for (const waiter of pending.values()) waiter.reject(new Error(`${name} exited`));
    pending.clear();
  });
  return {
    name,
    port: hello.port,
    process: child,
    exited,
    request: <T>(body: Body) =>
      new Promise<T>((resolve, reject) => {
        const id = ++sequence;
        pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
        child.send({ ...body, id });
      }),
    kill: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** A client of the test, its proxy, and what it saw. */
export interface Member {
  readonly log: ClientLog;
  readonly client: BerthClient;
  readonly proxy: TcpProxy;
  /** How each of its connections closed, as its socket saw it (berth/client's own `close` event is only for good). */
  readonly closes: Array<{ code: number; reason: string }>;
  /** The node its proxy sends it to now. */
  node: DurableNode;
}

/** A `berth/client` client through a proxy of its own to `node`, open and in `rooms` (joined once, by request). */
export async function member(name: string, node: DurableNode, rooms: readonly string[]): Promise<Member> {
  const proxy = await startTcpProxy(node.port);
  const seen: Seen[] = [];
  const closes: Member['closes'] = [];
  class Recorded extends WebSocket {
    constructor(url: string, protocols: string[]) {
      super(url, protocols);
      this.on('close', (code: number, reason: Buffer) => void closes.push({ code, reason: reason.toString() }));
    }
  }
  const client = createClient(proxy.url(), {
    backoff: { initialMs: 20, maxMs: 300 },
    WebSocket: Recorded as unknown as WebSocketClass,
  });
  client.on('message', ({ stream, offset, epoch, data }) => {
    if (!stream.startsWith('room:')) return;
    const text = String(data);
    const { p, q } = JSON.parse(text) as { p: string; q: number };
    seen.push({ kind: 'msg', stream, offset, epoch, p, q, data: text });
  });
  client.on('resumed', ({ recovered, reason, lost }) => void seen.push({ kind: 'resumed', recovered, reason, lost }));
  client.on('lost', ({ stream, reason }) => {
    const position = client.positions.get(stream);
    seen.push({ kind: 'lost', stream, reason, offset: position?.offset ?? -1, epoch: position?.epoch ?? '' });
  });
  await eventually(() => client.state === 'open', `${name} open`, 10_000);
  for (const room of rooms) await client.request(JSON.stringify({ join: room }));
  return { log: { name, seen }, client, proxy, closes, node };
}

/** Sends a member to another node, as a load balancer does: new connections go there, and its link now is cut. */
export function move(member: Member, to: DurableNode, how: 'fin' | 'rst' = 'fin'): void {
  member.proxy.retarget(to.port);
  member.proxy.cut(how);
  member.node = to;
}

/** Resumes each member has had, recovered or not. */
export function resumesOf(member: Member): number {
  return member.log.seen.filter((event) => event.kind === 'resumed').length;
}

/** The cluster of a test: nodes, members spread over them, all in `rooms`. */
export interface Cluster {
  /** The Redis prefix its nodes share: a node started on it later joins the cluster. */
  readonly prefix: string;
  readonly nodes: DurableNode[];
  readonly members: Member[];
  readonly rooms: readonly string[];
}

let clusters = 0;

/** `nodes` nodes on a prefix of their own, and `perNode` members of each (named `<node>.<i>`), all in `rooms`. */
export async function startCluster(
  env: DurableEnv,
  options: { nodes?: number; perNode?: number; rooms?: string[] } = {},
): Promise<Cluster> {
  const prefix = `durable${process.pid}x${++clusters}`;
  const rooms = options.rooms ?? ['a', 'b'];
  const nodes = await Promise.all(Array.from({ length: options.nodes ?? 3 }, (_, i) => startDurableNode(`n${i}`, prefix, env)));
  const members: Member[] = [];
  for (const node of nodes) for (let i = 0; i < (options.perNode ?? 3); i++) members.push(await member(`${node.name}.${i}`, node, rooms));
  return { prefix, nodes, members, rooms };
}

/** Starts every node's publisher at `rate` messages a second over the rooms. */
export async function publish(cluster: Cluster, rate: number, nodes = cluster.nodes): Promise<void> {
  await Promise.all(nodes.map((node) => node.request({ op: 'publish', rooms: [...cluster.rooms], rate })));
}

/** Stops the publishers of these (live) nodes; what each sent. */
export async function stopPublishers(nodes: readonly DurableNode[]): Promise<Owed> {
  const owed: Owed = {};
  for (const node of nodes) owed[node.name] = (await node.request<{ sent: Sent }>({ op: 'stop' })).sent;
  return owed;
}

/** What a dead publisher is owed for: up to the highest seq any client got of it, per room (it reached Redis). */
export function owedOfDead(cluster: Cluster, publisher: string): Record<string, number> {
  const owed: Record<string, number> = Object.fromEntries(cluster.rooms.map((room) => [room, 0]));
  for (const { log } of cluster.members)
    for (const event of log.seen)
      if (event.kind === 'msg' && event.p === publisher) {
        const room = event.stream.slice('room:'.length);
        owed[room] = Math.max(owed[room] ?? 0, event.q + 1);
      }
  return owed;
}

/** Waits (up to `timeoutMs`) until every member has what it is owed, then checks every record; logs the summary. */
export async function verdict(
  cluster: Cluster,
  owed: Owed,
  label: string,
  options: { unpublished?: boolean; timeoutMs?: number } = {},
): Promise<Verdict> {
  const timeoutMs = options.timeoutMs ?? 15_000;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !cluster.members.every((m) => complete(m.log, owed))) await sleep(100);
  const result = check(
    cluster.members.map((m) => m.log),
    owed,
    options,
  );
  console.log(`[${label}] owed ${JSON.stringify(owed)}; ${summary(result)}`);
  if (result.problems.length > 0) {
    console.log(`[${label}] ${result.problems.slice(0, 25).join('\n  ')}`);
    // What the first client with a problem saw of that stream, around it.
    const [, name, stream] = /^([^:\s]+): (\S+)/.exec(result.problems[0]!) ?? [];
    const log = cluster.members.find((m) => m.log.name === name)?.log;
    if (log !== undefined) console.log(`[${label}] ${name} saw of ${stream}, in order:\n${excerpt(log, stream!)}`);
  }
  return result;
}

/** A client's record of one stream (and every resume), a line each, around its first repeat or reversal (the whole of it if none). */
function excerpt(log: ClientLog, stream: string): string {
  const events = log.seen.filter((event) => event.kind === 'resumed' || event.stream === stream);
  const at = events.findIndex((event, i) => {
    const before = events.slice(0, i).findLast((e) => e.kind === 'msg');
    return event.kind === 'msg' && before?.kind === 'msg' && before.epoch === event.epoch && event.offset <= before.offset;
  });
  const shown = at < 0 ? events : events.slice(Math.max(0, at - 12), at + 8);
  return shown
    .map((event) =>
      event.kind === 'msg'
        ? `    #${event.offset} ${event.epoch} ${event.p}/${event.q}`
        : event.kind === 'lost'
          ? `    lost (${event.reason})`
          : `    resumed ${event.recovered ? 'recovered' : `not recovered (${event.reason})`}`,
    )
    .join('\n');
}

/** Closes every member for good. */
export function closeMembers(cluster: Cluster): void {
  for (const { client } of cluster.members) client.close();
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
