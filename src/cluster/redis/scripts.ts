import { createHash } from 'node:crypto';
import type { RedisClient } from './client.js';

/**
 * Presence lives in Redis under `<prefix>:`, one set of keys per node so that
 * a dead node's entries can be ignored at once and removed whole:
 *
 * - `<prefix>:nodes`                  set of node ids
 * - `<prefix>:node:<n>`               the node's heartbeat, expiring after `nodeTimeoutMs`
 * - `<prefix>:node:<n>:conns`         hash connection id → user ('' for none)
 * - `<prefix>:node:<n>:rooms`         hash room → members on that node
 * - `<prefix>:node:<n>:room:<room>`   set of connection ids
 * - `<prefix>:node:<n>:users`         hash user → connections on that node
 * - `<prefix>:node:<n>:user:<user>`   set of connection ids
 *
 * Every script takes the prefix as its first argument. They name keys that are
 * not in KEYS, which a standalone Redis (or one primary) allows.
 */
const PRELUDE = `
local p = ARGV[1]
local function key(n, ...)
  local parts = { p, 'node', n, ... }
  return table.concat(parts, ':')
end
local function add_member(n, kind, name, id)
  if redis.call('SADD', key(n, kind, name), id) == 1 then
    redis.call('HINCRBY', key(n, kind .. 's'), name, 1)
  end
end
local function remove_member(n, kind, name, id)
  if redis.call('SREM', key(n, kind, name), id) == 1 then
    if redis.call('HINCRBY', key(n, kind .. 's'), name, -1) <= 0 then
      redis.call('HDEL', key(n, kind .. 's'), name)
    end
  end
end
local function drop_node(n)
  for _, kind in ipairs({ 'room', 'user' }) do
    for _, name in ipairs(redis.call('HKEYS', key(n, kind .. 's'))) do
      redis.call('DEL', key(n, kind, name))
    end
    redis.call('DEL', key(n, kind .. 's'))
  end
  redis.call('DEL', key(n, 'conns'), key(n))
  redis.call('SREM', p .. ':nodes', n)
end
local function live_nodes()
  local live = {}
  for _, n in ipairs(redis.call('SMEMBERS', p .. ':nodes')) do
    if redis.call('EXISTS', key(n)) == 1 then live[#live + 1] = n end
  end
  return live
end
`;

/** A Lua script run by EVALSHA, loaded with EVAL when Redis does not know it (after a restart). */
export class Script {
  readonly #source: string;
  readonly #sha: string;

  constructor(body: string) {
    this.#source = PRELUDE + body;
    this.#sha = createHash('sha1').update(this.#source).digest('hex');
  }

  /** For reads, whose order does not matter. */
  run(client: RedisClient, args: readonly string[]): Promise<unknown> {
    return client.sendCommand(['EVALSHA', this.#sha, '0', ...args]).catch((error: unknown) => {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return this.eval(client, args);
    });
  }

