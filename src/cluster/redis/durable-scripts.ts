import { Script } from './scripts.js';

/**
 * The Lua scripts of durable streams and sessions (keys in `durable.ts`).
 * A stream is a meta hash (`e` epoch, `s` last offset, `r` the run id of the
 * Redis process that wrote it) and a Redis STREAM whose entry ids are the
 * offsets (`<offset>-1`). A stream's epoch is kept only while the Redis process
 * that numbered it runs: after a restart or a failover (a replica promoted,
 * maybe without the last writes) the first script to touch the stream starts a
 * new epoch, so an offset is never handed out twice with different messages.
 * That costs one `INFO server` per call (about 2 µs of Redis CPU, measured).
 */
const STREAM = `
local function run_id()
  return string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')
end
-- The stream's epoch and last offset; a new epoch (given) if it has none, or was numbered by another Redis process.
local function current(meta, hist, fresh)
  local run = run_id()
  local m = redis.call('HMGET', meta, 'e', 's', 'r')
  if m[1] and m[3] == run then return m[1], tonumber(m[2]) end
  redis.call('DEL', hist)
  redis.call('HSET', meta, 'e', fresh, 's', 0, 'r', run)
  return fresh, 0
end
`;

/**
 * KEYS: meta, history. ARGV: the epoch for a stream that has none, max entries, history ttl,
 * meta ttl, the entry, the channel ('' for none), the publish command. Numbers the entry, appends
 * it, and publishes `<offset> <epoch> <entry>`: `{ offset, epoch }`.
 */
export const append = new Script(`${STREAM}
local epoch, top = current(KEYS[1], KEYS[2], ARGV[1])
top = top + 1
redis.call('HSET', KEYS[1], 's', top)
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], top .. '-1', 'd', ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if ARGV[6] ~= '' then redis.call(ARGV[7], ARGV[6], top .. ' ' .. epoch .. ' ' .. ARGV[5]) end
return { top, epoch }
`);

/** KEYS: meta, history. ARGV: the epoch for a stream that has none, meta ttl. `{ offset, epoch }`, the stream created if new. */
export const position = new Script(`${STREAM}
local epoch, top = current(KEYS[1], KEYS[2], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return { top, epoch }
`);

/**
 * KEYS: meta, history. ARGV: since offset, since epoch, a fresh epoch, max entries.
 * \`{ epoch, top, status, entries }\`: status 'ok' (entries are every one after since), 'trimmed'
 * (entries are what is left after since), 'ahead', 'epoch-changed' (no entries), 'unknown'.
 */
export const read = new Script(`${STREAM}
if redis.call('EXISTS', KEYS[1]) == 0 then return { '', 0, 'unknown' } end
local epoch, top = current(KEYS[1], KEYS[2], ARGV[3])
if epoch ~= ARGV[2] then return { epoch, top, 'epoch-changed' } end
local since = tonumber(ARGV[1])
if since > top then return { epoch, top, 'ahead' } end
if since == top then return { epoch, top, 'ok', {} } end
local entries = redis.call('XRANGE', KEYS[2], (since + 1) .. '-1', '+', 'COUNT', ARGV[4])
local status = 'ok'
if #entries == 0 or entries[1][1] ~= (since + 1) .. '-1' then status = 'trimmed' end
return { epoch, top, status, entries }
`);

/** KEYS: session. ARGV: owner, user, record, ttl. A session of a live connection, written as it opens. */
export const sessionOpen = new Script(`
redis.call('HSET', KEYS[1], 'o', ARGV[1], 'u', ARGV[2], 'd', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
`);

/**
 * KEYS: session. ARGV: owner, record, ttl, detach ('1': its connection dropped, kept for ttl), user (if bound anew).
 * Rewrites the record while its owner is still the one writing (a session taken over is not
 * brought back by its old connection): 1, or 0.
 */
export const sessionWrite = new Script(`
if redis.call('HGET', KEYS[1], 'o') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'd', ARGV[2])
if ARGV[5] then redis.call('HSET', KEYS[1], 'u', ARGV[5]) end
if ARGV[4] == '1' then redis.call('HSET', KEYS[1], 'o', '') end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`);

/** KEYS: session. ARGV: owner. Forgets a session its owner ended deliberately. */
export const sessionDrop = new Script(`
if redis.call('HGET', KEYS[1], 'o') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
`);

/**
 * KEYS: session. ARGV: user, the owner whose connection is known to be gone ('' for none).
 * Takes a session, once: \`{ 'taken', record }\`; \`{ 'live', owner }\` while its connection may
 * still be open; \`{ 'none' }\` if there is none, or it is another user's (and it is not burned).
 */
export const sessionTake = new Script(`
local s = redis.call('HMGET', KEYS[1], 'o', 'u', 'd')
if not s[3] or s[2] ~= ARGV[1] then return { 'none' } end
if s[1] ~= '' and s[1] ~= ARGV[2] then return { 'live', s[1] } end
redis.call('DEL', KEYS[1])
return { 'taken', s[3] }
`);

export const DURABLE_SCRIPTS: readonly Script[] = [append, position, read, sessionOpen, sessionWrite, sessionDrop, sessionTake];
