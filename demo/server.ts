/**
 * The berth demo: a small chat server. One `node:http` server serves the page
 * (which talks through `berth/client`, served from `dist/` as it is) and
 * `/healthz`; the berth runtime shares it for WebSocket upgrades on `/ws`.
 */
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRuntime, type Adapter, type AuthDecision, type CloseCause, type Connection } from '../src/index.js';
import type { Runtime, RuntimeOptions } from '../src/index.js';
import type { InspectionEvent } from 'xstate';
import { LiveView } from './live-view.js';
import { loadPageModules, type ServedFile } from './modules.js';
import { encode, NAME_RULE, parseClientMessage, parseName, protocolError } from './protocol.js';
import type { ClientMessage, ErrorCode, ProtocolError, ServerMessage } from './protocol.js';

/** Options of `startDemo`. */
export interface DemoOptions {
  /** Port to listen on; 0 picks a free one. [default 8080] */
  readonly port?: number;
  /** Interface to listen on. [default all interfaces] */
  readonly host?: string;
  /** Joins a cluster over this Redis (`redis://host:port`); demos on one Redis share rooms. [default none: a cluster of one] */
  readonly redisUrl?: string;
  /**
   * Also relays every actor to the Stately inspector through a local relay on
   * this port (`@statelyai/inspect`; open `http://localhost:<port>`). [default off]
   */
  readonly statelyInspectorPort?: number;
  /**
   * More runtime options, for tests and experiments (`history`, `recovery`, `heartbeat`, `rateLimit` …);
   * the demo's server, path, authentication, adapter and inspection stay its own. [default none]
   */
  readonly runtime?: DemoRuntimeOptions;
}

/** The runtime options a demo takes from its caller. */
export type DemoRuntimeOptions = Omit<RuntimeOptions, 'port' | 'host' | 'server' | 'path' | 'authenticate' | 'adapter' | 'inspect'>;

/** A running demo. */
export interface Demo {
  /** The port actually listened on (useful with `port: 0`). */
  readonly port: number;
  /** The page's address, e.g. `http://localhost:8080/`; the WebSocket is at `/ws` of the same host. */
  readonly url: string;
  readonly runtime: Runtime;
  /** The HTTP server the page and the WebSocket share (its `upgrade` event shows every WebSocket's TCP socket). */
  readonly server: http.Server;
  /** The Stately relay's page when `statelyInspectorPort` is set. */
  readonly inspectorUrl: string | undefined;
  /** Closes every WebSocket (1001), then the HTTP server. Idempotent. */
  close(): Promise<void>;
}

/** Served files: URL path → file in `demo/public/` and its content type. */
const ASSETS: Readonly<Record<string, { file: string; type: string }>> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/chat.js': { file: 'chat.js', type: 'text/javascript; charset=utf-8' },
  '/chat.css': { file: 'chat.css', type: 'text/css; charset=utf-8' },
  '/inspect': { file: 'inspect.html', type: 'text/html; charset=utf-8' },
  '/inspect.js': { file: 'inspect.js', type: 'text/javascript; charset=utf-8' },
  '/inspect.css': { file: 'inspect.css', type: 'text/css; charset=utf-8' },
};

/**
 * The page loads nothing from elsewhere and runs no inline script but its
 * import map, allowed by its hash (Chromium does not load an external one).
 * `ws:`/`wss:` are listed because older browsers do not count them as 'self'.
 */
function contentSecurityPolicy(importMapSource: string): string {
  return (
    `default-src 'none'; script-src 'self' ${importMapSource}; style-src 'self'; img-src 'self' data:; connect-src 'self' ws: wss:; ` +
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
  );
}

