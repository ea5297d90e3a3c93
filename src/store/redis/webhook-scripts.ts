// The Lua scripts of notifications (see webhooks.ts). The outbox scripts touch one subject's slot
// (`outbox:{subject}`, the registration's slot for registration events); every other script
// touches only keys tagged `{wh}`, whose names it builds from the prefix it is given (they all
// hash to the one `{wh}` slot, so the scripts run unchanged on a Cluster). The subject scripts
// also read the form the previous release left: a score without a kept announcement time.
import { LuaScript } from './scripts.js'

/**
 * KEYS[1] subjects ZSET, KEYS[2] announced HASH. ARGV: subject, now. Announces: due now, and any
 * announcement time kept by a claim is forgotten (the score is the announcement again).
 */
export const ANNOUNCE_SUBJECT = new LuaScript(`
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
`)

/**
 * Lua fragment: `schedule(subject, announced, due)` sets when to claim the subject next and keeps
 * its announcement time beside it, with the score it goes with (see `announced_of`).
 */
const LUA_SCHEDULE = `
local function schedule(subject, announced, due)
  redis.call('ZADD', KEYS[1], due, subject)
  redis.call('HSET', KEYS[2], subject, string.format('%d:%d', announced, due))
end
`

/**
 * Lua fragment: `announced_of(subject, score)`: the announcement time kept with this very score,
 * else the score itself. The score is the announcement when nothing was kept (announced, or left
 * by the previous release, whose score was its only time) or when the previous release, which
 * knows nothing of the hash, set the score since (its announce, claim or finish); it never sets
 * one earlier than the announcement, so a subject is never dropped early and comes back once more.
 */
const LUA_ANNOUNCED_OF = `
local function announced_of(subject, score)
  local kept = redis.call('HGET', KEYS[2], subject)
  if kept then
    local announced, due = string.match(kept, '^(%d+):(%d+)$')
    if due and tonumber(due) == tonumber(score) then return tonumber(announced) end
  end
  return tonumber(score)
end
`

/**
 * KEYS[1] subjects ZSET, KEYS[2] announced HASH. ARGV: now, limit, leaseMs. Claims the subjects
 * due now: each is due again at now + lease. Returns {subject, announcement time}…
 */
export const CLAIM_SUBJECTS = new LuaScript(`${LUA_SCHEDULE}${LUA_ANNOUNCED_OF}
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
local until_ = tonumber(ARGV[1]) + tonumber(ARGV[3])
local out = {}
for i = 1, #due, 2 do
  local announced = announced_of(due[i], due[i + 1])
  schedule(due[i], announced, until_)
  out[#out + 1] = due[i]
  out[#out + 1] = string.format('%d', announced)
end
return out
`)

/**
 * KEYS[1] subjects ZSET, KEYS[2] announced HASH. ARGV: subject, lease score, announcement time,
 * empty (1/0), now, graceMs. Only while our lease holds (no announcement since the claim): an empty
 * outbox announced at least the grace ago is dropped; an empty one announced later comes back once,
 * when the grace has passed (a writer may still be between its announcement and its write); one
 * with entries left comes back at once. The announcement time is kept, so the next finish drops it.
 */
export const FINISH_SUBJECT = new LuaScript(`${LUA_SCHEDULE}
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) ~= tonumber(ARGV[2]) then return 0 end
local announced, now, grace = tonumber(ARGV[3]), tonumber(ARGV[5]), tonumber(ARGV[6])
if ARGV[4] == '1' and announced <= now - grace then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  return 1
end
local again = now
if ARGV[4] == '1' then again = announced + grace end
schedule(ARGV[1], announced, again)
return 2
`)

/** KEYS[1] outbox. ARGV: handled ids. Removes them; returns how many entries remain. */
export const ACK_OUTBOX = new LuaScript(`
if #ARGV > 0 then redis.call('HDEL', KEYS[1], unpack(ARGV)) end
return redis.call('HLEN', KEYS[1])
`)

/**
 * KEYS[1] upstream state, KEYS[2] outbox (one slot). ARGV: '1' throttled / '0' recovered, entry id,
 * entry JSON. Writes the entry only when the state changes.
 */
export const SET_UPSTREAM_STATE = new LuaScript(`
local was = redis.call('EXISTS', KEYS[1])
if ARGV[1] == '1' then
  if was == 1 then return 0 end
  redis.call('SET', KEYS[1], '1')
else
  if was == 0 then return 0 end
  redis.call('DEL', KEYS[1])
end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return 1
`)

