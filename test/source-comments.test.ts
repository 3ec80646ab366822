import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = new URL('../', import.meta.url);
const tracked = execFileSync('git', ['ls-files'], { cwd: ROOT, encoding: 'utf8' }).trim().split('\n');

/** `name: value` spelled in a function's doc comment for a `name` the function has no parameter of. */
function strayParameters(file: string, text: string): string[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true);
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node)) {
      const names = new Set(node.parameters.map((parameter) => parameter.name.getText(source)));
      for (const doc of ts.getJSDocCommentsAndTags(node)) {
        for (const [, name] of doc.getText(source).matchAll(/`(\w+): /g)) {
          if (!names.has(name!))
            found.push(`${file}: ${node.name?.getText(source) ?? '(anonymous)'} documents \`${name}:\`, which it has no parameter of`);
        }
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

describe('comments say what they mean', () => {
  it('no requirement numbers that nothing in the repository defines (an S and a number)', () => {
    const citing = /\bS\d{1,2}\b/;
    const offenders = tracked
      .filter((file) => /\.(ts|js|mjs|md|json)$/.test(file) && file !== 'package-lock.json' && !file.startsWith('bench/results/'))
      .filter((file) => citing.test(readFileSync(new URL(file, ROOT), 'utf8')));
    expect(offenders).toEqual([]);
  });

  it('doc comments name only parameters their function has', () => {
    const offenders = tracked
      .filter((file) => /^(src|machines)\/.*\.ts$/.test(file))
      .flatMap((file) => strayParameters(file, readFileSync(new URL(file, ROOT), 'utf8')));
    expect(offenders).toEqual([]);
  });

  it('the check finds a parameter a comment invents (as Frame.bytes once documented `opcode`)', () => {
    const before = `class Frame {
  /** Frames bytes as a binary frame, or with \`opcode: 'text'\` as text the caller vouches is UTF-8. */
  static bytes(payload: Uint8Array, binary: boolean) {}
}`;
    expect(strayParameters('frame.ts', before)).toHaveLength(1);
  });
});
