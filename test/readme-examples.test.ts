import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, eventually, pingOrClose } from './helpers/client.js';
import { halfSentUpgrade, rawUpgrade, trickledRequest } from './helpers/raw.js';
import { freePort } from '../bench/redis-process.js';
import { startNats } from './helpers/nats.js';
import { startRedis } from './helpers/redis.js';
import { startRedisCluster } from './helpers/redis-cluster.js';

const root = new URL('../', import.meta.url);

/** The README and every page of docs/, by path: the examples may be on any of them. */
const pages: ReadonlyMap<string, string> = new Map(
  ['README.md', ...readdirSync(new URL('docs/', root)).flatMap((file) => (file.endsWith('.md') ? [`docs/${file}`] : []))].map((page) => [
    page,
    readFileSync(new URL(page, root), 'utf8'),
  ]),
);

/** The `js` example whose first line is `// <name>`, wherever it is; there must be exactly one. */
function example(name: string): string {
  const found = [...pages].flatMap(([page, text]) =>
    [...text.matchAll(/```js\n([\s\S]*?)```/g)].flatMap((match) => (match[1]!.startsWith(`// ${name}`) ? [{ page, code: match[1]! }] : [])),
  );
  if (found.length !== 1) throw new Error(`expected one example ${name}, found ${found.length} (${found.map((f) => f.page).join(', ')})`);
  return found[0]!.code;
}

/** The text of one page from a heading on (to the end), for the blocks an example comes with. */
function section(page: string, heading: string): string {
  const text = pages.get(page);
  if (text === undefined || !text.includes(heading)) throw new Error(`${page} has no section ${heading}`);
  return text.slice(text.indexOf(heading));
}

interface Running {
  readonly output: string[];
  /** Standard error, line by line (also passed through to the test's own). */
  readonly errors: string[];
  readonly exited: Promise<number | null>;
  /** Waits for a line of standard output (or of `lines`) matching `pattern`. */
  line(pattern: RegExp, lines?: string[]): Promise<string>;
  child: ChildProcess;
}

/** Waits for a child to exit; resolves with its exit code and standard output. */
function finish(child: ChildProcess): Promise<{ code: number | null; output: string }> {
  running.push(child);
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, output })));
}

const running: ChildProcess[] = [];
afterEach(() => {
  for (const child of running.splice(0)) child.kill('SIGKILL');
});

/**
 * Runs an example as pasted — `berth` resolves to this package — with its
 * fixed port (if it listens: `null` if not) swapped for a free one.
 */
async function run(
  name: string,
  fixedPort: number | null,
  env: Record<string, string> = {},
  otherPorts: number[] = [],
): Promise<Running & { port: number; ports: number[] }> {
  const port = await freePort();
  let code = fixedPort === null ? example(name) : example(name).replaceAll(String(fixedPort), String(port));
  const ports: number[] = [];
  for (const other of otherPorts) {
    ports.push(await freePort());
    code = code.replaceAll(String(other), String(ports.at(-1)));
  }
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.push(child);
  const output: string[] = [];
  const errors: string[] = [];
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => output.push(...chunk.split('\n').filter(Boolean)));
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    process.stderr.write(chunk);
    errors.push(...chunk.split('\n').filter(Boolean));
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const line = async (pattern: RegExp, lines = output) => {
    await eventually(() => lines.some((text) => pattern.test(text)), `output matching ${pattern}`, 15_000);
    return lines.find((text) => pattern.test(text))!;
  };
  return { output, errors, exited, line, child, port, ports };
}

/**
 * The berth-scenario bin as npm leaves it when it installs berth into an
 * application: executable. The suite's global setup rebuilt dist/ with tsc,
 * which writes files without the executable bit.
 */
function binAsInstalled(): void {
  const bin = (JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { bin: Record<string, string> }).bin['berth-scenario']!;
  chmodSync(new URL(bin, root), 0o755);
}

/** Environment of a nested test run: without the variables vitest sets for this one, so that it is a run of its own. */
function outsideVitest(): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('VITEST')));
  return { ...env, NO_COLOR: '1', FORCE_COLOR: '0' };
}

