import { createHash } from 'node:crypto';
import type { RedisLink } from './link.js';

/**
 * The Lua scripts of presence (the key layout is in `keys.ts`). Each names
 * every key it touches in KEYS, all of one hash tag, so that a Redis Cluster
 * routes it by its first key to the one shard that holds them all. Time is
 * Redis's own (`TIME`), so that nodes' clocks need not agree.
 */
const PRELUDE = `
local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function ms(n) return string.format('%.0f', n) end
-- A deadline that lapsed, and no reaper holds (a reaper's claim is minus its own deadline).
local function unclaimed_dead(v, now)
  return (v >= 0 and v < now) or (v < 0 and -v < now)
end
`;

/** A Lua script called by its SHA1 (`EVALSHA`): the source crosses the wire only when a shard is told to load it. */
export class Script {
  readonly source: string;
  readonly #sha: string;

  constructor(body: string) {
    this.source = PRELUDE + body;
    this.#sha = createHash('sha1').update(this.source).digest('hex');
  }

  /** Runs it; a shard that does not know it (restarted, failed over, flushed) rejects with `NOSCRIPT`. */
  call(link: RedisLink, keys: readonly string[], args: ReadonlyArray<string | Buffer> = [], buffers = false): Promise<unknown> {
    return link.send(keys[0], ['EVALSHA', this.#sha, String(keys.length), ...keys, ...args], buffers);
  }

  /**
   * On `NOSCRIPT` the shard is told to load it, and it runs again. Calls that failed so keep their
   * order: their loads are answered in order, and each runs again once its load is.
   */
  async run(link: RedisLink, keys: readonly string[], args: ReadonlyArray<string | Buffer> = [], buffers = false): Promise<unknown> {
    try {
      return await this.call(link, keys, args, buffers);
    } catch (error) {
      if (!isNoScript(error)) throw error;
      await link.send(keys[0], ['SCRIPT', 'LOAD', this.source]);
      return this.call(link, keys, args, buffers);
    }
  }
}

export function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOSCRIPT');
}

/** KEYS: live. ARGV: instance, ttl, the node's previous instance ('' for none), which is dead from now on. */
export const register = new Script(`
local now = clock()
if ARGV[3] ~= '' and redis.call('HEXISTS', KEYS[1], ARGV[3]) == 1 then redis.call('HSET', KEYS[1], ARGV[3], 0) end
redis.call('HSET', KEYS[1], ARGV[1], ms(now + tonumber(ARGV[2])))
return 1
`);

/**
 * KEYS: live. ARGV: instance, ttl. Renews the instance's deadline unless it
 * lapsed (then it is dead for good: 0, and the node registers anew), and
 * looks at one other instance picked at random: `{ renewed, dead instance or '' }`.
 * One field read and one written, however many nodes there are.
 */
export const heartbeat = new Script(`
local now = clock()
local v = tonumber(redis.call('HGET', KEYS[1], ARGV[1]))
local renewed = 0
if v and v >= now then
  redis.call('HSET', KEYS[1], ARGV[1], ms(now + tonumber(ARGV[2])))
  renewed = 1
end
local pick = redis.call('HRANDFIELD', KEYS[1], 1, 'WITHVALUES')
local dead = ''
if pick[1] and unclaimed_dead(tonumber(pick[2]), now) then dead = pick[1] end
return { renewed, dead }
`);

/** KEYS: live. ARGV: instance, claimMs. 1 if this caller now holds the removal of a dead instance for claimMs. */
export const claim = new Script(`
local now = clock()
local v = tonumber(redis.call('HGET', KEYS[1], ARGV[1]))
if not v or not unclaimed_dead(v, now) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ms(-(now + tonumber(ARGV[2]))))
return 1
`);

/**
 * KEYS: live. ARGV: instances, or none for all. Each instance's state: 1 live, 0 dead
 * (lapsed, being removed, or closed), -1 gone (removed, or never registered). With no
 * ARGV, flat pairs of every registered instance and its state.
 */
export const states = new Script(`
local now = clock()
local function state(v)
  if not v then return -1 end
  if tonumber(v) >= now then return 1 end
  return 0
end
local out = {}
if #ARGV == 0 then
  local flat = redis.call('HGETALL', KEYS[1])
  for i = 1, #flat, 2 do out[#out + 1] = flat[i]; out[#out + 1] = state(flat[i + 1]) end
  return out
end
local values = redis.call('HMGET', KEYS[1], unpack(ARGV))
for i = 1, #ARGV do out[i] = state(values[i]) end
return out
`);

/**
 * KEYS: a room's or user's hosts, its members on this instance. ARGV: instance, then
 * \`+ id value\` (the connection is there, with that value) or \`- id\` (it is not).
 * Sets the instance's count in the hosts from what its members now are.
 */
export const apply = new Script(`
local i = 2
while i <= #ARGV do
  if ARGV[i] == '+' then
    redis.call('HSET', KEYS[2], ARGV[i + 1], ARGV[i + 2])
    i = i + 3
  else
    redis.call('HDEL', KEYS[2], ARGV[i + 1])
    i = i + 2
  end
end
local n = redis.call('HLEN', KEYS[2])
if n == 0 then redis.call('HDEL', KEYS[1], ARGV[1]) else redis.call('HSET', KEYS[1], ARGV[1], n) end
return n
`);

/** KEYS: an instance's rooms, its users. ARGV: \`r|u name size\`, a size of 0 removing the entry. */
export const index = new Script(`
for i = 1, #ARGV, 3 do
  local key = KEYS[1]
  if ARGV[i] == 'u' then key = KEYS[2] end
  if ARGV[i + 2] == '0' then redis.call('HDEL', key, ARGV[i + 1]) else redis.call('HSET', key, ARGV[i + 1], ARGV[i + 2]) end
end
return 1
`);

/** KEYS: a room's or user's hosts, its members on a dead instance. ARGV: instance. Removes that instance from it. */
export const forget = new Script(`
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('UNLINK', KEYS[2])
return 1
`);

/** Every script, for loading on every shard before the writes that call them. */
export const SCRIPTS: readonly Script[] = [register, heartbeat, claim, states, apply, index, forget];
