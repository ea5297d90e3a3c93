// The Lua scripts of the Redis store's records, locks, rate limits and token cache, beside the one
// way to run them (EVALSHA, falling back to EVAL when the server has not cached the script yet);
// those of the `{idx}` indexes are in index-lua.ts. Each script touches keys of ONE hash slot,
// except ADMIT_CLIENT and UPDATE_RECORD_INDEXED (see their comments; a Cluster never runs them),
// so they run unchanged on a Cluster.
import { createHash } from 'node:crypto'
import type { RedisClient } from '../redis-connection.js'
import { LUA_CHUNKED_FIELDS } from './record-layout.js'

/** A Lua script and its SHA-1, for EVALSHA. */
export class LuaScript {
  readonly sha: string
  constructor(readonly lua: string) {
    this.sha = createHash('sha1').update(lua, 'utf8').digest('hex')
  }
}

/** Runs `script` by its SHA-1, sending the source once when the server doesn't know it yet. */
export function runScript(
  redis: RedisClient,
  script: LuaScript,
  keys: readonly string[],
  args: ReadonlyArray<string | number>,
): Promise<unknown> {
  // A plain function with one catch, not an async one awaiting: the obtain-token hot path runs a
  // script per request, and each async layer costs a promise and a microtask.
  return redis.evalsha(script.sha, keys.length, ...keys, ...args).catch((error: unknown) => {
    if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error
    return redis.eval(script.lua, keys.length, ...keys, ...args)
  })
}

/**
 * KEYS[1] record, KEYS[2] its outbox (same slot). ARGV: event id ('' = none), outbox entry JSON,
 * then field/value pairs. Writes the record only when it doesn't exist, and its
 * `registration.created` outbox entry in the same step.
 */
export const CREATE_RECORD = new LuaScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
if ARGV[1] ~= '' then redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]) end
return 1
`)

/**
 * Lua fragment: `trim_chunks(key, written)` removes the chunks of a chunked field left after the
 * last one just written (a shorter value, or a deleted field): `written` maps each field name the
 * caller set to 'set' and each it deleted to 'del' (see record-layout.ts for the chunks).
 */
const LUA_CHUNKS = `
local CHUNKED = ${LUA_CHUNKED_FIELDS}
local function trim_chunks(key, written)
  for _, chunked in ipairs(CHUNKED) do
    local prefix = chunked[2]
    if written[prefix .. '0'] then
      local i = 0
      while written[prefix .. i] == 'set' do i = i + 1 end
      local j = i
      while redis.call('HDEL', key, prefix .. j) == 1 or j == i do j = j + 1 end
    end
  end
end
local function is_secret(name)
  for _, chunked in ipairs(CHUNKED) do
    if chunked[3] and (name == chunked[1] or string.match(name, '^' .. chunked[2] .. '%d+$')) then
      return true
    end
  end
  return false
