import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect, type TestClient } from '../helpers/client.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});

const demos: ChildProcess[] = [];
afterEach(() => {
  for (const demo of demos.splice(0)) process.kill(-demo.pid!, 'SIGKILL');
});

/** The commands of the README's "Running a cluster": `NAME=value … npm start`, one per line. */
function readmeClusterCommands(): Array<Record<string, string>> {
  const readme = readFileSync(new URL('README.md', `file://${ROOT}/`), 'utf8');
  const section = readme.slice(readme.indexOf('## Running a cluster'));
  const block = /```sh\n([\s\S]*?)```/.exec(section)![1]!;
  return block
    .trim()
    .split('\n')
    .map((line) => {
      const words = line.trim().split(/\s+/);
      expect(words.slice(-2)).toEqual(['npm', 'start']);
      return Object.fromEntries(words.slice(0, -2).map((word) => word.split('=') as [string, string]));
    });
}

/**
 * Runs one README command as written, except that the port is a free one (0)
 * and REDIS_URL is the test's own Redis; resolves with the page's URL it prints.
 */
function startDemoNode(env: Record<string, string>): Promise<string> {
  expect(Object.keys(env).sort()).toEqual(['PORT', 'REDIS_URL']);
  const child = spawn('npm', ['start', '--silent'], {
    cwd: ROOT,
    env: { ...process.env, ...env, PORT: '0', HOST: '127.0.0.1', REDIS_URL: redis.url },
    stdio: ['ignore', 'pipe', 'inherit'],
    detached: true, // its own process group: npm, sh and node die together
  });
  demos.push(child);
  return new Promise((resolve, reject) => {
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /berth demo: (http:\/\/\S+) .*cluster node/.exec(output);
      if (match) resolve(match[1]!);
    });
    child.once('exit', (code) => reject(new Error(`demo exited with ${code}: ${output}`)));
  });
}

async function chat(page: string, name: string): Promise<{ client: TestClient; next(): Promise<any> }> {
  const url = new URL('ws', page);
  url.protocol = 'ws:';
  url.searchParams.set('name', name);
  const client = await connect(url.href);
  const next = async () => JSON.parse(await client.next());
  expect(await next()).toMatchObject({ type: 'welcome', name });
  return { client, next };
}

describe('demo as a cluster node (REDIS_URL)', () => {
  it("the README's two `npm start` commands make two nodes that share rooms, members and whispers", async () => {
    const commands = readmeClusterCommands();
    expect(commands).toHaveLength(2);
    const [first, second] = (await Promise.all(commands.map((env) => startDemoNode(env)))) as [string, string];
    const ada = await chat(first, 'ada');
    const bob = await chat(second, 'bob');
    ada.client.ws.send(JSON.stringify({ type: 'join', room: 'lobby' }));
    expect(await ada.next()).toEqual({ type: 'joined', room: 'lobby', members: ['ada'] });
    bob.client.ws.send(JSON.stringify({ type: 'join', room: 'lobby' }));
    // bob's node lists ada, who is on the other node. ada's own join announcement crosses Redis
    // while bob joins, so it may reach bob before or after his `joined`, or not at all (if it
    // arrived before bob was in the room): nodes agree eventually, not in lockstep.
    const bobNext = async () => {
      const reply = await bob.next();
      return reply.type === 'presence' && reply.name === 'ada' && reply.event === 'join' ? bob.next() : reply;
    };
    expect(await bobNext()).toEqual({ type: 'joined', room: 'lobby', members: ['ada', 'bob'] });
    expect(await ada.next()).toEqual({ type: 'presence', room: 'lobby', name: 'bob', id: expect.any(String), event: 'join' });

    bob.client.ws.send(JSON.stringify({ type: 'say', room: 'lobby', text: 'hi from the second node' }));
    expect(await ada.next()).toMatchObject({ type: 'said', room: 'lobby', from: 'bob', text: 'hi from the second node' });
    expect(await bobNext()).toMatchObject({ type: 'said', room: 'lobby', from: 'bob', text: 'hi from the second node' });
    ada.client.ws.send(JSON.stringify({ type: 'whisper', to: 'bob', text: 'psst' }));
    expect(await bobNext()).toEqual({ type: 'whispered', from: 'ada', text: 'psst' });

    const health = (await (await fetch(new URL('healthz', first))).json()) as { cluster: { linkUp: boolean } };
    expect(health.cluster.linkUp).toBe(true);
  }, 30_000);
});
