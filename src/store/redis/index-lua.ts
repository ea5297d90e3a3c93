// The Lua of the `{idx}` indexes and tenant summaries (one slot) and the scripts that write them:
// putting a registration's entry in the (app, status) and (tenant, app, status) indexes, moving it
// when its status changes, counting a tenant's registrations by (app, cloud, status) as they
// change, indexing what the earlier release's `all` holds (store-upgrade.ts), and repairing a
// summary of a tenant written before summaries (tenant-summaries.ts). Key layout: keys.ts.
import { INDEXES_VERSION } from './keys.js'
import { LUA_UPDATE, LuaScript } from './scripts.js'

/**
 * Lua fragment over one registration's index block (keys.ts `indexBlock`, KEYS from `at`):
 * - `index_keys(at)` names them;
 * - `legacy(ix)`: the store is not contracted to this version (marker not "3": a rolling upgrade
 *   from the previous release until the operator finishes it, store-upgrade.ts): the earlier
 *   release's indexes (all, tenant, app, status) are kept too, and they are the authority —
 *   instances of the previous release maintain only them;
 * - `index_entry(ix, id)`: the status the indexes give `id` and its score (createdAt), or false;
 *   while legacy, read from the earlier indexes only (a status change made by a previous-release
 *   instance is only there: the new ones are re-synced from the records when the upgrade finishes);
 * - `index_put(ix, id, score, status)`: `id` in exactly the `as` and `ts` keys of `status`;
 * - `index_drop(ix, id)`: `id` out of every index of its block.
 */
export const LUA_INDEX = `
local STATUSES = {'active', 'needs_consent', 'revoked'}
local function index_keys(at)
  return {
    marker = KEYS[at], apps = KEYS[at + 1],
    as = {active = KEYS[at + 2], needs_consent = KEYS[at + 3], revoked = KEYS[at + 4]},
    ts = {active = KEYS[at + 5], needs_consent = KEYS[at + 6], revoked = KEYS[at + 7]},
    all = KEYS[at + 8], tenant = KEYS[at + 9], app = KEYS[at + 10],
    status = {needs_consent = KEYS[at + 11], revoked = KEYS[at + 12]},
  }
end
local function legacy(ix)
  return redis.call('GET', ix.marker) ~= '${INDEXES_VERSION}'
end
local function index_entry(ix, id)
  if legacy(ix) then
    local score = redis.call('ZSCORE', ix.all, id)
    if not score then return false end
    for s, key in pairs(ix.status) do
      if redis.call('ZSCORE', key, id) then return s, score end
    end
    return 'active', score
  end
  for _, s in ipairs(STATUSES) do
    local score = redis.call('ZSCORE', ix.as[s], id)
    if score then return s, score end
  end
  return false
end
local function index_put(ix, id, score, status)
  for _, s in ipairs(STATUSES) do
    if s ~= status then
      redis.call('ZREM', ix.as[s], id)
      redis.call('ZREM', ix.ts[s], id)
    end
  end
  redis.call('ZADD', ix.as[status], score, id)
  redis.call('ZADD', ix.ts[status], score, id)
  if legacy(ix) then
    redis.call('ZADD', ix.all, score, id)
    redis.call('ZADD', ix.tenant, score, id)
    redis.call('ZADD', ix.app, score, id)
    for s, key in pairs(ix.status) do
      if s == status then redis.call('ZADD', key, score, id) else redis.call('ZREM', key, id) end
    end
  end
end
local function index_drop(ix, id)
  for _, s in ipairs(STATUSES) do
    redis.call('ZREM', ix.as[s], id)
    redis.call('ZREM', ix.ts[s], id)
  end
  for _, key in ipairs({ix.all, ix.tenant, ix.app, ix.status.needs_consent, ix.status.revoked}) do
    redis.call('ZREM', key, id)
  end
end
`

/**
 * Lua fragment: `summary_add(key, version, app, cloud, status, delta, consented)` changes a tenant
 * summary's count of (app, cloud, status) by `delta` and raises its app's last consent to
 * `consented` (epoch ms, '' = none). Every change bumps the summary's generation `g`; counts are
 * only kept once the summary is complete (`v` is the version), so a tenant written before
 * summaries existed has just a generation until its first listing repairs it (tenant-summaries.ts).
 */
const LUA_SUMMARY = `
local function summary_add(key, version, app, cloud, status, delta, consented)
  redis.call('HINCRBY', key, 'g', 1)
  if redis.call('HGET', key, 'v') ~= version then return end
  if status then
    local field = 'n|' .. app .. '|' .. cloud .. '|' .. status
    if redis.call('HINCRBY', key, field, delta) <= 0 then redis.call('HDEL', key, field) end
  end
  if consented ~= '' then
    local last = redis.call('HGET', key, 'c|' .. app)
    if not last or tonumber(consented) > tonumber(last) then redis.call('HSET', key, 'c|' .. app, consented) end
  end
end
`

