/**
 * The berth demo: a small chat server. One `node:http` server serves the page
 * and `/healthz`; the berth runtime shares it for WebSocket upgrades on `/ws`.
 */
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRuntime, type Adapter, type Connection, type Runtime } from '../src/index.js';
import type { InspectionEvent } from 'xstate';
import { LiveView } from './live-view.js';
import { encode, parseClientMessage, protocolError } from './protocol.js';
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
}

/** A running demo. */
export interface Demo {
  /** The port actually listened on (useful with `port: 0`). */
  readonly port: number;
  /** The page's address, e.g. `http://localhost:8080/`; the WebSocket is at `/ws` of the same host. */
  readonly url: string;
  readonly runtime: Runtime;
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

// The page loads nothing from elsewhere; `ws:`/`wss:` are listed because older browsers do not count them as 'self'.
const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' ws: wss:; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** Starts the HTTP server and the berth runtime on it; resolves once listening. */
export async function startDemo(options: DemoOptions = {}): Promise<Demo> {
  const assets = await loadAssets();
  const server = http.createServer();
  const live: LiveView = new LiveView((): Runtime => runtime);
  const stately = options.statelyInspectorPort === undefined ? undefined : await statelyInspector(options.statelyInspectorPort);
  const runtime: Runtime = createRuntime({
    server,
    inspect: stately === undefined ? live.observe : (event) => (live.observe(event), stately.observe(event)),
    ...(options.redisUrl !== undefined && { adapter: await redisAdapter(options.redisUrl) }),
    path: '/ws',
    maxPayload: 64 * 1024,
    rateLimit: { messagesPerSecond: 20, burst: 40, policy: 'drop' },
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
  return { port, url: `http://${displayHost(options.host)}:${port}/`, runtime, inspectorUrl: stately?.url, close };
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

type Assets = ReadonlyMap<string, { body: Buffer; type: string }>;

/** Reads the page once at start: a missing file fails `startDemo` instead of a request. */
async function loadAssets(): Promise<Assets> {
  const entries = await Promise.all(
    Object.entries(ASSETS).map(async ([path, { file, type }]) => {
      const body = await readFile(new URL(`./public/${file}`, import.meta.url));
      return [path, { body, type }] as const;
    }),
  );
  return new Map(entries);
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
  const asset = readable && path !== undefined ? assets.get(path) : undefined;
  if (asset === undefined) {
    reply(response, 404, 'text/plain; charset=utf-8', 'not found\n');
    return;
  }
  reply(response, 200, asset.type, asset.body, {
    'Cache-Control': 'no-cache',
    'Content-Security-Policy': CONTENT_SECURITY_POLICY,
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

/** What the chat keeps per connection. */
interface Session {
  /** Set by `hello`; required before any other message. */
  name: string | undefined;
  /** The handling of this connection's previous message. */
  queue: Promise<void>;
}

/** Wires the chat protocol (see `demo/README.md`) onto the runtime's events. */
function attachChat(runtime: Runtime): void {
  const sessions = new Map<string, Session>();
  const send = (connection: Connection, message: ServerMessage) => void connection.send(encode(message));
  const refuse = (connection: Connection, code: ErrorCode, message: string) => send(connection, protocolError(code, message));
  const toRoom = (room: string, message: ServerMessage, except?: Connection) =>
    runtime.sendToRoom(room, encode(message), except && { except });
  // Only a live session may change presence: a connection that closed while its request
  // was in flight has had its leave events sent already.
  const live = (connection: Connection, session: Session) => sessions.get(connection.id) === session && connection.state === 'open';

  /**
   * Names of the room's members on every node that said hello, sorted; a name
   * with two tabs appears twice. Each name is its connection's user, so presence
   * answers for the whole cluster. If it cannot (Redis down), this node's answer.
   */
  const members = (room: string): Promise<string[]> =>
    runtime.presence
      .roomUsers(room)
      .catch(() => (runtime.snapshot().rooms[room] ?? []).flatMap((id) => sessions.get(id)?.name ?? []).sort());

  async function handle(connection: Connection, session: Session, message: ClientMessage | ProtocolError): Promise<void> {
    if (message.type === 'error') return send(connection, message);
    if (message.type === 'hello') {
      // Renaming would leave stale names in other members' lists; a new connection is a clean start.
      if (session.name !== undefined && session.name !== message.name) {
        return refuse(connection, 'invalid', 'name is already chosen; reconnect to use another');
      }
      if (!(await connection.setUser(message.name)) || !live(connection, session)) return;
      session.name = message.name;
      send(connection, { type: 'hello', name: message.name });
      return;
    }
    const name = session.name;
    if (name === undefined) return refuse(connection, 'no-name', `say hello with a name before ${message.type}`);
    switch (message.type) {
      case 'join': {
        const { room } = message;
        const first = !connection.rooms.has(room);
        if (!(await connection.join(room)) || !live(connection, session)) return;
        const names = await members(room);
        if (!live(connection, session)) return;
        send(connection, { type: 'joined', room, members: names });
        if (first) toRoom(room, { type: 'presence', room, name, event: 'join' }, connection);
        return;
      }
      case 'leave': {
        const { room } = message;
        if (!connection.rooms.has(room)) return refuse(connection, 'not-in-room', `not a member of ${room}`);
        // False: the connection is going away, and its close announces the leave.
        if (!(await connection.leave(room)) || !live(connection, session)) return;
        send(connection, { type: 'left', room });
        toRoom(room, { type: 'presence', room, name, event: 'leave' });
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

  runtime.on('connection', (connection) => {
    sessions.set(connection.id, { name: undefined, queue: Promise.resolve() });
    send(connection, { type: 'welcome', id: connection.id });
  });

  runtime.on('message', ({ connection, data, binary }) => {
    const session = sessions.get(connection.id);
    if (session === undefined) return;
    const message =
      binary || typeof data !== 'string'
        ? protocolError('invalid', 'binary messages are not supported; send JSON text')
        : parseClientMessage(data);
    // join, leave and hello wait for the supervisor: without a queue a `say` right
    // after a `join` could be checked, or answered, before the join completed.
    const handled = session.queue.then(() => handle(connection, session, message));
    session.queue = handled.catch(() => {});
    // Returned so that a failure reaches berth, which reports it and closes the connection with 1011.
    return handled;
  });

  runtime.on('close', ({ connection, rooms }) => {
    const session = sessions.get(connection.id);
    if (session === undefined) return;
    sessions.delete(connection.id);
    if (session.name === undefined) return;
    for (const room of rooms) toRoom(room, { type: 'presence', room, name: session.name, event: 'leave' });
  });
}
