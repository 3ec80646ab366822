/** The test-process side of cluster tests: forks `node.ts` processes and talks to them. */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, expect } from 'vitest';
import type { Presence } from '../../src/index.js';
import { connect, type TestClient } from '../helpers/client.js';
import type { NodeHello, NodeReply, NodeRequest } from './node.js';

const NODE = fileURLToPath(new URL('./node.ts', import.meta.url));

type RequestBody = NodeRequest extends infer R ? (R extends NodeRequest ? Omit<R, 'id'> : never) : never;

export interface ClusterNode {
  readonly nodeId: string;
  readonly url: string;
  readonly process: ChildProcess;
  request<T = unknown>(body: RequestBody): Promise<T>;
  presence<T = unknown>(method: keyof Presence, name?: string): Promise<T>;
  /** SIGKILL: no cleanup of any kind. */
  kill(): Promise<void>;
}

const children = new Set<ChildProcess>();

afterEach(() => {
  for (const child of children) child.kill('SIGKILL');
  children.clear();
});

/** How a node is configured (node.ts reads it from its environment). */
export interface NodeEnv {
  /** One of the three: the adapter the node runs on. */
  REDIS_URL?: string;
  REDIS_CLUSTER?: string;
  NATS_URL?: string;
  BERTH_PREFIX: string;
  NODE_TIMEOUT_MS?: string;
  UNSUBSCRIBE_LINGER_MS?: string;
}

export async function startNode(env: NodeEnv): Promise<ClusterNode> {
  const child = fork(NODE, [], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.add(child);
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  let sequence = 0;
  const hello = await new Promise<NodeHello['ready']>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`cluster node exited with ${code} before it was ready`)));
    child.on('message', (message: NodeHello | NodeReply) => {
      if ('ready' in message) return resolve(message.ready);
      const waiter = pending.get(message.id);
      pending.delete(message.id);
      if (message.error !== undefined) waiter?.reject(new Error(message.error));
      else waiter?.resolve(message.result);
    });
  });
  child.on('exit', () => {
    for (const waiter of pending.values()) waiter.reject(new Error('cluster node exited'));
    pending.clear();
  });
  const request = <T>(body: RequestBody) =>
    new Promise<T>((resolve, reject) => {
      const id = ++sequence;
      pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      child.send({ ...body, id });
    });
  return {
    nodeId: hello.nodeId,
    url: `ws://127.0.0.1:${hello.port}/`,
    process: child,
    request,
    presence: (method, name) => request({ op: 'presence', method, ...(name !== undefined && { name }) }),
    kill: async () => {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
      children.delete(child);
    },
  };
}

/** How many broadcasts from other nodes a node has received (its crossNode count). */
export async function received(node: ClusterNode): Promise<number> {
  return (await node.request<{ received: number }>({ op: 'crossNode' })).received;
}

let clusters = 0;

/** `count` nodes of one cluster, on a prefix of their own (`<name><n>`), so that no other test's nodes share it. */
export async function startNodes(
  count: number,
  name: string,
  env: Omit<NodeEnv, 'BERTH_PREFIX'>,
): Promise<{ nodes: ClusterNode[]; prefix: string }> {
  const prefix = `${name}${++clusters}`;
  const nodes = await Promise.all(Array.from({ length: count }, () => startNode({ ...env, BERTH_PREFIX: prefix })));
  return { nodes, prefix };
}

/** Two nodes of one cluster, and their prefix. */
export async function startPair(name: string, env: Omit<NodeEnv, 'BERTH_PREFIX'>): Promise<[ClusterNode, ClusterNode, string]> {
  const { nodes, prefix } = await startNodes(2, name, env);
  return [nodes[0]!, nodes[1]!, prefix];
}

/** A client of a node, and its connection's id (the node's first message). */
export interface Member {
  readonly client: TestClient;
  readonly id: string;
}

export async function member(node: ClusterNode): Promise<Member> {
  const client = await connect(node.url);
  const hello = await client.next();
  return { client, id: hello.slice('id '.length) };
}

/** A request a member sends in node.ts's protocol: join or leave a room, or bind a user. */
export interface MemberRequest {
  join?: string;
  leave?: string;
  user?: string;
}

/** Sends a protocol request and waits for its acknowledgement, which the node sends once the join (leave, binding) resolved. */
export async function ask(client: TestClient, request: MemberRequest): Promise<void> {
  const text = JSON.stringify(request);
  client.ws.send(text);
  expect(await client.next()).toBe(`ok ${text}`);
}
