import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { afterAll } from 'vitest';

/** Debian's chromium, which `npm test` installs when it is missing (scripts/provision.mjs). */
const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser'];

let browser: Browser | undefined;
afterAll(async () => {
  await browser?.close();
  browser = undefined;
});

/** A headless Chromium for this test file, closed after it. Fails (never skips) if none is installed. */
export async function headlessChromium(): Promise<Browser> {
  const executablePath = process.env.CHROMIUM_PATH ?? CANDIDATES.find((path) => existsSync(path));
  if (executablePath === undefined)
    throw new Error(`no Chromium at ${CANDIDATES.join(' or ')}: npm test installs it (scripts/provision.mjs), or apt-get install chromium`);
  // --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
  browser ??= await chromium.launch({ executablePath, args: ['--no-sandbox'] });
  return browser;
}
