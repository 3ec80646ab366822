/**
 * Under load: a 1 MB broadcast to 1 100 connections that stopped reading
 * reaches every one of them intact, once they read again. What it costs the
 * server in memory (one shared frame, not a copy per recipient) is measured
 * by the benchmark's broadcast-1mb scenario (peak_rss_delta_bytes).
 */
import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { startRuntime } from '../helpers/runtime.js';
import { END } from './protocol.js';
import { MB, joinEveryone, startClients } from './harness.js';
import { eventually } from '../helpers/client.js';

const CONNECTIONS = 1_100;
const SIZE = 1 * MB;

describe('a 1 MB broadcast', () => {
  it('reaches 1 100 paused connections intact, each once, once they read again', async () => {
    const { runtime, url } = await startRuntime({ heartbeat: false });
    const joined = joinEveryone(runtime);
    const clients = startClients();
    // The clients stop reading after the handshake and read again 100 at a time once the
    // broadcast is out: the client process never holds more than 100 partial messages.
    const { opened, failures } = await clients.open({ url, count: CONNECTIONS, concurrency: 100, paused: true, checksum: true });
    expect(failures).toEqual([]);
    expect(opened).toBe(CONNECTIONS);
    await eventually(() => joined() === CONNECTIONS, 'every connection in the room', 20_000);

    const payload = randomBytes(SIZE);
    payload.writeUInt32BE(0, 0); // sequence number 0
    const checksum = crc32(payload);
    runtime.sendToRoom('everyone', payload);
    runtime.sendToAll(END);
    const resumed = await clients.resume(100);
    expect(resumed.resumed).toBe(CONNECTIONS);
    const report = await clients.report(60_000);

    expect(report.complete).toBe(true);
    expect(report.clients).toHaveLength(CONNECTIONS);
    const wrong = report.clients
      .filter(
        (client) =>
          !client.ended || client.closeCode !== null || client.lengths.join() !== `${SIZE}` || client.checksums.join() !== `${checksum}`,
      )
      .map(({ index, lengths, checksums, closeCode }) => ({ index, lengths, checksums, closeCode }));
    expect({ wrong: wrong.length, first: wrong.slice(0, 3) }).toEqual({ wrong: 0, first: [] });
  }, 120_000);
});
