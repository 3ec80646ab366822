/**
 * One run's processes: a fresh server child for the system under test and
 * fresh client children, so no run inherits another's memory, JIT state or
 * sockets. Also the setup every scenario shares: open the connections and
 * wait until the server has every one of them joined.
 */
import { Child, PhaseError } from '../children.js';
import type { MetricName } from '../metrics.js';
import type { ClientCommand, ClientReply, ConnectionGroup, ServerCommand, ServerReply, ServerStats, SystemName } from '../protocol.js';

export type ServerChild = Child<ServerCommand, ServerReply>;
export type ClientChild = Child<ClientCommand, ClientReply>;

export interface Session {
  readonly system: SystemName;
  readonly server: ServerChild;
  readonly port: number;
  readonly clients: readonly ClientChild[];
  readonly log: (line: string) => void;
}

/** What a run produced: its metrics, and why it failed if it did (the orchestrator says it loudly). */
export interface Outcome {
  readonly metrics: Partial<Record<MetricName, number>>;
  readonly failure?: string;
  readonly notes: readonly string[];
}

const START_TIMEOUT_MS = 20_000;

export async function openSession(
  system: SystemName,
  clientProcesses: number,
  log: (line: string) => void,
  serverEnv?: Record<string, string>,
): Promise<Session> {
  const serverStart = Child.start<ServerCommand, ServerReply>(`${system} server`, './server-process.ts', [system], {
    exposeGc: true,
    timeoutMs: START_TIMEOUT_MS,
    ...(serverEnv !== undefined && { env: serverEnv }),
  });
  const clientStarts = Array.from({ length: clientProcesses }, (_, i) =>
    Child.start<ClientCommand, ClientReply>(`client ${i + 1}`, './client-process.ts', [system], { timeoutMs: START_TIMEOUT_MS }),
  );
  const settled = await Promise.allSettled<Promise<{ child: { kill(): Promise<void> } }>>([serverStart, ...clientStarts]);
  const failed = settled.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed !== undefined) {
    // One child failed to start: the others must not outlive the run.
    await Promise.all(settled.map((result) => (result.status === 'fulfilled' ? result.value.child.kill() : undefined)));
    throw failed.reason;
  }
  const server = await serverStart;
  const clients = await Promise.all(clientStarts);
  if (server.ready.type !== 'ready') throw new PhaseError(`${system} server did not start`);
  return { system, server: server.child, port: server.ready.port, clients: clients.map((c) => c.child), log };
}

/** Kills the server first (so clients see their sockets close instead of closing them), then the clients. */
export async function closeSession(session: Session): Promise<void> {
  await session.server.kill();
  await Promise.all(session.clients.map((client) => client.kill()));
}

export async function serverStats(session: Session, rooms: readonly string[], gc = false): Promise<ServerStats> {
  const reply = await session.server.request({ type: 'stats', rooms, gc }, 30_000, 'stats');
  return reply.stats;
}

/** Splits `total` into `parts` near-equal shares. */
export const share = (total: number, parts: number, index: number) => Math.floor(total / parts) + (index < total % parts ? 1 : 0);

/**
 * Opens every group's connections (spread over the client processes), then
 * waits until the server counts every one of them open and joined.
 * `compression`: the clients offer permessage-deflate [default false].
 */
export async function connect(session: Session, groups: readonly ConnectionGroup[], compression = false, v1 = false): Promise<void> {
  const { ms, retries, deadline } = await openConnections(session, groups, compression, v1);
  await awaitJoined(session, groups, deadline);
  session.log(`connected and joined in ${(ms / 1000).toFixed(1)} s${retries > 0 ? ` (${retries} retries)` : ''}`);
}

/**
 * Has the client processes open every group's connections, each group's
 * connections shared among them, to `session.port` or the group's own port;
 * `deadline` is when their server should have them all joined; `compression`: they offer
 * permessage-deflate [default false]; `v1`: berth's clients speak `berth.v1` [default false].
 */
export async function openConnections(
  session: Session,
  groups: readonly ConnectionGroup[],
  compression = false,
  v1 = false,
): Promise<{ ms: number; retries: number; deadline: number }> {
  const total = groups.reduce((sum, group) => sum + group.fast + group.slow, 0);
  const timeoutMs = 30_000 + 10 * total;
  const parts = session.clients.length;
  session.log(`connecting ${total.toLocaleString('en-US')} (${groups.length} room${groups.length > 1 ? 's' : ''})`);
  const reports = await Promise.all(
    session.clients.map((client, index) =>
      client.request(
        {
          type: 'connect',
          port: session.port,
          concurrency: 100,
          compression,
          ...(v1 && { v1 }),
          groups: groups.map((group) => ({
            ...group,
            fast: share(group.fast, parts, index),
            slow: share(group.slow, parts, index),
          })),
        },
        timeoutMs,
        'connect',
      ),
    ),
  );
  const failed = reports.reduce((sum, reply) => sum + reply.report.failed, 0);
  const retries = reports.reduce((sum, reply) => sum + reply.report.retries, 0);
  if (failed > 0) {
    const errors = reports.flatMap((reply) => reply.report.firstErrors).slice(0, 3);
    throw new PhaseError(`connect: ${failed} of ${total} connections failed (${errors.join('; ')})`);
  }
  return { ms: Math.max(...reports.map((reply) => reply.report.ms)), retries, deadline: performance.now() + timeoutMs };
}

/** Waits until `session.server` has exactly the groups' connections open, each joined to its group's room. */
export async function awaitJoined(session: Session, groups: readonly ConnectionGroup[], deadline: number): Promise<void> {
  const total = groups.reduce((sum, group) => sum + group.fast + group.slow, 0);
  const rooms = groups.map((group) => group.room);
  for (;;) {
    const stats = await serverStats(session, rooms);
    const joined = groups.every((group) => stats.members[group.room] === group.fast + group.slow);
    if (joined && stats.connections === total) return;
    if (performance.now() > deadline) {
      throw new PhaseError(
        `join: server has ${stats.connections} connections and members ${JSON.stringify(stats.members)}, expected ${total} (errors: ${stats.firstErrors.join('; ')})`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
