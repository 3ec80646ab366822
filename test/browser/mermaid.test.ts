import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { renderAll } from '../../scripts/diagrams.js';
import { runScenario } from '../../src/testing/index.js';
import { headlessChromium } from '../helpers/browser.js';
import app from '../scenarios/app.js';

const MERMAID = fileURLToPath(new URL('../../node_modules/mermaid/dist/mermaid.min.js', import.meta.url));
const root = new URL('../../', import.meta.url);

/** mermaid.parse needs a DOM (DOMPurify), so it runs in the headless browser, from node_modules: no network. */
async function parseInBrowser(texts: readonly string[]): Promise<Array<{ ok: boolean; type?: string; error?: string }>> {
  const page = await (await headlessChromium()).newPage();
  try {
    await page.setContent('<!doctype html><title>mermaid</title>');
    await page.addScriptTag({ path: MERMAID });
    return await page.evaluate(
      async (all) => {
        const mermaid = (globalThis as unknown as { mermaid: { parse(text: string): Promise<{ diagramType: string }> } }).mermaid;
        const out = [];
        for (const text of all) {
          try {
            out.push({ ok: true, type: (await mermaid.parse(text)).diagramType });
          } catch (error) {
            out.push({ ok: false, error: String((error as Error).message ?? error) });
          }
        }
        return out;
      },
      [...texts],
    );
  } finally {
    await page.close();
  }
}

describe('diagrams/ passes mermaid.parse', () => {
  it('every committed .mmd parses as a state diagram, and a broken one does not', async () => {
    const files = [...renderAll().keys()].filter((path) => path.endsWith('.mmd'));
    expect(files.length).toBeGreaterThanOrEqual(2);
    const texts = files.map((path) => readFileSync(new URL(path, root), 'utf8'));
    // The check must be able to fail: a transition to nowhere is a syntax error.
    const results = await parseInBrowser([...texts, 'stateDiagram-v2\n  a --> : oops\n']);
    expect(results.slice(0, -1)).toEqual(files.map(() => ({ ok: true, type: 'stateDiagram' })));
    expect(results.at(-1)!.ok).toBe(false);
  });
});

describe('scenario timelines pass mermaid.parse', () => {
  it('the sequence diagram of a failed scenario, with every kind of entry, parses', async () => {
    const result = await runScenario(
      {
        name: 'timeline: all kinds',
        steps: [
          { connect: 'ada' },
          { connect: 'bob', user: 'bob' },
          { send: 'ada', json: { join: 'lobby' } },
          { expect: 'ada', json: { joined: 'lobby' } },
          { pause: 'bob' },
          { resume: 'bob' },
          { broadcast: { room: 'lobby', text: 'a; b: #c' } },
          { advance: 10 },
          { drop: 'bob' },
          { close: 'ada', code: 4100, reason: 'bye' },
          { expect: 'ada', text: 'never', timeoutMs: 200 },
        ],
      },
      { app },
    );
    expect(result.passed).toBe(false);
    const [parsed] = await parseInBrowser([result.timeline.toMermaid(result.name)]);
    expect(parsed).toEqual({ ok: true, type: 'sequence' });
  });
});
