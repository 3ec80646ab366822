import { afterEach } from 'vitest';
import { createRuntime, type Connection, type Runtime, type RuntimeOptions } from '../../src/index.js';

const running = new Set<Runtime<any>>();

afterEach(async () => {
  await Promise.all([...running].map((runtime) => runtime.close({ timeoutMs: 1000 })));
  running.clear();
});

/** A standalone runtime on a free loopback port, closed after the test. */
export async function startRuntime<TData = unknown>(
  options: RuntimeOptions<TData> = {},
): Promise<{ runtime: Runtime<TData>; url: string; port: number }> {
  const runtime = createRuntime<TData>({ port: 0, host: '127.0.0.1', ...options });
  running.add(runtime);
  await runtime.ready;
  const port = runtime.address()!.port;
  return { runtime, url: `ws://127.0.0.1:${port}${options.path ?? '/'}`, port };
}

/** The next connection the runtime registers. */
export function nextConnection<TData>(runtime: Runtime<TData>): Promise<Connection<TData>> {
  return new Promise((resolve) => runtime.on('connection', resolve));
}

/**
 * Waits for the next tick of the runtime's event-loop lag monitors (libuv timers every 10 ms, started
 * with the runtime). They cannot be polled: each read empties its reader's window and restarts its
 * measure. But libuv fires timers in the order they are due, and theirs is due at most 10 ms after
 * the turn this is called in began, so a timer of ours due 11 ms after it fires after their tick.
 */
export function lagMonitorTick(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 11));
}

/** Every connection the runtime registers from now on, in order. */
export function track<TData>(runtime: Runtime<TData>): Array<Connection<TData>> {
  const seen: Array<Connection<TData>> = [];
  runtime.on('connection', (connection) => void seen.push(connection));
  return seen;
}

/** Cuts a connection's socket from the server's side, without a closing handshake: a drop. */
export function terminate(connection: Connection<unknown>): void {
  (connection as unknown as { socket: { terminate(): void } }).socket.terminate();
}
