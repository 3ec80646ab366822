/**
 * What a scenario run sees of the server: which connection is which client
 * (every client sends its tag, `name#n`, in a header), how each closed, what
 * each sent that reached the application, how each resume was answered, how
 * many connections of each client were open at once; and the check of an
 * `assert` step against it.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Runtime } from '../index.js';
import type { ServerAssertion } from './scenario.js';
import type { Timeline } from './timeline.js';

export const CLIENT_HEADER = 'x-berth-scenario-client';

/** A `berth/client` client as the checks see it. */
export interface ClientView {
  readonly name: string;
  /** Its connection now, if it has one. */
  readonly tag: string | undefined;
  readonly open: boolean;
  /** The rooms it holds a `room:` stream position of. */
  rooms(): string[];
}

const nameOf = (tag: string) => tag.split('#')[0]!;

export class ServerRecord {
  /** Connection id → client tag. */
  readonly #tags = new Map<string, string>();
  readonly #ids = new Map<string, string>();
  readonly #closes = new Map<string, Array<{ code: number; reason: string; cause: string }>>();
  readonly #drops = new Map<string, number>();
  readonly #received = new Map<string, number>();
  readonly #resumes = new Map<string, { recovered: boolean }>();
  readonly #live = new Map<string, number>();
  readonly #maxLive = new Map<string, number>();

  /** Records the connections of every one of `runtimes` (a scenario's runtimes: connection ids are unique across them). */
  constructor(runtimes: readonly Runtime[], timeline: Timeline, changed: () => void) {
    for (const runtime of runtimes) this.#watch(runtime, timeline, changed);
  }

  #watch(runtime: Runtime, timeline: Timeline, changed: () => void): void {
    runtime.on('connection', (connection) => {
      const tag = connection.request.headers[CLIENT_HEADER];
      if (typeof tag !== 'string') return;
      this.#tags.set(connection.id, tag);
      this.#ids.set(tag, connection.id);
      const name = nameOf(tag);
      const live = (this.#live.get(name) ?? 0) + 1;
      this.#live.set(name, live);
      this.#maxLive.set(name, Math.max(live, this.#maxLive.get(name) ?? 0));
      timeline.add(name, 'server', `registered as ${connection.id} (${tag})`);
      changed();
    });
    runtime.on('close', ({ connection, code, reason, cause }) => {
      const tag = this.#tags.get(connection.id);
      if (tag === undefined) return;
      this.#closes.set(tag, [...this.closesOf(tag), { code, reason, cause }]);
      this.#live.set(nameOf(tag), (this.#live.get(nameOf(tag)) ?? 1) - 1);
      timeline.add(nameOf(tag), 'server', `closed ${code}${reason ? ` "${reason}"` : ''} (${cause})`);
      changed();
    });
    runtime.on('dropped', ({ connection, count }) => {
      const tag = this.#tags.get(connection.id);
      if (tag !== undefined) this.#drops.set(tag, (this.#drops.get(tag) ?? 0) + count);
    });
    runtime.on('message', ({ connection }) => {
      const tag = this.#tags.get(connection.id);
      if (tag === undefined) return;
      this.#received.set(tag, this.received(tag) + 1);
      changed();
    });
    runtime.on('resumed', ({ connection, recovered, previous, lost }) => {
      const tag = this.#tags.get(connection.id);
      if (tag === undefined) return;
      this.#resumes.set(tag, { recovered });
      const what = recovered
        ? `resumed the session of ${previous ?? 'a connection'}`
        : `resume not recovered${lost.length > 0 ? `: lost ${lost.map(({ stream, reason }) => `${stream} (${reason})`).join(', ')}` : ''}`;
      timeline.add(nameOf(tag), 'server', what);
      changed();
    });
  }

  idOf(tag: string | undefined): string | undefined {
    return tag === undefined ? undefined : this.#ids.get(tag);
  }