/** Starts the HTTP server and the berth runtime on it; resolves once listening. */
export async function startDemo(options: DemoOptions = {}): Promise<Demo> {
  const assets = await loadAssets();
  const server = http.createServer();
  const live: LiveView = new LiveView((): Runtime => runtime);
  const stately = options.statelyInspectorPort === undefined ? undefined : await statelyInspector(options.statelyInspectorPort);
  const runtime: Runtime = createRuntime({
    maxPayload: 64 * 1024,
    rateLimit: { messagesPerSecond: 20, burst: 40, policy: 'drop' },
    ...options.runtime,
    server,
    inspect: stately === undefined ? live.observe : (event) => (live.observe(event), stately.observe(event)),
    ...(options.redisUrl !== undefined && { adapter: await redisAdapter(options.redisUrl) }),
    path: '/ws',
    authenticate: nameFromUrl,
  });
  attachChat(runtime);
  server.on('request', (request, response) => serve(request, response, assets, runtime, live));

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      // Sockets first: the runtime says goodbye (1001) to every client while the server still runs.
      await runtime.close();
      live.close();
      stately?.stop();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Idle keep-alive connections would hold `server.close` open until they time out.
        server.closeAllConnections();
      });
    })());

  try {
    await listen(server, options.port ?? 8080, options.host);
  } catch (error) {
    await runtime.close();
    stately?.stop();
    throw error;
  }
  const port = (server.address() as AddressInfo).port;
  return { port, url: `http://${displayHost(options.host)}:${port}/`, runtime, server, inspectorUrl: stately?.url, close };
}

/**
 * The Stately inspector recipe: a relay server (`createInspectorServer`) and a
 * WebSocket inspector that feeds it. Loaded only when asked for: its retry
 * timer would keep the process alive, and off it must cost nothing.
 */
async function statelyInspector(port: number): Promise<{ observe: (event: InspectionEvent) => void; stop(): void; url: string }> {
  const [{ createInspectorServer }, { createWebSocketInspector }] = await Promise.all([
    import('@statelyai/inspect/server'),
    import('@statelyai/inspect'),
  ]);
  const relay = createInspectorServer({ port, autoOpen: false });
  const inspector = createWebSocketInspector({ url: `ws://localhost:${port}` });
  // Stopped while its socket is still connecting, the inspector (0.7.2) retries every 5 s
  // forever and keeps the process alive; the relay is local, so wait until it is open.
  const adapter = inspector.adapter as unknown as { status: string };
  for (let waited = 0; adapter.status !== 'open' && waited < 2000; waited += 10) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return {
    observe: (event) => inspector.inspect.next?.(event),
    stop: () => {
      inspector.stop();
      relay.stop();
    },
    url: `http://localhost:${port}`,
  };
}

/** Loaded only when asked for, so the default demo does not need the `redis` package. */
async function redisAdapter(url: string): Promise<Adapter> {
  const { createRedisAdapter } = await import('../src/redis.js');
  return createRedisAdapter({ url });
}

// ---- HTTP -------------------------------------------------------------------

interface Assets {
  /** URL path → file: the page's own files and the modules it imports, nothing else. */
  readonly files: ReadonlyMap<string, ServedFile>;
  readonly contentSecurityPolicy: string;
}

/**
 * Reads the page and the modules it imports once at start: a missing file
 * (`dist/` not built) fails `startDemo` instead of a request.
 */
async function loadAssets(): Promise<Assets> {
  const entries = await Promise.all(
    Object.entries(ASSETS).map(async ([path, { file, type }]) => {
      const body = await readFile(new URL(`./public/${file}`, import.meta.url));
      return [path, { body, type }] as const;
    }),
  );
  const files = new Map<string, ServedFile>(entries);
  const modules = await loadPageModules(files.get('/')!.body.toString('utf8'));
  for (const [path, file] of modules.files) files.set(path, file);
  return { files, contentSecurityPolicy: contentSecurityPolicy(modules.importMapSource) };
}