/**
 * KEYS[1] credential expiry state, KEYS[2] outbox (one slot). ARGV: state, entry id ('' = none),
 * entry JSON. Sets the state and writes the entry only when the state changes; returns 1 then.
 */
export const SET_CREDENTIAL_EXPIRY = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
if ARGV[2] ~= '' then redis.call('HSET', KEYS[2], ARGV[2], ARGV[3]) end
return 1
`)

/**
 * KEYS: delivery hash, due ZSET, endpoint's deliveries ZSET. ARGV: member, createdAt ms, due ms,
 * keep (latest per endpoint), then field/value pairs. Creates the delivery only if absent.
 */
export const ENQUEUE_DELIVERY = new LuaScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
local keep = tonumber(ARGV[4])
local n = redis.call('ZCARD', KEYS[3])
if n > keep then redis.call('ZREMRANGEBYRANK', KEYS[3], 0, n - keep - 1) end
return 1
`)

/**
 * KEYS[1] due ZSET. ARGV: now, limit, leaseMs, delivery key prefix, lease token prefix. Each due
 * delivery is pushed back by the lease and stamped with a lease token. Returns {member, token}….
 */
export const CLAIM_DUE = new LuaScript(`
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local until_ = tonumber(ARGV[1]) + tonumber(ARGV[3])
local out = {}
for i, member in ipairs(due) do
  local key = ARGV[4] .. member
  if redis.call('HGET', key, 'status') == 'pending' then
    local token = ARGV[5] .. i
    redis.call('ZADD', KEYS[1], until_, member)
    redis.call('HSET', key, 'lease', token)
    out[#out + 1] = member
    out[#out + 1] = token
  else
    redis.call('ZREM', KEYS[1], member)
  end
end
return out
`)

/**
 * KEYS: delivery hash, due ZSET. ARGV: member, lease, status, retryAt ms ('' = none), keepMs,
 * attempt time, then field/value pairs. Records an attempt only while the lease holds.
 */
export const FINISH_ATTEMPT = new LuaScript(`
if redis.call('HGET', KEYS[1], 'lease') ~= ARGV[2] then return 0 end
local times = cjson.decode(redis.call('HGET', KEYS[1], 'attemptTimes') or '[]')
times[#times + 1] = ARGV[6]
while #times > 20 do table.remove(times, 1) end
redis.call('HDEL', KEYS[1], 'lease', 'nextAttemptAt', 'lastStatusCode', 'lastError')
redis.call('HSET', KEYS[1], 'status', ARGV[3], 'attemptTimes', cjson.encode(times))
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
if #ARGV > 7 then redis.call('HSET', KEYS[1], unpack(ARGV, 8)) end
if ARGV[4] ~= '' then
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
  redis.call('PERSIST', KEYS[1])
else
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
end
return 1
`)

/** KEYS: delivery hash, due ZSET. ARGV: member, now ms, ISO now. Pending again, attempts kept. */
export const REDELIVER = new LuaScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HDEL', KEYS[1], 'lease')
redis.call('HSET', KEYS[1], 'status', 'pending', 'nextAttemptAt', ARGV[3], 'createdAt', ARGV[3])
redis.call('PERSIST', KEYS[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1
`)

/**
 * KEYS: the endpoints hash. ARGV: endpoint id, its JSON as read, the JSON with the secret re-sealed.
 * Replaces it only while it is unchanged (not removed or re-added meanwhile). Returns 1 or 0.
 */
export const RESEAL_ENDPOINT = new LuaScript(`
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
`)

/**
 * KEYS[1] subjects ZSET, KEYS[2] announced HASH. ARGV: HSCAN cursor. One HSCAN page: fields whose
 * subject is no longer announced are removed (a previous-release instance dropped the subject and
 * left its field: nothing announces a revoked registration again). Returns the next cursor and how
 * many were removed. A field of a subject still in the ZSET is this release's, kept.
 */
export const PRUNE_ANNOUNCED = new LuaScript(`
local page = redis.call('HSCAN', KEYS[2], ARGV[1], 'COUNT', 500)
local removed = 0
local fields = page[2]
for i = 1, #fields, 2 do
  if not redis.call('ZSCORE', KEYS[1], fields[i]) then
    redis.call('HDEL', KEYS[2], fields[i])
    removed = removed + 1
  end
end
return {page[1], removed}
`)
