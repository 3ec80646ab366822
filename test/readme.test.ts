import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { closeCodeCatalog } from '../src/connection/close-codes.js';
import { ErrorCode } from '../src/util/errors.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

describe('README stays true', () => {
  it('gives exactly the two quick-start commands', () => {
    expect(readme).toContain('```sh\nnpm install && npm start\n```');
    expect(readme).toContain('```sh\nnpm install && npm test\n```');
  });

  it('lists every close code of the catalog with its meaning', () => {
    for (const info of closeCodeCatalog) {
      const row = `| ${info.code} | \`${info.name}\` | ${info.meaning} | ${info.reconnect ? 'yes' : 'no'} |`;
      expect(readme).toContain(row);
    }
  });

  it('lists every error code', () => {
    for (const code of Object.values(ErrorCode)) expect(readme).toContain(`| \`${code}\` |`);
  });
});