describe('README and docs/ examples run as pasted', () => {
  it('server.mjs: lobby chat relays to the others and logs closes; SIGINT closes it', async () => {
    const server = await run('server.mjs', 8081);
    await server.line(/^listening on ws:\/\/localhost:\d+\/ws$/);
    const url = `ws://127.0.0.1:${server.port}/ws`;
    const ada = await connect(url);
    const bob = await connect(url);
    expect(JSON.parse(await ada.next())).toHaveProperty('hello');
    expect(JSON.parse(await bob.next())).toHaveProperty('hello');
    ada.ws.send('hi from ada');
    expect(await bob.next()).toBe('hi from ada');
    ada.ws.close(4100, 'done');
    await server.line(/closed with 4100 "done" \(client\)$/);
    expect(ada.messages).toHaveLength(1);
    server.child.kill('SIGINT');
    expect(await server.exited).toBe(0);
    expect((await bob.closed).code).toBe(1001);
  });

  it('attach.mjs: shares an HTTP server with plain requests', async () => {
    const attached = await run('attach.mjs', 8082);
    await attached.line(/^http:\/\/localhost:\d+\/ and ws:/);
    expect(await (await fetch(`http://127.0.0.1:${attached.port}/`)).text()).toBe('hello over http\n');
    const client = await connect(`ws://127.0.0.1:${attached.port}/ws`);
    expect(await client.next()).toBe('hello over ws');
  });

  it('guarded.mjs: refuses without the token and binds the user with it', async () => {
    const guarded = await run('guarded.mjs', 8083);
    await guarded.line(/^listening on/);
    expect((await rawUpgrade(guarded.port, '/?token=wrong', { Origin: 'https://app.example' })).status).toBe(401);
    expect((await rawUpgrade(guarded.port, '/?token=secret', { Origin: 'https://evil.example' })).status).toBe(403);
    await guarded.line(/^refused: 401 unauthorized$/);
    const client = await connect(`ws://127.0.0.1:${guarded.port}/?token=secret`, { headers: { Origin: 'https://app.example' } });
    expect(await client.next()).toBe('hello ada, admin');
  });

  it('metrics.mjs: berth metrics appear in the default prom-client registry', async () => {
    const metrics = await run('metrics.mjs', 8085);
    expect(await metrics.exited).toBe(0);
    expect(metrics.output).toContain('berth_connections 0');
    expect(metrics.output).toContain('# TYPE berth_broadcast_fanout_seconds histogram');
  });

  /**
   * Runs two nodes of a cluster example (`start`, given a free PORT), connects a client to each, and
   * checks that they count the lobby together and relay between them.
   */
  async function twoNodesShareTheLobby(start: (port: string) => Promise<Running>, sizes: [RegExp, RegExp]) {
    const nodes = [];
    for (let i = 0; i < 2; i++) {
      const node = await start(String(await freePort()));
      const line = await node.line(/^node [0-9a-f]{8} on ws:\/\/localhost:\d+\/$/);
      nodes.push(`ws://127.0.0.1:${/:(\d+)\/$/.exec(line)![1]}/`);
    }
    const ada = await connect(nodes[0]!);
    expect(await ada.next()).toMatch(sizes[0]);
    const bob = await connect(nodes[1]!);
    expect(await bob.next()).toMatch(sizes[1]);
    bob.ws.send('hello from the other node');
    expect(await ada.next()).toBe('hello from the other node');
  }

  it('cluster.mjs: two nodes on one Redis share the lobby and count it together', async () => {
    // PORT as the example's comment says to run it; REDIS_URL points at the test's own Redis.
    const redis = await startRedis();
    await twoNodesShareTheLobby(
      (port) => run('cluster.mjs', 8086, { PORT: port, REDIS_URL: redis.url }),
      [/^node [0-9a-f]{8}: 1 in the lobby$/, /^node [0-9a-f]{8}: 2 in the lobby$/],
    );
  });

  it('sharded.mjs: two nodes on a Redis Cluster share the lobby and count it together', async () => {
    const cluster = await startRedisCluster();
    const rootNodes = cluster.rootNodes.map(({ url }) => url).join(',');
    await twoNodesShareTheLobby(
      (port) => run('sharded.mjs', 8097, { PORT: port, REDIS_NODES: rootNodes }),
      [/^1 in the lobby$/, /^2 in the lobby$/],
    );
  }, 60_000);

  it('nats-cluster.mjs: two nodes on one NATS share the lobby and count it together', async () => {
    const nats = await startNats();
    await twoNodesShareTheLobby(
      (port) => run('nats-cluster.mjs', 8095, { PORT: port, NATS_URL: nats.url }),
      [/^node [0-9a-f]{8}: 1 in the lobby$/, /^node [0-9a-f]{8}: 2 in the lobby$/],
    );
  });

  it('stately.mjs: the relay passes every actor on to the inspector page; SIGINT ends the process', async () => {
    const stately = await run('stately.mjs', 8088, {}, [8090]);
    await stately.line(/^berth on ws:/);
    // What the Stately page does: connect to the relay and receive what the app sends.
    const page = await connect(`ws://127.0.0.1:${stately.ports[0]}`);
    const client = await connect(`ws://127.0.0.1:${stately.port}/`);
    client.ws.close();
    await eventually(
      () => page.messages.some((text) => text.includes('"@xstate.snapshot"') && text.includes('"closed"')),
      'the connection actor closing, through the relay',
      10_000,
    );
    const types = new Set(page.messages.map((text) => (JSON.parse(text) as { type: string }).type));
    expect(types).toEqual(new Set(['@xstate.actor', '@xstate.event', '@xstate.snapshot']));
    stately.child.kill('SIGINT');
    expect(await stately.exited).toBe(0);
  });

  it('app.mjs, scenario.mjs, lobby.json and the berth-scenario command run as pasted', async () => {
    // Beside package.json, so that `berth` and `berth/testing` resolve to this package as they would in an app.
    const dir = mkdtempSync(join(fileURLToPath(root), '.readme-'));
    try {
      writeFileSync(join(dir, 'app.mjs'), example('app.mjs'));
      writeFileSync(join(dir, 'scenario.mjs'), example('scenario.mjs'));
      const page = section('docs/testing.md', '# Testing your app with scenarios');
      writeFileSync(join(dir, 'lobby.json'), /`lobby.json`:\n\n```json\n([\s\S]*?)```/.exec(page)![1]!);
      const command = /```sh\n(npx berth-scenario[^\n]*)\n```/.exec(page)![1]!;
      binAsInstalled();

      const scenario = await finish(spawn(process.execPath, ['scenario.mjs'], { cwd: dir, stdio: ['ignore', 'pipe', 'inherit'] }));
      expect(scenario.output).toContain('PASS a join racing a close [memory] (2 orders)');
      expect(scenario.code).toBe(0);
      const cli = await finish(spawn('sh', ['-c', command], { cwd: dir, stdio: ['ignore', 'pipe', 'inherit'] }));
      expect(cli.output).toContain('PASS lobby [memory] (1 order)');
      expect(cli.output).toContain('PASS lobby [ws] (1 order)');
      expect(cli.code).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('inspect.mjs: prints each actor’s state changes', async () => {
    const inspect = await run('inspect.mjs', 8084);
    // The supervisor starts before the server listens; connect once it does.
    await inspect.line(/^listening on/);
    expect(inspect.output).toContain('supervisor "running"');
    const client = await connect(`ws://127.0.0.1:${inspect.port}/`);
    client.ws.close();
    await inspect.line(/^[0-9a-f]{8}-1 "closed"$/);
    expect(inspect.output).toContain('supervisor "running"');
  });
  it('resume.mjs: the network drops under a berth/client, it resumes, and every message arrives once, in order', async () => {
    const example = await run('resume.mjs', 8094, {}, [8095]);
    expect(await example.exited).toBe(0);
    expect(example.output).toEqual(['resumed, recovered: true', 'one, two, three, four']);
  }, 20_000);

  it('client.mjs: a berth/client connects, gets a room message with its offset, a reply, and closes', async () => {
    const example = await run('client.mjs', 8093);
    expect(await example.exited).toBe(0);
    expect(example.output).toEqual([
      'state: open',
      'room:news #1: extra! extra!',
      'you asked for the time',
      'state: closing',
      'state: closed',
    ]);
  }, 20_000);

  it('rooms.mjs: the close event names the rooms left, and each hears of it', async () => {
    const rooms = await run('rooms.mjs', 8091);
    await rooms.line(/^listening on/);
    const url = `ws://127.0.0.1:${rooms.port}/`;
    const ada = await connect(url);
    const bob = await connect(url);
    const adaJoined = JSON.parse(await ada.next()) as { id: string; rooms: string[] };
    expect(adaJoined.rooms).toEqual(['lobby', `private-${adaJoined.id}`]);
    await bob.next();
    ada.ws.close();
    expect(await bob.next()).toBe(`${adaJoined.id} left lobby`);
    // Nobody is left in ada's private room to hear of it: the next thing bob hears is the next close.
    const cy = await connect(url);
    const cyJoined = JSON.parse(await cy.next()) as { id: string };
    cy.ws.close();
    expect(await bob.next()).toBe(`${cyJoined.id} left lobby`);
    expect(bob.messages).toHaveLength(3);
  });

  it('attach-timeouts.mjs: a trickled upgrade is cut after headersTimeout, an open WebSocket outlives requestTimeout', async () => {
    const attached = await run('attach-timeouts.mjs', 8089);
    await attached.line(/^listening on ws:/);
    const client = await connect(`ws://127.0.0.1:${attached.port}/ws`);
    expect(await client.next()).toBe('hello');
    // A plain request begun after the WebSocket opened, whose body trickles in: only requestTimeout cuts it.
    const request = await trickledRequest(attached.port);
    // Two of its bytes later, more than the server's one check a second apart from it: an upgrade whose headers never end.
    await request.sent(2);
    const upgrade = halfSentUpgrade(attached.port, '/ws');
    // Cut by headersTimeout (5 s), not requestTimeout (10 s): before the request begun earlier is.
    const first = await Promise.race([upgrade.then(() => 'upgrade'), request.closed.then(() => 'request')]);
    expect(first).toBe('upgrade');
    expect(await upgrade).toMatch(/^HTTP\/1\.1 408 /);
    await request.closed;
    // requestTimeout has passed for every request begun before that one, the upgrade that opened the WebSocket
    // among them: the WebSocket still answers a ping.
    expect(await pingOrClose(client.ws)).toBe('pong');
    expect(client.ws.readyState).toBe(client.ws.OPEN);
  }, 30_000);

  it('reconnect.mjs: prints the catalog’s advice for three codes', async () => {
    const reconnect = await run('reconnect.mjs', null);
    expect(await reconnect.exited).toBe(0);
    expect(reconnect.output).toEqual(['true false false']);
  });

  it('errors.mjs: a failing handler closes its connection with 1011 and is reported with its code', async () => {
    const errors = await run('errors.mjs', 8092);
    await errors.line(/^listening on/);
    const client = await connect(`ws://127.0.0.1:${errors.port}/`);
    client.ws.send('boom');
    expect((await client.closed).code).toBe(1011);
    await errors.line(/^ERR_HANDLER_FAILED [0-9a-f]{8}-1 .*the handler failed/, errors.errors);
  });

  it('compression.mjs: a client that offers permessage-deflate gets the lobby compressed; one that does not, plain', async () => {
    const server = await run('compression.mjs', 8100);
    await server.line(/^compressing lobby on ws:/);
    const url = `ws://127.0.0.1:${server.port}/`;
    const deflating = await connect(url, { perMessageDeflate: true });
    const plain = await connect(url, { perMessageDeflate: false });
    expect(deflating.ws.extensions).toBe('permessage-deflate');
    expect(plain.ws.extensions).toBe('');
    const message = JSON.stringify({ say: 'hello '.repeat(100) });
    plain.ws.send(message);
    expect(await deflating.next()).toBe(message);
    expect(await plain.next()).toBe(message);
  });

  it('memory-cluster.mjs: two runtimes on one bus are one cluster', async () => {
    const cluster = await run('memory-cluster.mjs', 8093, {}, [8094]);
    await cluster.line(/^2 nodes: ws:/);
    const first = await connect(`ws://127.0.0.1:${cluster.port}/`);
    const second = await connect(`ws://127.0.0.1:${cluster.ports[0]}/`);
    second.ws.send('from the second node');
    expect(await first.next()).toBe('from the second node');
    expect(await second.next()).toBe('from the second node');
  });

  it('my-adapter.test.mjs: the shipped conformance suite passes under vitest in a project of its own', async () => {
    // Beside package.json, so that `berth` resolves to this package; with a vitest config of its own
    // (the defaults) in place of berth's, as an application's project would have.
    const dir = mkdtempSync(join(fileURLToPath(root), '.readme-'));
    try {
      writeFileSync(join(dir, 'my-adapter.test.mjs'), example('my-adapter.test.mjs'));
      writeFileSync(join(dir, 'vitest.config.mjs'), 'export default {};\n');
      const command = /and `(npx vitest run my-adapter\.test\.mjs)`/.exec(section('docs/adapters.md', '## Run the conformance suite'))![1]!;
      const child = spawn('sh', ['-c', command], { cwd: dir, env: outsideVitest(), stdio: ['ignore', 'pipe', 'inherit'] });
      const result = await finish(child);
      expect(result.output).toMatch(/Tests\s+\d+ passed/);
      expect(result.output).not.toMatch(/failed|skipped/);
      expect(result.code).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
