import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startDemo, type Demo } from '../../demo/server.js';
import { headlessChromium } from '../helpers/browser.js';
import { connect } from '../helpers/client.js';

let demo: Demo;
beforeEach(async () => {
  demo = await startDemo({ port: 0, host: '127.0.0.1' });
});
afterEach(async () => {
  await demo.close();
});

describe('the demo’s live view of the actors (/inspect), in a real browser', () => {
  it('shows a client’s connection actor under the supervisor in open, with its rooms, then in closed', async () => {
    const browser = await headlessChromium();
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    page.on('console', (message) => message.type() === 'error' && problems.push(message.text()));
    await page.goto(new URL('inspect', demo.url).href);
    await page.locator('#status[data-state="live"]').waitFor();
    await page.locator('li[data-actor="supervisor"][data-state="running"]').waitFor();

    const client = await connect(`ws://127.0.0.1:${demo.port}/ws?name=ada`);
    const welcome = JSON.parse(await client.next()) as { id: string };
    client.ws.send(JSON.stringify({ type: 'join', room: 'lobby' }));
    await client.received(2);

    // The connection actor, nested under the supervisor, in open.
    const actor = page.locator(`li[data-actor="supervisor"] li[data-connection="${welcome.id}"]`);
    await expect.poll(() => actor.getAttribute('data-state'), { timeout: 10_000 }).toBe('open');
    await expect.poll(() => actor.locator('.detail').textContent(), { timeout: 10_000 }).toContain('rooms lobby');
    expect(await actor.locator('.detail').textContent()).toContain('user ada');
    expect(await page.locator('#rooms tbody').textContent()).toContain('lobby');

    client.ws.close();
    await expect.poll(() => actor.getAttribute('data-state'), { timeout: 10_000 }).toBe('closed');
    expect(await page.locator('#rooms tbody tr').count()).toBe(0);
    expect(problems).toEqual([]);
    await page.close();
  });
});
