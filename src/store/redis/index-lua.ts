// The Lua of the `{idx}` status indexes and tenant summaries (one slot), shared by the scripts
// that write registrations (scripts.ts): moving a status index entry, counting a tenant's
// registrations by (app, cloud, status) as they are created, change status or are undone, and
// repairing a summary for a tenant written before summaries existed (tenant-summaries.ts).

/**
 * Lua fragment: `move_status(all, sets, id, status)` puts `id` in the status index of `status` (and
 * in no other), scored like its entry in `all`. `sets` maps needs_consent and revoked to their
 * index keys (one slot with `all`); `active` has no index of its own (most registrations are
 * active: an active filter walks `all`, the count is what the other two leave), so moving to
 * active only removes. An id `all` doesn't hold (a create that never finished) stays out.
 * Returns 1 when moved, else 0.
 */
export const LUA_MOVE_STATUS = `
local function move_status(all, sets, id, status)
  local score = redis.call('ZSCORE', all, id)
  if not score then return 0 end
  for name, key in pairs(sets) do
    if name ~= status then redis.call('ZREM', key, id) end
  end
  if sets[status] then redis.call('ZADD', sets[status], score, id) end
  return 1
end
`

/**
 * Lua fragment: `index_status(all, sets, id)` is the status the indexes give `id` (false when `all`
 * doesn't hold it); `summary_add(key, app, cloud, status, delta, consented)` changes a tenant
 * summary's count of (app, cloud, status) by `delta` and raises its app's last consent to
 * `consented` (epoch ms, '' = none). Every change bumps the summary's generation `g`; counts are
 * only kept once the summary is complete (`v` is the version), so a tenant written before
 * summaries existed has just a generation until its first listing repairs it (tenant-summaries.ts).
 */
export const LUA_SUMMARY = `
local function index_status(all, sets, id)
  if not redis.call('ZSCORE', all, id) then return false end
  for name, key in pairs(sets) do
    if redis.call('ZSCORE', key, id) then return name end
  end
  return 'active'
end
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
 * Lua fragment: `move_counted(all, sets, summary, id, status, sversion, app, cloud, consented)`
 * moves `id`'s status index entry and its tenant summary's counts together (only when the entry
 * really moves), and raises the summary's last consent.
 */
export const LUA_MOVE_COUNTED = `${LUA_MOVE_STATUS}${LUA_SUMMARY}
local function move_counted(all, sets, summary, id, status, sversion, app, cloud, consented)
  local was = index_status(all, sets, id)
  if not was then return 0 end
  if was ~= status then
    move_status(all, sets, id, status)
    summary_add(summary, sversion, app, cloud, was, -1, '')
    summary_add(summary, sversion, app, cloud, status, 1, consented)
  elseif consented ~= '' then
    summary_add(summary, sversion, app, cloud, false, 0, consented)
  end
  return 1
end
`

/**
 * KEYS: the tenant's summary, all, then the needs_consent and revoked indexes. ARGV: the
 * generation read before the walk ('' = none), summary version, then (id, app, cloud,
 * consentedAt ms)… of every registration of the tenant. Writes the complete summary, counting each
 * id by the status its index entry has now, only when no change came since the walk began (else
 * returns 0: the next listing tries again).
 */
export const REPAIR_SUMMARY_LUA = `
if (redis.call('HGET', KEYS[1], 'g') or '') ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[1], 'v') == ARGV[2] then return 0 end
local counts, consents = {}, {}
for i = 3, #ARGV, 4 do
  local id, app, cloud, consented = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  if redis.call('ZSCORE', KEYS[2], id) then
    local status = 'active'
    if redis.call('ZSCORE', KEYS[3], id) then status = 'needs_consent'
    elseif redis.call('ZSCORE', KEYS[4], id) then status = 'revoked' end
    local field = 'n|' .. app .. '|' .. cloud .. '|' .. status
    counts[field] = (counts[field] or 0) + 1
    if not consents[app] or consented > consents[app] then consents[app] = consented end
  end
end
redis.call('DEL', KEYS[1])
for field, n in pairs(counts) do redis.call('HSET', KEYS[1], field, n) end
for app, ms in pairs(consents) do redis.call('HSET', KEYS[1], 'c|' .. app, ms) end
if ARGV[1] ~= '' then redis.call('HSET', KEYS[1], 'g', ARGV[1]) end
redis.call('HSET', KEYS[1], 'v', ARGV[2])
return 1
`
