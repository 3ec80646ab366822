import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startDemo, type Demo } from '../../demo/server.js';
import { chatPage, enterChat, logLines, say } from '../helpers/browser.js';

let demo: Demo;
beforeEach(async () => {
  demo = await startDemo({ port: 0, host: '127.0.0.1' });
});
afterEach(async () => {
  await demo.close();
});

describe('the demo chat page, in a real browser', () => {
  it('two people pick names, join a room, see each other and talk, with no CSP or module error', async () => {
    const { page: ada, problems: adaProblems } = await chatPage(demo.url);
    expect(await ada.locator('#status').getAttribute('data-state')).toBe('idle');
    await enterChat(ada, 'ada', 'lobby');
    const { page: bob, problems: bobProblems } = await chatPage(demo.url);
    await enterChat(bob, 'bob', 'lobby');
    const adaRoom = ada.locator('.view.room:not([hidden])');
    const bobRoom = bob.locator('.view.room:not([hidden])');
    await adaRoom.locator('.log', { hasText: 'bob joined' }).waitFor();
    await expect.poll(() => bobRoom.locator('.member-list').textContent()).toMatch(/ada[\s\S]*bob \(you\)/);
    expect(await bob.locator('#status').textContent()).toBe('Connected');

    await say(bob, 'lobby', 'hello ada');
    await adaRoom.locator('.log', { hasText: 'hello ada' }).waitFor();
    await bobRoom.locator('.log', { hasText: 'hello ada' }).waitFor();

    await bob.close();
    await adaRoom.locator('.log', { hasText: 'bob left' }).waitFor();
    expect(await logLines(ada, 'lobby')).toEqual(['* You joined lobby', '* bob joined', 'bob: hello ada', '* bob left']);
    expect([...adaProblems, ...bobProblems]).toEqual([]);
    await ada.close();
  });

  it('checks the name itself before connecting: blank or over 32 characters is refused on the page', async () => {
    const { page, problems } = await chatPage(demo.url);
    for (const name of ['   ', 'x'.repeat(33)]) {
      await page.fill('#name-input', name);
      await page.click('#name-form button[type="submit"]');
      await expect.poll(() => page.locator('#name-error').textContent()).toBe('A name is 1–32 characters (spaces around it do not count).');
      expect(await page.locator('#welcome').isVisible()).toBe(true);
    }
    expect(await page.locator('#status').getAttribute('data-state')).toBe('idle');
    expect(demo.runtime.health().connections.current).toBe(0);

    await enterChat(page, '  ada  ', 'lobby');
    expect(await page.locator('#my-name').textContent()).toBe('ada');
    expect(await page.locator('#name-error').textContent()).toBe('');
    expect(problems).toEqual([]);
    await page.close();
  });
});