/**
 * Lua fragment: `move_counted(ix, summary, id, status, sversion, app, cloud, consented)` moves
 * `id`'s index entries to `status` and its tenant summary's counts with them (only when the status
 * really changes), and raises the summary's last consent. Returns 0 for an id not indexed.
 */
const LUA_MOVE_COUNTED = `${LUA_INDEX}${LUA_SUMMARY}
local function move_counted(ix, summary, id, status, sversion, app, cloud, consented)
  local was, score = index_entry(ix, id)
  if not was then return 0 end
  index_put(ix, id, score, status)
  if was ~= status then
    summary_add(summary, sversion, app, cloud, was, -1, '')
    summary_add(summary, sversion, app, cloud, status, 1, consented)
  elseif consented ~= '' then
    summary_add(summary, sversion, app, cloud, false, 0, consented)
  end
  return 1
end
`

/**
 * KEYS (one slot): 1 the claim's bucket, 2 the id's idle bucket, 3 tenant ids, 4 the app's tenant
 * ids, 5 the tenant's summary, 6–18 the registration's index block (keys.ts `indexBlock`), 19 the
 * legacy claims hash, 20 the stale id's idle bucket, 21 the legacy idle set (idle-buckets.ts).
 * ARGV: id, score, tenantId, claim field in the bucket ('' = none), claim value, idle score ('' =
 *       none), expected current claim ('' = slot must be free), stale id to drop from the indexes
 *       (''), status, app, cloud, consentedAt (ms), summary version, the claim's legacy field
 *       (delegated-claims.ts: read when the bucket has none, moved when claimed).
 * Returns {1} or {0, current claim}. The first registration of a store without a marker marks it
 * contracted (nothing written before needs a rebuild; a previous-release store has "2"); a tenant's
 * first registration starts its summary complete (a stale id dropped is of the same tenant, app and
 * cloud: its uniqueness field says so). While not contracted (a rolling upgrade), the claim and the
 * idle entry go where the previous release reads and writes them: the legacy hash and set.
 */
export const CLAIM_INDEX = new LuaScript(`${LUA_INDEX}${LUA_SUMMARY}
local ix = index_keys(6)
local id, score, tenant = ARGV[1], ARGV[2], ARGV[3]
local field, claim, expected, stale = ARGV[4], ARGV[5], ARGV[7], ARGV[8]
local status, app, cloud, consented, sversion = ARGV[9], ARGV[10], ARGV[11], ARGV[12], ARGV[13]
if not redis.call('GET', ix.marker) and redis.call('ZCARD', ix.all) == 0 then
  redis.call('SET', ix.marker, '${INDEXES_VERSION}')
end
local expand = legacy(ix)
if field ~= '' then
  local current
  if expand then current = redis.call('HGET', KEYS[19], ARGV[14])
  else current = redis.call('HGET', KEYS[1], field) or redis.call('HGET', KEYS[19], ARGV[14]) end
  if current and current ~= expected then return {0, current} end
  if expand then
    redis.call('HSET', KEYS[19], ARGV[14], claim)
  else
    redis.call('HSET', KEYS[1], field, claim)
    redis.call('HDEL', KEYS[19], ARGV[14])
  end
  if stale ~= '' then
    local was = index_entry(ix, stale)
    if was then summary_add(KEYS[5], sversion, app, cloud, was, -1, '') end
    index_drop(ix, stale)
    redis.call('ZREM', KEYS[20], stale)
    redis.call('ZREM', KEYS[21], stale)
  end
end
local first
if expand then first = redis.call('ZCARD', ix.tenant) == 0
else first = not redis.call('ZSCORE', KEYS[3], tenant) end
if first then
  redis.call('DEL', KEYS[5])
  redis.call('HSET', KEYS[5], 'v', sversion)
end
local was = index_entry(ix, id)
if was then summary_add(KEYS[5], sversion, app, cloud, was, -1, '') end
summary_add(KEYS[5], sversion, app, cloud, status, 1, consented)
index_put(ix, id, score, status)
redis.call('ZADD', KEYS[3], 0, tenant)
redis.call('ZADD', KEYS[4], 0, tenant)
redis.call('SADD', ix.apps, app)
if ARGV[6] ~= '' then redis.call('ZADD', expand and KEYS[21] or KEYS[2], ARGV[6], id) end
return {1}
`)

/**
 * KEYS: the claim's bucket, the id's idle bucket, the tenant's summary, then the index block, the
 * legacy idle set. ARGV: id, field, claim, app, cloud, summary version. Undoes a lost create (its
 * count too).
 */
