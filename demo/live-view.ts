/**
 * The demo's own live view of the actors (`/inspect`): a model kept from the
 * runtime's XState inspection events — the supervisor, each connection actor
 * as its child with its current state, rooms and users from the supervisor's
 * snapshot — plus each connection's outbox depth, streamed to the page as
 * server-sent events. It works offline, unlike the Stately inspector.
 */
import type http from 'node:http';
import type { AnyActorRef, InspectionEvent } from 'xstate';
import type { Directory } from '../machines/directory.js';
import type { Runtime } from '../src/index.js';

/** Connections that closed, kept on the page for a while so their last state can be seen. */
const RECENTLY_CLOSED = 50;
/** At most this many live connections are listed (the counts are always whole). */
const LISTED = 500;
/** Changes are sent at most this often. */
const PUSH_INTERVAL_MS = 50;

interface ConnectionView {
  readonly id: string;
  state: string;
  readonly parent: string | undefined;
}

export interface LiveModel {
  readonly supervisor: { readonly id: string; readonly state: string };
  readonly connections: ReadonlyArray<ConnectionView & { user: string | undefined; rooms: string[]; outbox: number }>;
  readonly closed: readonly ConnectionView[];
  readonly counts: { readonly connections: number; readonly rooms: number; readonly users: number };
  readonly rooms: Record<string, string[]>;
  readonly users: Record<string, string[]>;
}

/** `open`, `disconnecting.closing`, `closed`. */
function stateName(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value !== 'object' || value === null) return String(value);
  return Object.entries(value)
    .map(([key, child]) => `${key}.${stateName(child)}`)
    .join(',');
}

/** What the supervisor's context holds: its registry, read as plain data. */
type DirectoryLike = Pick<Directory, 'toJSON'>;

export class LiveView {
  readonly #runtime: () => Runtime;
  #supervisor = { id: 'supervisor', state: 'starting' };
  #directory: DirectoryLike | undefined;
  readonly #live = new Map<string, ConnectionView>();
  #closed: ConnectionView[] = [];
  readonly #clients = new Set<http.ServerResponse>();
  #timer: NodeJS.Timeout | undefined;

  /** `runtime` is read lazily: the observer exists before the runtime it observes. */
  constructor(runtime: () => Runtime) {
    this.#runtime = runtime;
  }

  /** The inspection observer to give the runtime (alone or with others). */
  readonly observe = (event: InspectionEvent): void => {
    if (event.type !== '@xstate.snapshot') return;
    const actor = event.actorRef as AnyActorRef;
    const snapshot = event.snapshot as { value?: unknown; status?: string; context?: { id?: string; directory?: DirectoryLike } };
    if (actor.id === 'supervisor') {
      this.#supervisor = { id: actor.id, state: snapshot.status === 'done' ? 'stopped' : stateName(snapshot.value) };
      this.#directory = snapshot.context?.directory;
    } else {
      const id = snapshot.context?.id;
      if (typeof id !== 'string') return;
      const parent = (actor._parent as AnyActorRef | undefined)?.id;
      let view = this.#live.get(id);
      if (view === undefined) this.#live.set(id, (view = { id, state: '', parent }));
      view.state = stateName(snapshot.value);
      if (snapshot.status === 'done' || view.state === 'closed') {
        view.state = 'closed';
        this.#live.delete(id);
        this.#closed = [view, ...this.#closed].slice(0, RECENTLY_CLOSED);
      }
    }
    this.#changed();
  };

  model(): LiveModel {
    const runtime = this.#runtime();
    const directory = this.#directory?.toJSON() ?? { rooms: {}, users: {}, connections: {} };
    const connections = [...this.#live.values()].slice(0, LISTED).map((view) => ({
      ...view,
      user: directory.connections[view.id]?.user,
      rooms: directory.connections[view.id]?.rooms ?? [],
      outbox: runtime.connection(view.id)?.outbox.depth ?? 0,
    }));
    return {
      supervisor: this.#supervisor,
      connections,
      closed: this.#closed,
      counts: { connections: this.#live.size, rooms: Object.keys(directory.rooms).length, users: Object.keys(directory.users).length },
      rooms: directory.rooms,
      users: directory.users,
    };
  }

  /** Serves `GET /inspect/events`: the model at once, then after every change. */
  stream(response: http.ServerResponse): void {
    response.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
    this.#clients.add(response);
    response.on('close', () => this.#clients.delete(response));
    response.write(`data: ${JSON.stringify(this.model())}\n\n`);
  }

  /** Ends every stream (the demo is closing). */
  close(): void {
    clearTimeout(this.#timer);
    for (const client of this.#clients) client.end();
    this.#clients.clear();
  }

  #changed(): void {
    // No page open, no work and no timer.
    if (this.#clients.size === 0 || this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      const data = `data: ${JSON.stringify(this.model())}\n\n`;
      for (const client of this.#clients) client.write(data);
    }, PUSH_INTERVAL_MS);
  }
}
