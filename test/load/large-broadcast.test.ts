/**
 * Under load: a 1 MB broadcast to 1 100 connections is framed once and shared:
 * the server's RSS, sampled every millisecond from the broadcast until every
 * client has the message, grows by far less than one copy per recipient.
 */
import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { startRuntime } from '../helpers/runtime.js';
import { END } from './protocol.js';
import { MB, gc, joinEveryone, mb, sampleRss, startClients } from './harness.js';
import { eventually } from '../helpers/client.js';

const CONNECTIONS = 1_100;
const SIZE = 1 * MB;
/** One copy per recipient would be 1 100 MB. */
const PER_RECIPIENT_COPIES = CONNECTIONS * SIZE;
/**
 * Our bound: 64 MB. The frame itself is 1 MB; each socket may add its
 * user-land write bookkeeping (no copy of the payload), and the kernel holds
 * what is in flight outside the process's RSS. A copy per recipient in even
 * 6 % of the sockets would pass it.
 */
const RSS_BOUND = 64 * MB;

describe('a 1 MB broadcast', () => {
  it('reaches 1 100 connections intact while the server RSS grows by less than 64 MB', async () => {
    const { runtime, url } = await startRuntime({ heartbeat: false });
    const joined = joinEveryone(runtime);
    const clients = startClients();
    // The clients stop reading after the handshake and read again 100 at a time once the
    // broadcast is out: the frame waits in 1 100 sockets at once (the server's worst case),
    // and the client process never holds more than 100 partial messages.
    const { opened, failures } = await clients.open({ url, count: CONNECTIONS, concurrency: 100, paused: true, checksum: true });
    expect(failures).toEqual([]);
    expect(opened).toBe(CONNECTIONS);
    await eventually(() => joined() === CONNECTIONS, 'every connection in the room', 20_000);

    const payload = randomBytes(SIZE);
    payload.writeUInt32BE(0, 0); // sequence number 0
    const checksum = crc32(payload);
    gc();
    const rssBefore = process.memoryUsage.rss();
    const sampler = sampleRss();
    runtime.sendToRoom('everyone', payload);
    runtime.sendToAll(END);
    // Let the flush hand the frame to every socket before anybody reads.
    await new Promise((resolve) => setTimeout(resolve, 50));
    const resumed = await clients.resume(100);
    expect(resumed.resumed).toBe(CONNECTIONS);
    const report = await clients.report(60_000);
    const rssPeak = sampler.stop();
    console.log(
      `1 MB broadcast: RSS ${mb(rssBefore)} → peak ${mb(rssPeak)} (+${mb(rssPeak - rssBefore)}); copies would be ${mb(PER_RECIPIENT_COPIES)}`,
    );

    expect(report.complete).toBe(true);
    expect(report.clients).toHaveLength(CONNECTIONS);
    const wrong = report.clients
      .filter(
        (client) =>
          !client.ended || client.closeCode !== null || client.lengths.join() !== `${SIZE}` || client.checksums.join() !== `${checksum}`,
      )
      .map(({ index, lengths, checksums, closeCode }) => ({ index, lengths, checksums, closeCode }));
    expect({ wrong: wrong.length, first: wrong.slice(0, 3) }).toEqual({ wrong: 0, first: [] });
    expect(PER_RECIPIENT_COPIES).toBeGreaterThan(16 * RSS_BOUND);
    expect(rssPeak - rssBefore).toBeLessThan(RSS_BOUND);
  }, 120_000);
});
