import type { Page } from 'playwright-core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startDemo, type Demo } from '../../demo/server.js';
import { headlessChromium } from '../helpers/browser.js';

let demo: Demo;
beforeEach(async () => {
  demo = await startDemo({ port: 0, host: '127.0.0.1' });
});
afterEach(async () => {
  await demo.close();
});

/** Opens the chat page and goes through it as a person would: a name, then a room. */
async function person(name: string, room: string): Promise<Page> {
  const page = await (await headlessChromium()).newPage();
  await page.goto(demo.url);
  await page.locator('#status[data-state="open"]').waitFor();
  await page.fill('#name-input', name);
  await page.click('#name-form button[type="submit"]');
  await page.locator('#my-name', { hasText: name }).waitFor();
  await page.fill('#room-input', room);
  await page.press('#room-input', 'Enter');
  await page.locator('.view.room:not([hidden]) .log', { hasText: `You joined ${room}` }).waitFor();
  return page;
}

describe('the demo chat page, in a real browser', () => {
  it('two people pick names, join a room, see each other and talk', async () => {
    const ada = await person('ada', 'lobby');
    const bob = await person('bob', 'lobby');
    const adaRoom = ada.locator('.view.room:not([hidden])');
    const bobRoom = bob.locator('.view.room:not([hidden])');
    await adaRoom.locator('.log', { hasText: 'bob joined' }).waitFor();
    await expect.poll(() => bobRoom.locator('.member-list').textContent()).toMatch(/ada[\s\S]*bob/);

    await bobRoom.locator('.say-form input[name="text"]').fill('hello ada');
    await bobRoom.locator('.say-form input[name="text"]').press('Enter');
    await adaRoom.locator('.log', { hasText: 'hello ada' }).waitFor();
    await bobRoom.locator('.log', { hasText: 'hello ada' }).waitFor();

    await bob.close();
    await adaRoom.locator('.log', { hasText: 'bob left' }).waitFor();
    await ada.close();
  });
});
