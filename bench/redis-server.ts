/**
 * A private `redis-server` for one cluster run: a free loopback port, no
 * persistence, killed with the run (and with the orchestrator).
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { adopt, PhaseError } from './children.js';
import { HOST } from './protocol.js';

export interface RedisServer {
  readonly url: string;
  stop(): Promise<void>;
}

export async function startRedisServer(): Promise<RedisServer> {
  const port = await new Promise<number>((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, HOST, () => {
      const { port: free } = probe.address() as { port: number };
      probe.close(() => resolve(free));
    });
  });
  const child = spawn('redis-server', ['--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  adopt(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    let output = '';
    child.once('error', (error) => reject(new PhaseError(`redis-server: ${error.message} (is redis-server installed?)`)));
    child.once('exit', (code) => reject(new PhaseError(`redis-server exited with ${code}: ${output.slice(-300)}`)));
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) resolve();
    });
  });
  child.stdout!.resume();
  return {
    url: `redis://${HOST}:${port}`,
    stop: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}
