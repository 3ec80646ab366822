/**
 * The test-process side of the load tests: forks `clients.ts`, talks to it
 * over IPC, kills it after each test; and a forced full garbage collection.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach } from 'vitest';
import type { Connection, Runtime } from '../../src/index.js';
import { CHILD_FLAG, type Command, type Reply, type Request, type Response } from './protocol.js';

const CLIENTS = fileURLToPath(new URL('./clients.ts', import.meta.url));
const children = new Set<ChildProcess>();

afterEach(() => {
  for (const child of children) child.kill('SIGKILL');
  children.clear();
});

/** A client process; each method sends one command and resolves with its reply (rejects if the child fails or exits). */
export interface Clients {
  open(command: Omit<Extract<Command, { type: 'open' }>, 'type'>): Promise<Extract<Reply, { type: 'opened' }>>;
  resume(concurrency?: number): Promise<Extract<Reply, { type: 'resumed' }>>;
  report(waitMs: number): Promise<Extract<Reply, { type: 'report' }>>;
  churn(command: Omit<Extract<Command, { type: 'churn' }>, 'type'>): Promise<Extract<Reply, { type: 'churned' }>>;
  close(): Promise<void>;
  readonly child: ChildProcess;
}

/** Forks a client process; it is killed after the test whatever happens. */
export function startClients(): Clients {
  const child = fork(CLIENTS, [CHILD_FLAG], { execArgv: ['--import', 'tsx'], serialization: 'advanced', stdio: 'inherit' });
  children.add(child);
  let nextId = 0;
  const waiting = new Map<number, { resolve: (reply: Reply) => void; reject: (error: Error) => void }>();
  child.on('message', ({ id, ...reply }: Response) => {
    const waiter = waiting.get(id);
    waiting.delete(id);
    if (reply.type === 'failed') waiter?.reject(new Error(`client process: ${reply.message}`));
    else waiter?.resolve(reply);
  });
  child.once('exit', (code, signal) => {
    for (const waiter of waiting.values()) waiter.reject(new Error(`client process exited (${code ?? signal})`));
    waiting.clear();
  });
  const request = (command: Command): Promise<Reply> =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      waiting.set(id, { resolve, reject });
      child.send({ ...command, id } satisfies Request);
    });
  const typed = <T extends Reply['type']>(command: Command, type: T) =>
    request(command).then((reply) => {
      if (reply.type !== type) throw new Error(`expected ${type}, got ${reply.type}`);
      return reply as Extract<Reply, { type: T }>;
    });
  return {
    child,
    open: (command) => typed({ type: 'open', ...command }, 'opened'),
    resume: (concurrency) => typed(concurrency === undefined ? { type: 'resume' } : { type: 'resume', concurrency }, 'resumed'),
    report: (waitMs) => typed({ type: 'report', waitMs }, 'report'),
    churn: (command) => typed({ type: 'churn', ...command }, 'churned'),
    close: () => typed({ type: 'close' }, 'closed').then(() => undefined),
  };
}

/** The `i` (index) and `slow` of a connection opened by `clients.ts`, from its upgrade URL. */
export function clientOf(connection: Connection<unknown>): { index: number; slow: boolean } {
  const query = new URL(connection.request.url, 'http://x').searchParams;
  return { index: Number(query.get('i')), slow: query.get('slow') === '1' };
}

let collect: (() => void) | undefined;

/** A full garbage collection: `global.gc` if exposed, else V8's flag switched on at run time. */
export function gc(): void {
  if (collect === undefined) {
    const exposed = (globalThis as { gc?: () => void }).gc;
    if (exposed !== undefined) collect = exposed;
    else {
      setFlagsFromString('--expose-gc');
      collect = runInNewContext('gc') as () => void;
    }
  }
  // Twice: the first pass may only queue finalizers whose objects the second frees.
  collect();
  collect();
}

/** Resolves after the current turn's I/O, timers and flushes. */
export const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export const MB = 1024 * 1024;

/** Joins every new connection to `room`; the returned function counts the joins that completed. */
export function joinEveryone(runtime: Runtime<unknown>, room = 'everyone'): () => number {
  let joined = 0;
  runtime.on('connection', (connection) => {
    void connection.join(room).then((ok) => ok && joined++);
  });
  return () => joined;
}
