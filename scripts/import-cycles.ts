/**
 * Fails on any import circle in `src/` or `machines/`, counting type-only
 * imports too: eslint-plugin-import-x's `no-cycle` skips `import type`, and a
 * circle of types is still two files that cannot be read one without the other.
 *
 * Usage: tsx scripts/import-cycles.ts [folder …]   [default src machines]
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

const root = path.resolve(import.meta.dirname, '..');
const folders = process.argv.length > 2 ? process.argv.slice(2) : ['src', 'machines'];

function filesUnder(folder: string): string[] {
  return readdirSync(folder).flatMap((name) => {
    const file = path.join(folder, name);
    if (statSync(file).isDirectory()) return filesUnder(file);
    return file.endsWith('.ts') ? [file] : [];
  });
}

const files = folders.flatMap((folder) => filesUnder(path.join(root, folder)));
const known = new Set(files);
const imports = new Map<string, string[]>();
for (const file of files) {
  const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
  imports.set(
    file,
    importedFiles
      .map((imported) => imported.fileName)
      .filter((name) => name.startsWith('.'))
      .map((name) => path.resolve(path.dirname(file), name).replace(/\.js$/, '.ts'))
      .filter((target) => known.has(target)),
  );
}

// Tarjan's strongly connected components: every component of more than one file is a circle.
let index = 0;
const indexOf = new Map<string, number>();
const lowOf = new Map<string, number>();
const stack: string[] = [];
const onStack = new Set<string>();
const circles: string[][] = [];

function visit(file: string): void {
  indexOf.set(file, index);
  lowOf.set(file, index);
  index++;
  stack.push(file);
  onStack.add(file);
  for (const target of imports.get(file) ?? []) {
    if (!indexOf.has(target)) {
      visit(target);
      lowOf.set(file, Math.min(lowOf.get(file)!, lowOf.get(target)!));
    } else if (onStack.has(target)) {
      lowOf.set(file, Math.min(lowOf.get(file)!, indexOf.get(target)!));
    }
  }
  if (lowOf.get(file) !== indexOf.get(file)) return;
  const component: string[] = [];
  let member: string;
  do {
    member = stack.pop()!;
    onStack.delete(member);
    component.push(member);
  } while (member !== file);
  if (component.length > 1 || (imports.get(file) ?? []).includes(file)) circles.push(component);
}

for (const file of files) if (!indexOf.has(file)) visit(file);

if (circles.length > 0) {
  for (const circle of circles) {
    console.error(
      `import circle: ${circle
        .map((file) => path.relative(root, file))
        .sort()
        .join(' ↔ ')}`,
    );
  }
  process.exit(1);
}
console.log(`no import circle among ${files.length} files in ${folders.join(', ')}`);
