import { spawn, type ChildProcess } from 'node:child_process';
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
  for (const demo of demos.splice(0)) demo.kill('SIGKILL');
});

/** `npm start`'s command with PORT=0 and REDIS_URL; resolves with the page's URL it prints. */
function startDemoNode(): Promise<string> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'demo/main.ts'], {
    cwd: ROOT,
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', REDIS_URL: redis.url },
    stdio: ['ignore', 'pipe', 'inherit'],
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
  const client = await connect(url.href);
  const next = async () => JSON.parse(await client.next());
  expect((await next()).type).toBe('welcome');
  client.ws.send(JSON.stringify({ type: 'hello', name }));
  expect(await next()).toEqual({ type: 'hello', name });
  return { client, next };
}

describe('demo as a cluster node (REDIS_URL)', () => {
  it('two demo processes on one Redis share rooms, members and whispers', async () => {
    const [first, second] = await Promise.all([startDemoNode(), startDemoNode()]);
    const ada = await chat(first, 'ada');
    const bob = await chat(second, 'bob');
    ada.client.ws.send(JSON.stringify({ type: 'join', room: 'lobby' }));
    expect(await ada.next()).toEqual({ type: 'joined', room: 'lobby', members: ['ada'] });
    bob.client.ws.send(JSON.stringify({ type: 'join', room: 'lobby' }));
    // bob's node lists ada, who is on the other node.
    expect(await bob.next()).toEqual({ type: 'joined', room: 'lobby', members: ['ada', 'bob'] });
    expect(await ada.next()).toEqual({ type: 'presence', room: 'lobby', name: 'bob', event: 'join' });

    bob.client.ws.send(JSON.stringify({ type: 'say', room: 'lobby', text: 'hi from the second node' }));
    for (const person of [ada, bob]) {
      expect(await person.next()).toMatchObject({ type: 'said', room: 'lobby', from: 'bob', text: 'hi from the second node' });
    }
    ada.client.ws.send(JSON.stringify({ type: 'whisper', to: 'bob', text: 'psst' }));
    expect(await bob.next()).toEqual({ type: 'whispered', from: 'ada', text: 'psst' });

    const health = (await (await fetch(new URL('healthz', first))).json()) as { cluster: { linkUp: boolean } };
    expect(health.cluster.linkUp).toBe(true);
  }, 30_000);
});
