import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function cli(args: string[]): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/testing/cli.ts', ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, output })));
}

describe('berth-scenario (the CLI)', () => {
  it('runs scenario files on both transports and says PASS', async () => {
    const { code, output } = await cli([
      '--app',
      'test/scenarios/app.ts',
      'test/scenarios/close-codes.json',
      'test/scenarios/join-race.json',
    ]);
    expect(output).toContain('PASS close code and reason are not lost [memory] (1 order)');
    expect(output).toContain('PASS room join racing a disconnect [ws] (6 orders)');
    expect(output).toContain('4 passed, 0 failed');
    expect(code).toBe(0);
  });

  it('reports a failing order with how to replay it, writes its sequence diagram, and exits 1', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'berth-scenario-'));
    const file = path.join(dir, 'first-said.json');
    writeFileSync(
      file,
      JSON.stringify({
        name: 'first come, first said',
        transports: ['memory'],
        steps: [
          { connect: 'ada' },
          { connect: 'carol' },
          { send: 'carol', json: { join: 'lobby' } },
          { expect: 'carol', json: { joined: 'lobby' } },
          {
            concurrent: [
              { send: 'ada', json: { say: 'lobby', text: 'first' } },
              { send: 'ada', json: { say: 'lobby', text: 'second' } },
            ],
          },
          { expect: 'carol', json: { said: 'first' } },
        ],
      }),
    );
    const { code, output } = await cli(['--app', 'test/scenarios/app.ts', '--mermaid', dir, file]);
    expect(code).toBe(1);
    expect(output).toContain('FAIL first come, first said [memory] (2 orders)');
    expect(output).toContain('order 0:1,0 (replay: --order 0:1,0)');
    expect(output).toMatch(/carol\n.*connect/);
    const diagram = readFileSync(path.join(dir, 'first-said.memory.mmd'), 'utf8');
    expect(diagram.split('\n')[0]).toBe('sequenceDiagram');
    expect(diagram).toContain('participant c_carol as carol');

    const replay = await cli(['--app', 'test/scenarios/app.ts', '--order', '0:0,1', file]);
    expect(replay.output).toContain('PASS first come, first said [memory] (1 order)');
    expect(replay.code).toBe(0);
  });

  it('refuses bad usage with exit code 2', async () => {
    expect((await cli(['test/scenarios/churn.json'])).code).toBe(2);
    expect((await cli(['--app', 'test/scenarios/app.ts', '--transport', 'pigeon', 'x.json'])).output).toContain('unknown transport pigeon');
  });
});
