/**
 * Launching a private `redis-server` (no persistence, loopback only) and
 * finding a free port: shared by the benchmark's cluster runs and the test
 * suite, so it has no side effects of its own.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

/** A loopback port that was free a moment ago. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts `redis-server` on `port` and resolves once it accepts connections;
 * `spawned` sees the process at once, so whoever tracks processes can kill it
 * even if it never becomes ready. `extra` arguments are passed on (a cluster
 * node's `--cluster-enabled yes`, say).
 */
export function launchRedisServer(
  port: number,
  host = '127.0.0.1',
  spawned: (child: ChildProcess) => void = () => {},
  extra: readonly string[] = [],
): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', host, '--save', '', '--appendonly', 'no', ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  spawned(child);
  return new Promise((resolve, reject) => {
    let output = '';
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) {
        child.stdout!.off('data', onData);
        child.stdout!.resume();
        resolve(child);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.resume();
    child.once('error', (error) => reject(new Error(`redis-server: ${error.message} (is redis-server installed?)`)));
    child.once('exit', (code) => reject(new Error(`redis-server on port ${port} exited with ${code}: ${output.slice(-500)}`)));
  });
}
