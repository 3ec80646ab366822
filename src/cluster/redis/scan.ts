import type { RedisLink } from './link.js';

/** Entries a presence read or a reaper asks Redis for per call: no call walks more than about this many. */
export const SCAN_CHUNK = 500;

/**
 * Walks a hash with `HSCAN` in chunks of about `SCAN_CHUNK` entries, so that
 * no single call holds Redis's one thread for long, whatever the hash's size;
 * `each` sees every chunk as flat field/value pairs. (`HGETALL` would answer
 * a map under RESP3; `HSCAN` answers the same under both.)
 */
export async function scanHash(link: RedisLink, key: string, each: (flat: string[]) => void | Promise<void>): Promise<void> {
  let cursor = '0';
  do {
    const [next, flat] = (await link.send(key, ['HSCAN', key, cursor, 'COUNT', String(SCAN_CHUNK)])) as [unknown, unknown[]];
    cursor = String(next);
    await each(flat.map(String));
  } while (cursor !== '0');
}

/** The pairs of a flat field/value list. */
export function* pairs(flat: readonly string[]): Generator<[string, string]> {
  for (let i = 0; i + 1 < flat.length; i += 2) yield [flat[i]!, flat[i + 1]!];
}
