/**
 * The JavaScript modules the chat page imports, served as they are: the
 * compiled `berth/client` (`dist/`) and the browser builds of its
 * dependencies (`xstate`, `mitt`), named to the page by the import map in
 * `index.html`. Nothing is bundled; the page needs no build step.
 *
 * Only the files the import map's entries reach through static imports are
 * served, each under an exact URL read once at start; no URL is ever turned
 * into a path, so no URL can reach another file.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A served file: its body and content type. */
export interface ServedFile {
  readonly body: Buffer;
  readonly type: string;
}

/** The page's modules, and what its Content-Security-Policy must allow. */
export interface PageModules {
  /** URL path → file, every module the import map reaches and nothing else. */
  readonly files: ReadonlyMap<string, ServedFile>;
  /** The CSP source of the inline import map: `'sha256-…'`. */
  readonly importMapSource: string;
}

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);

/**
 * Where each URL prefix of the import map is read from. `berth` is this
 * repository's compiled output, so the page runs what `npm run build` made,
 * as an application importing `berth/client` would.
 */
function roots(dist: string): ReadonlyArray<{ readonly prefix: string; readonly dir: string }> {
  return [
    { prefix: '/modules/berth/', dir: dist },
    { prefix: '/modules/xstate/', dir: packageDir('xstate') },
    { prefix: '/modules/mitt/', dir: packageDir('mitt') },
  ];
}

const JAVASCRIPT = 'text/javascript; charset=utf-8';

/**
 * Reads the import map out of the page, checks that each package is mapped
 * to its browser build, and loads every module its entries import, following
 * static imports. Throws with what to do if `dist/` is missing or a module
 * cannot be found. [options.dist=the repository's dist/]
 */
export async function loadPageModules(html: string, options: { readonly dist?: string } = {}): Promise<PageModules> {
  const { text, imports } = importMapOf(html);
  const prefixes = roots(options.dist ?? join(REPO_ROOT, 'dist'));
  const fileOf = (url: string): string => {
    const root = prefixes.find(({ prefix }) => url.startsWith(prefix));
    if (root === undefined)
      throw new Error(`the chat page's import map points outside ${prefixes.map((r) => r.prefix).join(', ')}: ${url}`);
    return join(root.dir, ...url.slice(root.prefix.length).split('/'));
  };

  const client = imports.get('berth/client');
  if (client === undefined) throw new Error("the chat page's import map does not name berth/client");
  if (!existsSync(fileOf(client))) {
    throw new Error(`berth/client is not built (${relative(REPO_ROOT, fileOf(client))} is missing): run npm run build`);
  }
  for (const [name, url] of imports) {
    if (name === 'berth/client') continue;
    const expected = browserEntry(name);
    if (fileOf(url) !== expected) {
      throw new Error(`the chat page's import map gives ${name} as ${url}; its browser build is ${relative(REPO_ROOT, expected)}`);
    }
  }

  const files = new Map<string, ServedFile>();
  const pending = [...imports.values()];
  for (let url = pending.pop(); url !== undefined; url = pending.pop()) {
    if (files.has(url)) continue;
    const file = fileOf(url);
    const body = await readFile(file).catch((error: unknown) => {
      throw new Error(`a module of the chat page is missing (${relative(REPO_ROOT, file)}); run npm run build`, { cause: error });
    });
    files.set(url, { body, type: JAVASCRIPT });
    for (const specifier of staticImports(body.toString('utf8'))) {
      if (specifier.startsWith('./') || specifier.startsWith('../') || specifier.startsWith('/')) {
        pending.push(new URL(specifier, new URL(url, 'http://page')).pathname);
      } else if (!imports.has(specifier)) {
        throw new Error(`${relative(REPO_ROOT, file)} imports ${specifier}, which the chat page's import map does not name`);
      }
    }
  }
  return { files, importMapSource: `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'` };
}

/** The page's one inline import map: its exact text (what the CSP hash covers) and its entries. */
function importMapOf(html: string): { text: string; imports: ReadonlyMap<string, string> } {
  const maps = [...html.matchAll(/<script type="importmap">([\s\S]*?)<\/script>/g)];
  if (maps.length !== 1) throw new Error(`the chat page must hold one inline import map, found ${maps.length}`);
  const text = maps[0]![1]!;
  const { imports } = JSON.parse(text) as { imports?: Record<string, string> };
  return { text, imports: new Map(Object.entries(imports ?? {})) };
}

/**
 * Specifiers of a module's static `import … from`, `import '…'` and
 * `export … from` statements. Compiled and published modules start each such
 * statement on a line of its own; dynamic `import()` is not followed (the
 * client's `import('ws')` runs only where there is no global WebSocket).
 */
export function staticImports(source: string): string[] {
  const pattern = /^(?:import\s*['"]([^'"]+)['"]|import\s[^'"]*?\sfrom\s*['"]([^'"]+)['"]|export\s*[*{][^'"]*?from\s*['"]([^'"]+)['"])/gm;
  return [...source.matchAll(pattern)].map((match) => (match[1] ?? match[2] ?? match[3])!);
}

/** The installed package's directory, found from its entry (some packages do not export their package.json). */
function packageDir(name: string): string {
  let dir = dirname(require.resolve(name));
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === name) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find the directory of the ${name} package`);
    dir = parent;
  }
}

/** The file a browser should load for a package: its `exports` under `browser`, then `module`, then the `module` field. */
function browserEntry(name: string): string {
  const dir = packageDir(name);
  const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { exports?: unknown; module?: unknown };
  const rootExport =
    typeof manifest.exports === 'object' && manifest.exports !== null && '.' in manifest.exports
      ? (manifest.exports as Record<string, unknown>)['.']
      : manifest.exports;
  const target = pick(rootExport) ?? (typeof manifest.module === 'string' ? manifest.module : undefined);
  if (target === undefined) throw new Error(`the ${name} package names no browser (ESM) build`);
  return join(dir, ...target.split('/').filter((part) => part !== '.' && part !== ''));
}

function pick(conditions: unknown): string | undefined {
  if (typeof conditions === 'string') return conditions;
  if (typeof conditions !== 'object' || conditions === null) return undefined;
  for (const condition of ['browser', 'module']) {
    const found = pick((conditions as Record<string, unknown>)[condition]);
    if (found !== undefined) return found;
  }
  return undefined;
}
