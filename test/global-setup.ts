import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';

/**
 * Builds `dist/` once before the suite: the README's examples import
 * `berth` itself, which resolves (through the package's `exports`) to the
 * compiled files, so they must match the source under test.
 */
export default function buildPackage(): void {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
}
