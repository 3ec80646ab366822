import type { Duplex } from 'node:stream';
import type { CDPSession, Page } from 'playwright-core';
import { afterEach, describe, expect, it } from 'vitest';
import { startDemo, type Demo, type DemoOptions } from '../../demo/server.js';
import { createMemoryHistory, type CloseCause } from '../../src/index.js';
import { chatPage, enterChat, logLines, say } from '../helpers/browser.js';
import { eventually } from '../helpers/client.js';

let demo: Demo | undefined;
afterEach(async () => {
  await demo?.close();
  demo = undefined;
});

/**
 * A demo that keeps every WebSocket's TCP socket by the name it connected
 * with, so that a test can drop one as a lost network would: no close frame,
 * 1006 on both ends. (berth's public API closes connections only with a close
 * frame, a deliberate end that keeps no session.)
 */
async function droppableDemo(options: DemoOptions = {}) {
  const started = await startDemo({ port: 0, host: '127.0.0.1', ...options });
  demo = started;
  const sockets = new Map<string, Duplex>();
  started.server.on('upgrade', (request, socket: Duplex) => {
    const name = new URL(request.url ?? '/', 'http://demo').searchParams.get('name');
    if (name !== null) sockets.set(name, socket);
  });
  const closes: Array<{ user: string | undefined; code: number; cause: CloseCause }> = [];
  started.runtime.on('close', ({ connection, code, cause }) => void closes.push({ user: connection.user, code, cause }));
  /** Destroys the socket of `name`'s connection and waits until the server has seen it go. */
  const drop = async (name: string) => {
    const before = closes.length;
    sockets.get(name)!.destroy();
    await eventually(() => closes.length > before, `${name}'s connection to close`);
    expect(closes.at(-1)).toEqual({ user: name, code: 1006, cause: 'client' });
  };
  return { demo: started, drop };
}

/** Waits until a conversation shows `line` (as `logLines` writes it). */
const waitForLine = (page: Page, view: string, line: string) =>
  expect.poll(() => logLines(page, view), { timeout: 15_000 }).toContain(line);

/** Two people in `lobby`, who have said one thing each. */
async function twoPeople(url: string): Promise<{ ada: Page; bob: Page; problems: string[] }> {
  const { page: ada, problems: adaProblems } = await chatPage(url);
  await enterChat(ada, 'ada', 'lobby');
  const { page: bob, problems: bobProblems } = await chatPage(url);
  await enterChat(bob, 'bob', 'lobby');
  await say(ada, 'lobby', 'hi bob');
  await say(bob, 'lobby', 'hi ada');
  await waitForLine(bob, 'lobby', 'bob: hi ada');
  await waitForLine(ada, 'lobby', 'bob: hi ada');
  return { ada, bob, problems: [...adaProblems, ...bobProblems] };
}

/** Takes a page off the network through the devtools protocol, as DevTools' "Offline" does. */
async function network(page: Page): Promise<{ offline(): Promise<void>; online(): Promise<void> }> {
  const cdp: CDPSession = await page.context().newCDPSession(page);
  const conditions = (offline: boolean) =>
    cdp.send('Network.emulateNetworkConditions', { offline, latency: 0, downloadThroughput: -1, uploadThroughput: -1 }).then(() => {});
  return { offline: () => conditions(true), online: () => conditions(false) };
}

/** Records every value the status line's `data-state` takes from now on. */
async function recordStatus(page: Page): Promise<() => Promise<string[]>> {
  // A string: this file is typed for Node, without the DOM's names.
  await page.evaluate(`{
    const status = document.querySelector('#status');
    window.statusSeen = [];
    new MutationObserver(() => window.statusSeen.push(status.dataset.state)).observe(status, { attributeFilter: ['data-state'] });
  }`);
  return () => page.evaluate('window.statusSeen') as Promise<string[]>;
}

const BEFORE = ['* You joined lobby', 'ada: hi bob', 'bob: hi ada'];
/** What ada's lobby shows while bob is away and she says four things. */
const ADA_WHILE_BOB_IS_AWAY = [
  '* You joined lobby',
  '* bob joined',
  'ada: hi bob',
  'bob: hi ada',
  '* bob lost connection',
  'ada: one',
  'ada: two',
  'ada: three',
  'ada: four',
];

