/**
 * What each entry point exports is what docs/api.md's "Conventions" table
 * lists for it, no more and no less, and every export has a doc comment: an
 * internal that leaks into an entry point, or an export nobody described,
 * fails here.
 */
import { readFileSync } from 'node:fs';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = new URL('../', import.meta.url);
const ENTRY_POINTS: Record<string, string> = {
  berth: 'src/index.ts',
  'berth/client': 'src/client.ts',
  'berth/redis': 'src/redis.ts',
  'berth/nats': 'src/nats.ts',
  'berth/testing': 'src/testing/index.ts',
};

const files = Object.values(ENTRY_POINTS).map((file) => new URL(file, ROOT).pathname);
const program = ts.createProgram(files, {
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  target: ts.ScriptTarget.ES2022,
  strict: true,
  noEmit: true,
});
const checker = program.getTypeChecker();

/** Every name an entry point exports, with whether its declaration has a doc comment. */
function exportsOf(file: string): Map<string, boolean> {
  const module = checker.getSymbolAtLocation(program.getSourceFile(new URL(file, ROOT).pathname)!)!;
  return new Map(
    checker.getExportsOfModule(module).map((exported) => {
      const target = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
      return [exported.name, target.getDocumentationComment(checker).length > 0];
    }),
  );
}

/** The names docs/api.md's table lists for an entry point. */
function documented(entry: string): string[] {
  const page = readFileSync(new URL('docs/api.md', ROOT), 'utf8');
  const row = page.split('\n').find((line) => line.startsWith(`| \`${entry}\` |`));
  if (row === undefined) throw new Error(`docs/api.md lists no exports of ${entry}`);
  return [...row.slice(`| \`${entry}\` |`.length).matchAll(/`([A-Za-z_]\w*)`/g)].map((match) => match[1]!);
}

describe('what each entry point exports', () => {
  for (const [entry, file] of Object.entries(ENTRY_POINTS)) {
    it(`${entry} exports exactly what docs/api.md lists for it, each with a doc comment`, () => {
      const exported = exportsOf(file);
      expect([...exported.keys()].sort()).toEqual([...new Set(documented(entry))].sort());
      expect([...exported].filter(([, hasDoc]) => !hasDoc).map(([name]) => name)).toEqual([]);
    });
  }
});
