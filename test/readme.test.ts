import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { closeCodeCatalog } from '../src/connection/close-codes.js';
import { ErrorCode } from '../src/util/errors.js';

const root = new URL('../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');
const readme = read('README.md');
const docs = readdirSync(new URL('docs/', root)).flatMap((file) => (file.endsWith('.md') ? [`docs/${file}`] : []));
/** Every page an example or a link may be on: the README, docs/ and the benchmark's README. */
const pages = new Map(['README.md', ...docs, 'bench/README.md'].map((page) => [page, read(page)]));

/** The fenced blocks of a page in one language, in order. */
const blocks = (text: string, language: string) =>
  [...text.matchAll(new RegExp(`\`\`\`${language}\\n([\\s\\S]*?)\`\`\``, 'g'))].map((m) => m[1]!);

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
const anchor = (heading: string) =>
  heading
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');

describe('README stays true', () => {
  it('gives exactly the two quick-start commands', () => {
    expect(readme).toContain('```sh\nnpm install && npm start\n```');
    expect(readme).toContain('```sh\nnpm install && npm test\n```');
  });

  it('is short: reference lives in docs/', () => {
    expect(readme.split('\n').length).toBeLessThanOrEqual(300);
  });

  it('keeps the benchmark markers where bench/report.ts writes the table', () => {
    const start = readme.indexOf('<!-- bench:start -->');
    expect(start).toBeGreaterThan(-1);
    expect(readme.indexOf('<!-- bench:end -->')).toBeGreaterThan(start);
  });

  it('gives the same cluster commands as docs/cluster.md (test/cluster/demo-cluster.test.ts runs the README’s)', () => {
    const commands = (text: string, heading: string) => blocks(text.slice(text.indexOf(heading)), 'sh')[0];
    expect(commands(readme, '## Running a cluster')).toBeDefined();
    expect(commands(pages.get('docs/cluster.md')!, '## Two demo nodes')).toBe(commands(readme, '## Running a cluster'));
  });
});

describe('docs/ stays true', () => {
  it('lists every close code of the catalog with its meaning', () => {
    const page = pages.get('docs/close-codes.md')!;
    for (const info of closeCodeCatalog) {
      const row = `| ${info.code} | \`${info.name}\` | ${info.meaning} | ${info.reconnect ? 'yes' : 'no'} |`;
      expect(page).toContain(row);
    }
  });

  it('lists every error code', () => {
    const page = pages.get('docs/errors.md')!;
    for (const code of Object.values(ErrorCode)) expect(page).toContain(`| \`${code}\` |`);
  });

  it('the index links every page of docs/', () => {
    const index = pages.get('docs/README.md')!;
    for (const page of docs) if (page !== 'docs/README.md') expect(index).toContain(`](${page.slice('docs/'.length)})`);
    for (const page of docs) expect(readme).toContain(`](${page})`);
  });

  it('every relative link points to a file (and a heading) that exists', () => {
    for (const [page, text] of pages) {
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(target!)) continue;
        const [path, hash] = target!.split('#') as [string, string | undefined];
        const file = path === '' ? new URL(page, root) : new URL(path, new URL(page, root));
        expect(existsSync(file), `${page} links to ${target}`).toBe(true);
        if (hash === undefined || !file.pathname.endsWith('.md')) continue;
        const headings = [...readFileSync(file, 'utf8').matchAll(/^#+ (.*)$/gm)].map((match) => anchor(match[1]!));
        expect(headings, `${page} links to ${target}`).toContain(hash);
      }
    }
  });

  it('names no requirement numbers: the text says what is meant', () => {
    for (const [page, text] of pages) expect(text, page).not.toMatch(/\bS\d{1,2}\b/);
  });
});

describe('every example is run as pasted', () => {
  // What test/readme-examples.test.ts hands to run() or example(): the names it runs.
  const source = read('test/readme-examples.test.ts');
  const run = new Set([...source.matchAll(/\b(?:run|example)\('([^']+\.mjs)'/g)].map((match) => match[1]!));
  const found = [...pages].flatMap(([page, text]) => blocks(text, 'js').map((code) => ({ page, first: code.split('\n')[0]! })));

  it('every js block is a named example: its first line is `// <name>.mjs`', () => {
    for (const { page, first } of found) expect(first, `a js block in ${page}`).toMatch(/^\/\/ [\w.-]+\.mjs\b/);
  });

  it('names are unique, so each name finds one example', () => {
    const names = found.map(({ first }) => /^\/\/ ([\w.-]+\.mjs)/.exec(first)?.[1]);
    expect(new Set(names).size).toBe(names.length);
  });

  it('every named example is run by test/readme-examples.test.ts', () => {
    for (const { page, first } of found) {
      const name = /^\/\/ ([\w.-]+\.mjs)/.exec(first)?.[1];
      expect(run, `${name} (${page}) is run by no test`).toContain(name);
    }
  });
});