end
`

/**
 * Lua fragment: `update()` on KEYS[1] record, KEYS[2] its outbox (same slot), with ARGV expected
 * version, new status ('' = unchanged), n, event id ('' = none), ISO time, the registration id, n
 * field/value pairs, then fields to delete. Returns false (missing or version conflict) or
 * {previous status, HGETALL}. A status change writes its outbox entry (kind, time, the record's
 * non-secret fields as stored, and its id) in the same step, so no notification is lost if the
 * writer dies right after.
 */
export const LUA_UPDATE = `${LUA_CHUNKS}
local function update()
  local current = redis.call('HMGET', KEYS[1], 'version', 'status')
  if not current[1] or current[1] ~= ARGV[1] then return false end
  local old, new = current[2], ARGV[2]
  if old == 'revoked' and new ~= '' and new ~= 'revoked' then
    return redis.error_reply('REVOKED_FINAL revoked registrations stay revoked')
  end
  local n = tonumber(ARGV[3])
  local written = {}
  if n > 0 then
    local changes = {}
    for i = 7, 6 + 2 * n, 2 do
      changes[#changes + 1] = ARGV[i]
      changes[#changes + 1] = ARGV[i + 1]
      written[ARGV[i]] = 'set'
    end
    redis.call('HSET', KEYS[1], unpack(changes))
  end
  if #ARGV >= 7 + 2 * n then
    for i = 7 + 2 * n, #ARGV do written[ARGV[i]] = written[ARGV[i]] or 'del' end
    redis.call('HDEL', KEYS[1], unpack(ARGV, 7 + 2 * n))
  end
  trim_chunks(KEYS[1], written)
  redis.call('HINCRBY', KEYS[1], 'version', 1)
  local all = redis.call('HGETALL', KEYS[1])
  if ARGV[4] ~= '' and new ~= '' and new ~= old then
    local kind = nil
    if new == 'revoked' then kind = 'registration.revoked'
    elseif new == 'needs_consent' then kind = 'registration.needs_consent'
    elseif new == 'active' and old == 'needs_consent' then kind = 'registration.renewed' end
    if kind then
      local facts = { previousStatus = old }
      for i = 1, #all, 2 do
        if not is_secret(all[i]) then facts[all[i]] = all[i + 1] end
      end
      facts.id = ARGV[6]
      redis.call('HSET', KEYS[2], ARGV[4], cjson.encode({ id = ARGV[4], kind = kind, at = ARGV[5], facts = facts }))
    end
  end
  return {old, all}
end
`

/** See LUA_UPDATE: the record alone (a Cluster moves its index entries afterwards: index-moves.ts). */
export const UPDATE_RECORD = new LuaScript(`${LUA_UPDATE}
return update()
`)

/**
 * KEYS[1] record. ARGV: d, d fields to delete (the long names of fields now written short), then
 * field/value pairs. Usage fields: no version check, missing id ignored.
 */
export const TOUCH_RECORD = new LuaScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local d = tonumber(ARGV[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 2 + d))
if d > 0 then redis.call('HDEL', KEYS[1], unpack(ARGV, 2, 1 + d)) end
return 1
`)

/**
 * KEYS[1] record. ARGV: (secret's long name, its chunk prefix, old sealed value, the new
 * value's number of chunks n, the n chunks)… Replaces a secret only while it still holds the old value
 * (chunks joined, or the long field of a record written before chunks), writing it as chunks.
 * Returns how many were replaced.
 */
export const RESEAL_FIELDS = new LuaScript(`${LUA_CHUNKS}
local replaced = 0
local i = 1
while i <= #ARGV do
  local long, prefix, old, n = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  local current = nil
  if redis.call('HEXISTS', KEYS[1], prefix .. '0') == 1 then
    local parts, j = {}, 0
    while true do
      local part = redis.call('HGET', KEYS[1], prefix .. j)
      if not part then break end
      parts[#parts + 1] = part
      j = j + 1
    end
    current = table.concat(parts)
  else
    current = redis.call('HGET', KEYS[1], long)
  end
  if current == old then
    local written = {}
    for c = 0, n - 1 do
      redis.call('HSET', KEYS[1], prefix .. c, ARGV[i + 4 + c])
      written[prefix .. c] = 'set'
    end
    redis.call('HDEL', KEYS[1], long)
    trim_chunks(KEYS[1], written)
    replaced = replaced + 1
  end
  i = i + 4 + n
end
return replaced
`)

/** KEYS: token key, members set (same slot). ARGV: sealed value, ttl ms. */
export const TOKEN_SET = new LuaScript(`
local ttl = tonumber(ARGV[2])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
redis.call('SADD', KEYS[2], KEYS[1])
if redis.call('SCARD', KEYS[2]) > 64 then
  for _, member in ipairs(redis.call('SMEMBERS', KEYS[2])) do
    if redis.call('EXISTS', member) == 0 then redis.call('SREM', KEYS[2], member) end
  end
end
if redis.call('PTTL', KEYS[2]) < ttl then redis.call('PEXPIRE', KEYS[2], ttl) end
return 1
`)

/** KEYS[1] members set. Deletes every member key (all in the set's slot) and the set. */
export const TOKEN_DELETE_GROUP = new LuaScript(`
local members = redis.call('SMEMBERS', KEYS[1])
for _, member in ipairs(members) do redis.call('DEL', member) end
redis.call('DEL', KEYS[1])
return #members
`)

/** KEYS[1] lock. ARGV: token. Deletes the lock only while it holds this token. */
export const LOCK_RELEASE = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

/** KEYS[1] lock. ARGV: token, lease ms. Extends the lease only while it holds this token. */
export const LOCK_RENEW = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`)

/**
 * Inline Lua counting one hit on the fixed-window counter `key` (the first hit starts the window):
 * sets the locals named by `count` and `ttl`, the count and the window's ms left. That time only
 * matters past the limit (it becomes Retry-After), so within the limit it is not read: `ttl` is the
 * whole window on the first hit and 0 on the others. The obtain-token hot path counts two windows
 * per request, and each PTTL is a command. A counter found past the limit without an expiry (this
 * code never leaves one) gets its window then, so it can't refuse for ever. Inline rather than a
 * Lua function: a closure made on every call costs every request too (the flattened ADMIT_CLIENT
 * ran in about 5.0 µs of Redis CPU against 6.1 µs for the function-based one with PTTLs, and 5.8 µs
 * for function-based without them).
 */
function luaHit(count: string, ttl: string, key: string, window: string, limit: string): string {
  return `
local ${count} = redis.call('INCR', ${key})
local ${ttl} = 0
if ${count} == 1 then
  redis.call('PEXPIRE', ${key}, ${window})
  ${ttl} = tonumber(${window})
elseif ${count} > tonumber(${limit}) then
  ${ttl} = redis.call('PTTL', ${key})
  if ${ttl} < 0 then
    redis.call('PEXPIRE', ${key}, ${window})
    ${ttl} = tonumber(${window})
  end
end
`
}

/** KEYS[1] counter. ARGV window ms, limit. Returns {count, window ms left (see luaHit: past the limit)}. */
export const RATE_HIT = new LuaScript(`${luaHit('count', 'ttl', 'KEYS[1]', 'ARGV[1]', 'ARGV[2]')}
return {count, ttl}
`)

/**
 * KEYS[1] counter. ARGV limit, window ms. Counts only while the count is below the limit (the
 * first count starts the window). Returns {count after, window ms left, 1 taken / 0 refused}.
 */
export const RATE_TAKE = new LuaScript(`
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
local ttl = redis.call('PTTL', KEYS[1])
if count >= tonumber(ARGV[1]) then
  if ttl < 0 then ttl = tonumber(ARGV[2]) end
  return {count, ttl, 0}
end
count = redis.call('INCR', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
return {count, ttl, 1}
`)

/**
 * Inline Lua of `admit()` on KEYS record, replay marker, window counter (one slot) and ARGV
 * version, replay TTL ms, window ms, limit. Only for an active record at that version: SET NX the
 * marker, count a hit. Replies {0} or {1, marker was new (1/0), count, window ms left (see luaHit:
 * past the limit)}, each after `before` (the reply's leading fields, if any).
 */
function luaAdmit(before: string): string {
  return `
local current = redis.call('HMGET', KEYS[1], 'version', 'status')
if current[1] ~= ARGV[1] or current[2] ~= 'active' then return {${before}0} end
local fresh = 0
if redis.call('SET', KEYS[2], '1', 'PX', ARGV[2], 'NX') then fresh = 1 end
${luaHit('count', 'ttl', 'KEYS[3]', 'ARGV[3]', 'ARGV[4]')}
return {${before}1, fresh, count, ttl}
`
}

/** See luaAdmit. */
export const ADMIT = new LuaScript(luaAdmit(''))

/**
 * ADMIT after a hit on a client's rate-limit key, in one call (one round trip per request). KEYS:
 * record, replay marker, window counter, client counter. ARGV: ADMIT's (version, replay TTL ms,
 * window ms, limit), then client window ms, client limit. Over the client's limit nothing else is
 * touched. Returns {client count, client ms left, then ADMIT's reply (empty when over the client's
 * limit)}. The client counter is in another slot: single-node Redis only (Cluster sends two
 * commands).
 */
export const ADMIT_CLIENT = new LuaScript(`${luaHit('ccount', 'cttl', 'KEYS[4]', 'ARGV[5]', 'ARGV[6]')}
if ccount > tonumber(ARGV[6]) then return {ccount, cttl} end
${luaAdmit('ccount, cttl, ')}`)