  /** For writes: sent whole each time, so a retry after NOSCRIPT can never overtake a later write. */
  eval(client: RedisClient, args: readonly string[]): Promise<unknown> {
    return client.sendCommand(['EVAL', this.#source, '0', ...args]);
  }
}

/** ARGV: prefix, node, ttl. Replaces the node's entries with none and starts its heartbeat. */
export const register = new Script(`
local n, ttl = ARGV[2], ARGV[3]
drop_node(n)
redis.call('SADD', p .. ':nodes', n)
redis.call('SET', key(n), '1', 'PX', ttl)
return 1
`);

/**
 * ARGV: prefix, node, ttl. Renews the heartbeat (0 if it had lapsed: the node
 * must register again) and removes every node whose heartbeat has lapsed.
 */
export const heartbeat = new Script(`
local n, ttl = ARGV[2], ARGV[3]
local renewed = redis.call('SET', key(n), '1', 'PX', ttl, 'XX')
for _, other in ipairs(redis.call('SMEMBERS', p .. ':nodes')) do
  if redis.call('EXISTS', key(other)) == 0 then drop_node(other) end
end
if renewed then return 1 end
return 0
`);

/** ARGV: prefix, node. Removes the node and its entries (graceful shutdown). */
export const unregister = new Script(`
drop_node(ARGV[2])
return 1
`);

/**
 * ARGV: prefix, node, then operations: \`c id user\` connect, \`j id room\` join,
 * \`l id room\` leave, \`b id old new\` bind, \`d id user count room...\` disconnect
 * ('' is no user). Returns 0 without writing if the node is not registered.
 */
export const update = new Script(`
local n = ARGV[2]
if redis.call('EXISTS', key(n)) == 0 then return 0 end
local i = 3
while i <= #ARGV do
  local op, id = ARGV[i], ARGV[i + 1]
  if op == 'c' then
    redis.call('HSET', key(n, 'conns'), id, ARGV[i + 2])
    if ARGV[i + 2] ~= '' then add_member(n, 'user', ARGV[i + 2], id) end
    i = i + 3
  elseif op == 'j' then
    add_member(n, 'room', ARGV[i + 2], id)
    i = i + 3
  elseif op == 'l' then
    remove_member(n, 'room', ARGV[i + 2], id)
    i = i + 3
  elseif op == 'b' then
    if ARGV[i + 2] ~= '' then remove_member(n, 'user', ARGV[i + 2], id) end
    if ARGV[i + 3] ~= '' then add_member(n, 'user', ARGV[i + 3], id) end
    redis.call('HSET', key(n, 'conns'), id, ARGV[i + 3])
    i = i + 4
  elseif op == 'd' then
    local count = tonumber(ARGV[i + 3])
    for r = 1, count do remove_member(n, 'room', ARGV[i + 3 + r], id) end
    if ARGV[i + 2] ~= '' then remove_member(n, 'user', ARGV[i + 2], id) end
    redis.call('HDEL', key(n, 'conns'), id)
    i = i + 4 + count
  else
    return redis.error_reply('berth: unknown presence operation ' .. tostring(op))
  end
end
return 1
`);

/**
 * ARGV: prefix, question, name. Answers over live nodes only, so a dead node's
 * entries vanish from every answer the moment its heartbeat lapses.
 */
export const query = new Script(`
local what, name = ARGV[2], ARGV[3]
local live = live_nodes()
if what == 'nodes' then return live end
if what == 'roomSize' then
  local total = 0
  for _, n in ipairs(live) do total = total + (tonumber(redis.call('HGET', key(n, 'rooms'), name)) or 0) end
  return total
end
if what == 'roomMembers' or what == 'userConnections' then
  local kind = 'room'
  if what == 'userConnections' then kind = 'user' end
  local ids = {}
  for _, n in ipairs(live) do
    for _, id in ipairs(redis.call('SMEMBERS', key(n, kind, name))) do ids[#ids + 1] = id end
  end
  return ids
end
if what == 'roomUsers' then
  local users = {}
  for _, n in ipairs(live) do
    for _, id in ipairs(redis.call('SMEMBERS', key(n, 'room', name))) do
      local user = redis.call('HGET', key(n, 'conns'), id)
      if user and user ~= '' then users[#users + 1] = user end
    end
  end
  return users
end
if what == 'onlineUsers' then
  local seen, users = {}, {}
  for _, n in ipairs(live) do
    for _, user in ipairs(redis.call('HKEYS', key(n, 'users'))) do
      if not seen[user] then seen[user] = true; users[#users + 1] = user end
    end
  end
  return users
end
if what == 'rooms' then
  local sizes, order = {}, {}
  for _, n in ipairs(live) do
    local flat = redis.call('HGETALL', key(n, 'rooms'))
    for j = 1, #flat, 2 do
      local room = flat[j]
      if sizes[room] == nil then sizes[room] = 0; order[#order + 1] = room end
      sizes[room] = sizes[room] + tonumber(flat[j + 1])
    end
  end
  local out = {}
  for _, room in ipairs(order) do out[#out + 1] = room; out[#out + 1] = sizes[room] end
  return out
end
return redis.error_reply('berth: unknown presence question ' .. tostring(what))
`);
