import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { startDemo, type Demo } from '../demo/server.js';
import { connect, eventually } from './helpers/client.js';
import { freePort } from '../bench/redis-process.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

let demo: Demo | undefined;
afterEach(async () => {
  await demo?.close();
  demo = undefined;
});

/** Starts and closes a demo in a process of its own; resolves with its exit code once it ends by itself. */
function startAndClose(options: string): Promise<number | null> {
  const script = `import { startDemo } from './demo/server.ts';
const demo = await startDemo(${options});
await demo.close();
console.log('closed');`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

describe('demo inspection (opt-in Stately relay)', () => {
  it('with statelyInspectorPort, every actor reaches the relay, as the Stately page would see it', async () => {
    const relayPort = await freePort();
    demo = await startDemo({ port: 0, host: '127.0.0.1', statelyInspectorPort: relayPort });
    expect(demo.inspectorUrl).toBe(`http://localhost:${relayPort}`);
    const page = await connect(`ws://127.0.0.1:${relayPort}`);
    const client = await connect(`ws://127.0.0.1:${demo.port}/ws?name=ada`);
    const { id } = JSON.parse(await client.next()) as { id: string };
    client.ws.close();
    const snapshotsOf = (actorId: string) =>
      page.messages
        .map((text) => JSON.parse(text) as { type: string; snapshot?: { value: unknown; context?: { id?: string } } })
        .filter((event) => event.type === '@xstate.snapshot' && event.snapshot?.context?.id === actorId)
        .map((event) => JSON.stringify(event.snapshot!.value));
    await eventually(() => snapshotsOf(id).includes('"closed"'), 'the connection actor closing at the relay', 10_000);
    expect(snapshotsOf(id)[0]).toBe('"open"');
  });

  it('a demo ends by itself once closed, with the relay and without: nothing keeps a timer alive', async () => {
    expect(await startAndClose(`{ port: 0, host: '127.0.0.1' }`)).toBe(0);
    expect(await startAndClose(`{ port: 0, host: '127.0.0.1', statelyInspectorPort: ${await freePort()} }`)).toBe(0);
  }, 30_000);
});
