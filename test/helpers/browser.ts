import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
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

/** A page of the demo chat in a browser context of its own, with what went wrong on it collected in `problems`. */
export async function chatPage(url: string): Promise<{ page: Page; problems: string[] }> {
  const page = await (await headlessChromium()).newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(error.message));
  page.on('console', (message) => message.type() === 'error' && problems.push(message.text()));
  await page.goto(url);
  return { page, problems };
}

/** Goes through the demo chat page as a person would: a name (which connects), then a room. */
export async function enterChat(page: Page, name: string, room: string): Promise<void> {
  await page.fill('#name-input', name);
  await page.click('#name-form button[type="submit"]');
  await page.locator('#my-name', { hasText: name }).waitFor();
  await page.locator('#status[data-state="open"]').waitFor();
  await page.fill('#room-input', room);
  await page.press('#room-input', 'Enter');
  await page.locator(`.view[data-view="${room}"] .log`, { hasText: `You joined ${room}` }).waitFor();
}

/** Says `text` in a room of the demo chat page, as a person would. */
export async function say(page: Page, room: string, text: string): Promise<void> {
  await page.click(`.tab[data-view="${room}"]`);
  const input = page.locator(`.view[data-view="${room}"] .say-form input[name="text"]`);
  await input.fill(text);
  await input.press('Enter');
}

/**
 * The lines of one conversation of the demo chat page as a person reads them:
 * `ada: hi` for a message, `* …` for the page's notes (joins, leaves, the
 * connection); no times.
 */
export function logLines(page: Page, view: string): Promise<string[]> {
  return page.locator(`.view[data-view="${view}"] .log > li`).evaluateAll((items) =>
    items.map((item) => {
      const from = item.querySelector('.from')?.textContent;
      const text = item.lastChild?.textContent ?? '';
      return from == null ? `* ${text}` : `${from}: ${text}`;
    }),
  );
}