function serve(request: http.IncomingMessage, response: http.ServerResponse, assets: Assets, runtime: Runtime, live: LiveView): void {
  const path = (request.url ?? '/').split('?', 1)[0];
  // Node drops the body of a HEAD response by itself.
  const readable = request.method === 'GET' || request.method === 'HEAD';
  if (readable && path === '/healthz') {
    const health = runtime.health();
    // Degraded still serves; only a runtime that is closing or closed asks to be taken out of rotation.
    const status = health.status === 'ok' || health.status === 'degraded' ? 200 : 503;
    reply(response, status, 'application/json', JSON.stringify(health), { 'Cache-Control': 'no-store' });
    return;
  }
  if (request.method === 'GET' && path === '/inspect/events') {
    live.stream(response);
    return;
  }
  if (readable && path === '/metrics') {
    runtime.metrics.prometheus().then(
      (text) => reply(response, 200, runtime.metrics.registry.contentType, text, { 'Cache-Control': 'no-store' }),
      (error: unknown) => reply(response, 500, 'text/plain; charset=utf-8', `metrics failed: ${String(error)}\n`),
    );
    return;
  }
  // An exact match or nothing: no URL is turned into a path on disk.
  const asset = readable && path !== undefined ? assets.files.get(path) : undefined;
  if (asset === undefined) {
    reply(response, 404, 'text/plain; charset=utf-8', 'not found\n');
    return;
  }
  reply(response, 200, asset.type, asset.body, {
    'Cache-Control': 'no-cache',
    'Content-Security-Policy': assets.contentSecurityPolicy,
  });
}

type HeaderMap = Readonly<Record<string, string>>;

function reply(response: http.ServerResponse, status: number, type: string, body: string | Buffer, headers: HeaderMap = {}): void {
  response.writeHead(status, {
    'Content-Type': type,
    'Content-Length': Buffer.byteLength(body),
    'X-Content-Type-Options': 'nosniff',
    ...headers,
  });
  response.end(body);
}