  closesOf(tag: string | undefined): ReadonlyArray<{ code: number; reason: string; cause: string }> {
    return (tag !== undefined && this.#closes.get(tag)) || [];
  }

  /** Messages of connection `tag` the application received. */
  received(tag: string): number {
    return this.#received.get(tag) ?? 0;
  }

  /** Whether the server answered a resume on connection `tag`. */
  answeredResume(tag: string): boolean {
    return this.#resumes.has(tag);
  }

  /** The newest connection of a client name, whether or not it is still open. */
  newestTag(name: string): string | undefined {
    return [...this.#tags.values()].reverse().find((tag) => tag.startsWith(`${name}#`));
  }

  /**
   * What of `assertion` does not hold yet on `runtime`, or undefined. `tagOf` names each client's connection now;
   * `connection` finds a connection by id on whichever runtime holds it.
   */
  check(
    assertion: ServerAssertion,
    runtime: Runtime,
    tagOf: (name: string) => string | undefined,
    clients: Iterable<ClientView>,
    connection: (id: string) => ReturnType<Runtime['connection']> = (id) => runtime.connection(id),
  ): string | undefined {
    const view = runtime.snapshot();
    const shown = (id: string) => {
      const tag = this.#tags.get(id);
      return tag === undefined ? id : nameOf(tag);
    };
    const names = (ids: readonly string[]) => ids.map(shown).sort();
    for (const [room, expected] of Object.entries(assertion.rooms ?? {})) {
      const actual = names(view.rooms[room] ?? []);
      if (!isDeepStrictEqual(actual, [...expected].sort()))
        return `room ${room} holds [${actual.join(', ')}], expected [${[...expected].sort().join(', ')}]`;
    }
    for (const [user, expected] of Object.entries(assertion.users ?? {})) {
      const actual = names(view.users[user] ?? []);
      if (!isDeepStrictEqual(actual, [...expected].sort()))
        return `user ${user} has [${actual.join(', ')}], expected [${[...expected].sort().join(', ')}]`;
    }
    for (const [name, expected] of Object.entries(assertion.states ?? {})) {
      const id = this.idOf(tagOf(name));
      const state = id === undefined ? 'unknown' : (connection(id)?.state ?? 'closed');
      if (state !== expected) return `${name} is ${state}, expected ${expected}`;
    }
    for (const [name, expected] of Object.entries(assertion.closed ?? {})) {
      const close = this.closesOf(tagOf(name))[0];
      if (close === undefined) return `${name} has not closed`;
      for (const key of ['code', 'reason', 'cause'] as const) {
        if (expected[key] !== undefined && close[key] !== expected[key])
          return `${name} closed with ${key} ${JSON.stringify(close[key])}, expected ${JSON.stringify(expected[key])}`;
      }
    }
    for (const [name, expected] of Object.entries(assertion.closeEvents ?? {})) {
      const count = this.closesOf(tagOf(name)).length;
      if (count !== expected) return `${name} had ${count} close events, expected ${expected}`;
    }
    for (const [name, expected] of Object.entries(assertion.minDropped ?? {})) {
      const count = this.#drops.get(tagOf(name) ?? '') ?? 0;
      if (count < expected) return `${count} messages were dropped for ${name}, expected at least ${expected}`;
    }
    if (assertion.connections !== undefined) {
      const count = Object.keys(view.connections).length;
      if (count !== assertion.connections) return `the server holds ${count} connections, expected ${assertion.connections}`;
    }
    for (const [name, expected] of Object.entries(assertion.maxLive ?? {})) {
      const most = this.#maxLive.get(name) ?? 0;
      if (most > expected) return `the server held ${most} connections of ${name} open at once, expected at most ${expected}`;
    }
    if (assertion.noGhosts === true) {
      const ghost = (id: string) => runtime.connection(id)?.state !== 'open';
      for (const [room, members] of Object.entries(view.rooms)) {
        const dead = members.filter(ghost);
        if (dead.length > 0) return `room ${room} holds ${dead.map(shown).join(', ')}, whose connection is no longer open (a ghost)`;
      }
      for (const [user, members] of Object.entries(view.users)) {
        const dead = members.filter(ghost);
        if (dead.length > 0) return `user ${user} has ${dead.map(shown).join(', ')}, whose connection is no longer open (a ghost)`;
      }
      for (const client of clients) {
        const id = this.idOf(client.tag);
        if (!client.open || id === undefined || runtime.connection(id)?.state !== 'open') continue;
        const server = [...(view.connections[id]?.rooms ?? [])].sort();
        const believed = client.rooms().sort();
        if (!isDeepStrictEqual(server, believed))
          return `${client.name} is in [${server.join(', ')}] on the server, but its client holds the streams of [${believed.join(', ')}]`;
      }
    }
    return undefined;
  }
}
