import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, eventually } from './helpers/client.js';
import { rawUpgrade } from './helpers/raw.js';
import { freePort } from '../bench/redis-process.js';
import { startRedis } from './helpers/redis.js';

const root = new URL('../', import.meta.url);
const readme = readFileSync(new URL('README.md', root), 'utf8');

/** The README's `js` example whose first line is `// <name>`. */
function example(name: string): string {
  const blocks = [...readme.matchAll(/```js\n([\s\S]*?)```/g)].map((match) => match[1]!);
  const found = blocks.find((block) => block.startsWith(`// ${name}`));
  if (found === undefined) throw new Error(`README has no example ${name}`);
  return found;
}

interface Running {
  readonly output: string[];
  readonly exited: Promise<number | null>;
  line(pattern: RegExp): Promise<string>;
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

/** Runs an example as pasted — `berth` resolves to this package — with its fixed port swapped for a free one. */
async function run(
  name: string,
  fixedPort: number,
  env: Record<string, string> = {},
  otherPorts: number[] = [],
): Promise<Running & { port: number; ports: number[] }> {
  const port = await freePort();
  let code = example(name).replaceAll(String(fixedPort), String(port));
  const ports: number[] = [];
  for (const other of otherPorts) {
    ports.push(await freePort());
    code = code.replaceAll(String(other), String(ports.at(-1)));
  }
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  running.push(child);
  const output: string[] = [];
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => output.push(...chunk.split('\n').filter(Boolean)));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const line = async (pattern: RegExp) => {
    await eventually(() => output.some((text) => pattern.test(text)), `output matching ${pattern}`, 15_000);
    return output.find((text) => pattern.test(text))!;
  };
  return { output, exited, line, child, port, ports };
}

describe('README examples run as pasted', () => {
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

  it('cluster.mjs: two nodes on one Redis share the lobby and count it together', async () => {
    const redis = await startRedis();
    const nodes = [];
    for (let i = 0; i < 2; i++) {
      // PORT as the example's comment says to run it; REDIS_URL points at the test's own Redis.
      const node = await run('cluster.mjs', 8086, { PORT: String(await freePort()), REDIS_URL: redis.url });
      const line = await node.line(/^node [0-9a-f]{8} on ws:\/\/localhost:\d+\/$/);
      nodes.push(`ws://127.0.0.1:${/:(\d+)\/$/.exec(line)![1]}/`);
    }
    const ada = await connect(nodes[0]!);
    expect(await ada.next()).toMatch(/^node [0-9a-f]{8}: 1 in the lobby$/);
    const bob = await connect(nodes[1]!);
    expect(await bob.next()).toMatch(/^node [0-9a-f]{8}: 2 in the lobby$/);
    bob.ws.send('hello from the other node');
    expect(await ada.next()).toBe('hello from the other node');
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
      const section = readme.slice(readme.indexOf('## Testing your app with scenarios'));
      writeFileSync(join(dir, 'lobby.json'), /`lobby.json`:\n\n```json\n([\s\S]*?)```/.exec(section)![1]!);
      const command = /```sh\n(npx berth-scenario[^\n]*)\n```/.exec(section)![1]!;

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
});