export const UNCLAIM_INDEX = new LuaScript(`${LUA_INDEX}${LUA_SUMMARY}
local ix = index_keys(4)
if ARGV[2] ~= '' and redis.call('HGET', KEYS[1], ARGV[2]) == ARGV[3] then
  redis.call('HDEL', KEYS[1], ARGV[2])
end
local was = index_entry(ix, ARGV[1])
if was then summary_add(KEYS[3], ARGV[6], ARGV[4], ARGV[5], was, -1, '') end
index_drop(ix, ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[17], ARGV[1])
return 1
`)

/**
 * LUA_UPDATE (scripts.ts) and the move of the index entries with the tenant summary's counts, in
 * one step: KEYS 3 the tenant's summary, 4–16 the index block (slot `{idx}`, not the record's: a
 * single server or Sentinel primary only, like ADMIT_CLIENT). ARGV: LUA_UPDATE's, then summary
 * version, app, cloud, consentedAt (ms, '' = unchanged), taken off before update() reads them.
 */
export const UPDATE_RECORD_INDEXED = new LuaScript(`${LUA_UPDATE}${LUA_MOVE_COUNTED}
local consented = table.remove(ARGV)
local cloud = table.remove(ARGV)
local app = table.remove(ARGV)
local sversion = table.remove(ARGV)
local reply = update()
if type(reply) == 'table' and reply[1] and ARGV[2] ~= '' then
  move_counted(index_keys(4), KEYS[3], ARGV[6], ARGV[2], sversion, app, cloud, consented)
end
return reply
`)

/**
 * KEYS: the tenant's summary, then the index block. ARGV: id, status, summary version, app, cloud,
 * consentedAt (ms, ''). The move of one id with its summary's counts (a Cluster's move after the
 * record's update, and the completion of one a failure interrupted: index-moves.ts).
 */
export const MOVE_STATUS_COUNTED = new LuaScript(`${LUA_MOVE_COUNTED}
return move_counted(index_keys(2), KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6])
`)

/**
 * KEYS: tenant ids, the app's tenant ids, then the index block. ARGV: id, status (its record's),
 * tenantId, app. The rebuild of one registration the earlier indexes hold (`all`): it gets its
 * entries here unless a concurrent create or update already gave it some (they know better than a
 * status read before them). Returns 1 when it was added.
 */
export const REBUILD_ENTRY = new LuaScript(`${LUA_INDEX}
local ix = index_keys(3)
local score = redis.call('ZSCORE', ix.all, ARGV[1])
if not score then return 0 end
redis.call('ZADD', KEYS[1], 0, ARGV[3])
redis.call('ZADD', KEYS[2], 0, ARGV[3])
redis.call('SADD', ix.apps, ARGV[4])
for _, s in ipairs(STATUSES) do
  if redis.call('ZSCORE', ix.as[s], ARGV[1]) then return 0 end
end
index_put(ix, ARGV[1], score, ARGV[2])
return 1
`)

/**
 * KEYS: the tenant's summary, then for each app i (0-based) of the walk its tenant's three `ts`
 * keys (active, needs_consent, revoked) at 2 + 3i. ARGV: the generation read before the walk
 * ('' = none), summary version, then (id, app index i, app, cloud, consentedAt ms)… of every
 * registration of the tenant. Writes the complete summary, counting each id by the status its
 * index entry has now, only when no change came since the walk began (else returns 0: the next
 * listing tries again).
 */
export const REPAIR_SUMMARY = new LuaScript(`
if (redis.call('HGET', KEYS[1], 'g') or '') ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[1], 'v') == ARGV[2] then return 0 end
local names = {'active', 'needs_consent', 'revoked'}
local counts, consents = {}, {}
for i = 3, #ARGV, 5 do
  local id, at, app, cloud, consented = ARGV[i], 2 + 3 * tonumber(ARGV[i + 1]), ARGV[i + 2], ARGV[i + 3], tonumber(ARGV[i + 4])
  for k = 0, 2 do
    if redis.call('ZSCORE', KEYS[at + k], id) then
      local field = 'n|' .. app .. '|' .. cloud .. '|' .. names[k + 1]
      counts[field] = (counts[field] or 0) + 1
      if not consents[app] or consented > consents[app] then consents[app] = consented end
      break
    end
  end
end
redis.call('DEL', KEYS[1])
for field, n in pairs(counts) do redis.call('HSET', KEYS[1], field, n) end
for app, ms in pairs(consents) do redis.call('HSET', KEYS[1], 'c|' .. app, ms) end
if ARGV[1] ~= '' then redis.call('HSET', KEYS[1], 'g', ARGV[1]) end
redis.call('HSET', KEYS[1], 'v', ARGV[2])
return 1
`)