function listen(server: http.Server, port: number, host: string | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** A host for URLs people click: the wildcard addresses are not reachable as such. */
function displayHost(host: string | undefined): string {
  if (host === undefined || host === '' || host === '0.0.0.0' || host === '::') return 'localhost';
  return host.includes(':') ? `[${host}]` : host;
}

// ---- Chat -------------------------------------------------------------------

/**
 * Admits an upgrade whose URL names its person (`/ws?name=ada`), bound as the
 * connection's user before anything else happens: a `berth.v1` session is
 * resumed only by its own user, so the name must come with the upgrade.
 */
function nameFromUrl(request: http.IncomingMessage): AuthDecision<never> {
  const name = parseName(new URL(request.url ?? '/', 'http://demo').searchParams.get('name'));
  return name === undefined ? { refuse: 401, reason: `name must be ${NAME_RULE}: /ws?name=…` } : { user: name };
}

/** Ends that were meant: a goodbye (1000), a page that went away (1001), or the server's own doing. */
function deliberate(cause: CloseCause, code: number): boolean {
  if (cause === 'client') return code === 1000 || code === 1001;
  return cause === 'server' || cause === 'shutdown' || cause === 'rate-limit' || cause === 'handler-error';
}

/** Wires the chat protocol (see `demo/README.md`) onto the runtime's events. */
function attachChat(runtime: Runtime): void {
  /** Per live connection, the handling of its previous message: each waits for the one before. */
  const queues = new Map<string, Promise<void>>();
  const send = (connection: Connection, message: ServerMessage) => void connection.send(encode(message));
  const refuse = (connection: Connection, code: ErrorCode, message: string) => send(connection, protocolError(code, message));
  const toRoom = (room: string, message: ServerMessage, except?: Connection) =>
    runtime.sendToRoom(room, encode(message), except && { except });
  // Only a live connection may change presence: one that closed while its request
  // was in flight has had its leave events sent already.
  const live = (connection: Connection) => queues.has(connection.id) && connection.state === 'open';
  /** Every demo connection has a user: `authenticate` refuses an upgrade without a name. */
  const nameOf = (connection: Connection) => connection.user!;

  /**
   * Names of the room's members on every node, sorted; a name with two tabs
   * appears twice. Each name is its connection's user, so presence answers for
   * the whole cluster. If it cannot (Redis down), this node's answer.
   */
  const members = (room: string): Promise<string[]> =>
    runtime.presence
      .roomUsers(room)
      .catch(() => (runtime.snapshot().rooms[room] ?? []).flatMap((id) => runtime.connection(id)?.user ?? []).sort());

  /** Runs `work` after everything this connection asked before; returned, so that a failure reaches berth, which reports it. */
  const enqueue = (connection: Connection, work: () => Promise<void>): Promise<void> | undefined => {
    const queue = queues.get(connection.id);
    if (queue === undefined) return undefined;
    const handled = queue.then(work);
    queues.set(
      connection.id,
      handled.catch(() => {}),
    );
    return handled;
  };

  async function handle(connection: Connection, message: ClientMessage | ProtocolError): Promise<void> {
    if (message.type === 'error') return send(connection, message);
    const name = nameOf(connection);
    const { id } = connection;
    switch (message.type) {
      case 'join': {
        const { room } = message;
        const first = !connection.rooms.has(room);
        if (!(await connection.join(room)) || !live(connection)) return;
        const names = await members(room);
        if (!live(connection)) return;
        send(connection, { type: 'joined', room, members: names });
        if (first) toRoom(room, { type: 'presence', room, name, id, event: 'join' }, connection);
        return;
      }
      case 'leave': {
        const { room } = message;
        if (!connection.rooms.has(room)) return refuse(connection, 'not-in-room', `not a member of ${room}`);
        // False: the connection is going away, and its close announces the leave.
        if (!(await connection.leave(room)) || !live(connection)) return;
        send(connection, { type: 'left', room });
        toRoom(room, { type: 'presence', room, name, id, event: 'leave' });
        return;
      }
      case 'say':
        if (!connection.rooms.has(message.room)) {
          return refuse(connection, 'not-in-room', `join ${message.room} before saying anything there`);
        }
        toRoom(message.room, { type: 'said', room: message.room, from: name, text: message.text, at: Date.now() });
        return;
      case 'whisper':
        // Fire and forget: with an adapter the user may be on another node, so nobody here can say they are absent.
        runtime.sendToUser(message.to, encode({ type: 'whispered', from: name, text: message.text }));
        return;
    }
  }

  /**
   * A resumed session is back in its rooms (berth rejoined them and replayed
   * what it missed): the others hear it is back, and it gets each room's
   * members as they are now, since its own list saw it leave.
   */
  async function resumed(connection: Connection): Promise<void> {
    const name = nameOf(connection);
    for (const room of [...connection.rooms]) {
      const names = await members(room);
      if (!live(connection)) return;
      send(connection, { type: 'joined', room, members: names });
      toRoom(room, { type: 'presence', room, name, id: connection.id, event: 'join', resumed: true }, connection);
    }
  }

  runtime.on('connection', (connection) => {
    queues.set(connection.id, Promise.resolve());
    send(connection, { type: 'welcome', id: connection.id, name: nameOf(connection) });
  });

  runtime.on('message', ({ connection, data, binary }) => {
    const message =
      binary || typeof data !== 'string'
        ? protocolError('invalid', 'binary messages are not supported; send JSON text')
        : parseClientMessage(data);
    // join and leave wait for the supervisor: without a queue a `say` right
    // after a `join` could be checked, or answered, before the join completed.
    // Returned so that a failure reaches berth, which reports it and closes the connection with 1011.
    return enqueue(connection, () => handle(connection, message));
  });

  // Not recovered, the connection starts fresh: the page joins its rooms again itself.
  runtime.on('resumed', ({ connection, recovered }) => (recovered ? enqueue(connection, () => resumed(connection)) : undefined));

  runtime.on('close', ({ connection, code, cause, rooms }) => {
    if (!queues.delete(connection.id)) return;
    const name = nameOf(connection);
    const dropped = !deliberate(cause, code);
    for (const room of rooms) {
      toRoom(room, { type: 'presence', room, name, id: connection.id, event: 'leave', ...(dropped && { dropped: true as const }) });
    }
  });
}