describe('the demo chat page when a connection drops, in a real browser', () => {
  it('the server drops a person’s socket while they are offline; back online, the page reconnects by itself and shows every message once, in order', async () => {
    const { drop } = await droppableDemo();
    const { ada, bob, problems } = await twoPeople(demo!.url);
    const status = await recordStatus(bob);
    const bobNet = await network(bob);

    // Offline keeps the page from reconnecting while ada talks. It does not cut the open WebSocket (Chromium
    // holds its frames, and still answers pings), so the server drops the TCP socket itself.
    await bobNet.offline();
    await drop('bob');
    await waitForLine(ada, 'lobby', '* bob lost connection');
    for (const text of ['one', 'two', 'three']) await say(ada, 'lobby', text);
    await ada.click('.tab[data-view="@whispers"]');
    await ada.fill('#whisper-to', 'bob');
    await ada.fill('#whisper-text', 'psst');
    await ada.press('#whisper-text', 'Enter');
    await say(ada, 'lobby', 'four');
    await waitForLine(ada, 'lobby', 'ada: four');

    await bobNet.online();
    await waitForLine(bob, 'lobby', '* Back online — nothing missed');
    await waitForLine(ada, 'lobby', '* bob is back');
    await say(ada, 'lobby', 'live again');
    await waitForLine(bob, 'lobby', 'ada: live again');

    expect(await logLines(bob, 'lobby')).toEqual([
      ...BEFORE,
      '* Connection lost — reconnecting…',
      'ada: one',
      'ada: two',
      'ada: three',
      'ada: four',
      '* Back online — nothing missed',
      'ada: live again',
    ]);
    expect(await logLines(bob, '@whispers')).toEqual(['ada → you: psst']);
    expect(await logLines(ada, 'lobby')).toEqual([...ADA_WHILE_BOB_IS_AWAY, '* bob is back', 'ada: live again']);
    expect(await bob.locator('.view[data-view="lobby"] .member-list').innerText()).toBe('ada\nbob (you)');
    expect(await ada.locator('.view[data-view="lobby"] .member-list').innerText()).toBe('ada (you)\nbob');
    expect(await bob.locator('#status').getAttribute('data-state')).toBe('open');
    // Reconnecting, then as many tries as it took (the page may see the drop while still offline), then open.
    const seen = await status();
    expect(seen[0]).toBe('reconnecting');
    expect(seen.at(-1)).toBe('open');
    expect(seen.slice(1, -1).every((state) => state === 'connecting' || state === 'reconnecting')).toBe(true);

    // And bob talks again, as anyone would.
    await say(bob, 'lobby', 'sorry, lost you');
    await waitForLine(ada, 'lobby', 'bob: sorry, lost you');
    // Chromium reports each try that failed while offline on the console; nothing else went wrong.
    expect(problems.filter((problem) => !/^WebSocket connection to '.*' failed: .*ERR_INTERNET_DISCONNECTED/.test(problem))).toEqual([]);
  }, 60_000);

  it('the server drops a person’s socket while the other talks on: what races the reconnect still comes once, in order', async () => {
    const { drop } = await droppableDemo();
    const { ada, bob, problems } = await twoPeople(demo!.url);
    await drop('bob');
    // No waiting: some of these reach bob in the replay, some live after it; none twice, none missing.
    const texts = Array.from({ length: 8 }, (_, i) => `quick ${i + 1}`);
    for (const text of texts) await say(ada, 'lobby', text);
    await waitForLine(bob, 'lobby', '* Back online — nothing missed');
    await waitForLine(bob, 'lobby', 'ada: quick 8');
    await say(ada, 'lobby', 'after');
    await waitForLine(bob, 'lobby', 'ada: after');

    const lines = await logLines(bob, 'lobby');
    expect(lines.filter((line) => !line.startsWith('* '))).toEqual([
      'ada: hi bob',
      'bob: hi ada',
      ...texts.map((text) => `ada: ${text}`),
      'ada: after',
    ]);
    expect(lines.filter((line) => line.startsWith('* '))).toEqual([
      '* You joined lobby',
      '* Connection lost — reconnecting…',
      '* Back online — nothing missed',
    ]);
    // The page heard of the drop before anything ada said after it.
    expect(lines.indexOf('* Connection lost — reconnecting…')).toBeLessThan(lines.indexOf('ada: quick 1'));
    expect(problems).toEqual([]);
  }, 60_000);

  it('when the session cannot be recovered, the page says messages were lost, joins its rooms again and goes on', async () => {
    // History of two messages per stream: four said while bob is away cannot all be replayed.
    const { drop } = await droppableDemo({ runtime: { history: createMemoryHistory({ maxMessages: 2 }) } });
    const { ada, bob } = await twoPeople(demo!.url);
    const bobNet = await network(bob);
    await bobNet.offline();
    await drop('bob');
    await waitForLine(ada, 'lobby', '* bob lost connection');
    for (const text of ['one', 'two', 'three', 'four']) await say(ada, 'lobby', text);
    await waitForLine(ada, 'lobby', 'ada: four');

    await bobNet.online();
    const lost = 'Back online, but messages sent while you were away may be missing (lost: room:lobby (trimmed))';
    await waitForLine(bob, 'lobby', `* ${lost}`);
    await expect.poll(() => bob.locator('#notice').textContent()).toBe(lost);
    expect(await bob.locator('#notice').isVisible()).toBe(true);
    // It joined lobby again by itself: ada sees a join (not a resumed session), and bob hears what comes next.
    await expect.poll(async () => (await logLines(ada, 'lobby')).filter((line) => line === '* bob joined').length).toBe(2);
    await say(ada, 'lobby', 'welcome back');
    await waitForLine(bob, 'lobby', 'ada: welcome back');
    expect(await logLines(bob, 'lobby')).toEqual([...BEFORE, '* Connection lost — reconnecting…', `* ${lost}`, 'ada: welcome back']);
    expect(await bob.locator('.view[data-view="lobby"] .log > li.lost').count()).toBe(1);
    expect(await bob.locator('.view[data-view="lobby"] .member-list').innerText()).toBe('ada\nbob (you)');
    expect(await logLines(ada, 'lobby')).toEqual([...ADA_WHILE_BOB_IS_AWAY, '* bob joined', 'ada: welcome back']);
  }, 60_000);
});
