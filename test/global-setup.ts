import { execFileSync } from 'node:child_process';
import { chmodSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';

/**
 * Builds `dist/` once before the suite: the README's examples import
 * `berth` itself, which resolves (through the package's `exports`) to the
 * compiled files, so they must match the source under test.
 */
export default function buildPackage(): void {
  // From scratch: files of modules that were moved or removed must not linger in dist/.
  rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true });
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
  // tsc writes files without the executable bit that npm gives a package's bin when it installs it.
  chmodSync(new URL('../dist/src/testing/cli.js', import.meta.url), 0o755);
}
