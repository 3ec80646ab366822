/**
 * `npm start`: runs the demo chat until SIGINT or SIGTERM.
 *
 * Environment: `PORT` [default 8080], `HOST` [default all interfaces],
 * `REDIS_URL` [default none]: join a cluster of demos over that Redis;
 * `BERTH_INSPECT=1` [default off]: relay every actor to the Stately inspector
 * (port `BERTH_INSPECT_PORT`, default 8099).
 */
import { startDemo } from './server.js';

function portFromEnvironment(value: string | undefined, fallback = 8080, name = 'PORT'): number {
  if (value === undefined || value.trim() === '') return fallback;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`berth demo: ${name} must be an integer within 0–65535, got ${JSON.stringify(value)}`);
    process.exit(2);
  }
  return port;
}

const demo = await startDemo({
  port: portFromEnvironment(process.env.PORT),
  host: process.env.HOST || undefined,
  redisUrl: process.env.REDIS_URL || undefined,
  ...(process.env.BERTH_INSPECT === '1' && {
    statelyInspectorPort: portFromEnvironment(process.env.BERTH_INSPECT_PORT, 8099, 'BERTH_INSPECT_PORT'),
  }),
}).catch((error: unknown) => {
  // EADDRINUSE and friends deserve one readable line, not a stack trace.
  console.error(`berth demo: cannot start: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
const ws = new URL('ws', demo.url);
ws.protocol = 'ws:';
const cluster = process.env.REDIS_URL ? `, cluster node ${demo.runtime.nodeId} on ${process.env.REDIS_URL}` : '';
console.log(`berth demo: ${demo.url} (WebSocket ${ws.href}?name=<you>, health /healthz, actors live at /inspect${cluster})`);
if (demo.inspectorUrl !== undefined) console.log(`berth demo: Stately inspector relay at ${demo.inspectorUrl}`);

let stopping = false;
function stop(signal: NodeJS.Signals): void {
  if (stopping) {
    // A second signal means the person is done waiting for clients to say goodbye.
    console.log(`berth demo: ${signal} again, exiting now`);
    process.exit(1);
  }
  stopping = true;
  console.log(`berth demo: ${signal}, closing connections…`);
  demo.close().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error('berth demo: close failed', error);
      process.exit(1);
    },
  );
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
