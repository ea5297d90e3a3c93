// An instance of the previous release (e9e5226) writing a shared store, for the rolling-upgrade
// tests: its Lua copied verbatim from `git show e9e5226:src/store/redis/{index-lua,scripts}.ts`
// (CLAIM_INDEX, MOVE_STATUS_COUNTED, RELEASE_CLAIM and the fragments they use), run on the same
// keys it used (`{idx}:all`, `tenant:`, `app:`, `status:`, `delegated`, `idle`, marker "2"), and
// its records written as it wrote them (the record layout did not change since). A status change
// is its Cluster path (the record, then MOVE_STATUS_COUNTED); a touch raises the one idle set.
import type { KeyRing } from '../../src/crypto/envelope.js'
import { redisKeys } from '../../src/store/redis/keys.js'
import { toStoredRecord } from '../../src/store/redis/record-layout.js'
import { LuaScript, runScript } from '../../src/store/redis/scripts.js'
import type { RedisClient } from '../../src/store/redis-connection.js'
import { encodeNewRegistration, uniquenessField } from '../../src/store/registration-hash.js'
import type { Registration, RegistrationSecrets, RegistrationStatus } from '../../src/store/types.js'

const LUA_MOVE_STATUS = `
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
const LUA_SUMMARY = `
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
const LUA_MOVE_COUNTED = `${LUA_MOVE_STATUS}${LUA_SUMMARY}
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
const CLAIM_INDEX = new LuaScript(`${LUA_MOVE_STATUS}${LUA_SUMMARY}
local id, score = ARGV[1], ARGV[2]
local field, claim, expected, stale = ARGV[4], ARGV[5], ARGV[7], ARGV[8]
local app, cloud, consented, sversion = ARGV[11], ARGV[12], ARGV[13], ARGV[14]
if field ~= '' then
  local current = redis.call('HGET', KEYS[5], field)
  if current and current ~= expected then return {0, current} end
  redis.call('HSET', KEYS[5], field, claim)
  if stale ~= '' then
    local was = index_status(KEYS[1], {needs_consent = KEYS[8], revoked = KEYS[9]}, stale)
    if was then summary_add(KEYS[12], sversion, app, cloud, was, -1, '') end
    for _, key in ipairs({KEYS[1], KEYS[2], KEYS[3], KEYS[6], KEYS[7], KEYS[8], KEYS[9]}) do
      redis.call('ZREM', key, stale)
    end
  end
end
if redis.call('ZCARD', KEYS[1]) == 0 and redis.call('EXISTS', KEYS[11]) == 0 then
  redis.call('SET', KEYS[11], ARGV[10])
end
if redis.call('ZCARD', KEYS[2]) == 0 then
  redis.call('DEL', KEYS[12])
  redis.call('HSET', KEYS[12], 'v', sversion)
end
local was = index_status(KEYS[1], {needs_consent = KEYS[8], revoked = KEYS[9]}, id)
if was then summary_add(KEYS[12], sversion, app, cloud, was, -1, '') end
summary_add(KEYS[12], sversion, app, cloud, ARGV[9], 1, consented)
redis.call('ZADD', KEYS[1], score, id)
redis.call('ZADD', KEYS[2], score, id)
redis.call('ZADD', KEYS[3], score, id)
redis.call('ZADD', KEYS[4], 0, ARGV[3])
redis.call('ZADD', KEYS[10], 0, ARGV[3])
if ARGV[6] ~= '' then redis.call('ZADD', KEYS[6], ARGV[6], id) end
move_status(KEYS[1], {needs_consent = KEYS[8], revoked = KEYS[9]}, id, ARGV[9])
return {1}
`)
const RELEASE_CLAIM = new LuaScript(`
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current and string.match(current, '^%d+:(.*)$') == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
end
redis.call('ZREM', KEYS[2], ARGV[2])
return 1
`)
const MOVE_STATUS_COUNTED = new LuaScript(`${LUA_MOVE_COUNTED}
return move_counted(KEYS[1], {needs_consent = KEYS[3], revoked = KEYS[4]}, KEYS[5], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6])
`)

type Input = Omit<Registration, 'version'>

/** One instance of the previous release on the store under `keyPrefix`. */
export class PreviousReleaseInstance {
  readonly #keys

  constructor(
    private readonly redis: RedisClient,
    keyPrefix: string,
    private readonly keyRing: KeyRing,
    private readonly clock: () => number = Date.now,
  ) {
    this.#keys = redisKeys(keyPrefix)
  }

  /**
   * Its create: CLAIM_INDEX (claim in the one hash, its indexes, the idle set, the summary), then
   * the record. `takeOver` is its compare-and-set on an abandoned claim (`expected`, `stale` id).
   */
  async create(
    input: Input,
    secrets: RegistrationSecrets,
    takeOver?: { expected: string; stale: string },
  ): Promise<{ created: true } | { created: false; current: string }> {
    const k = this.#keys
    const field = input.status === 'revoked' ? undefined : uniquenessField(input)
    const score = Date.parse(input.createdAt)
    const reply = (await runScript(
      this.redis,
      CLAIM_INDEX,
      [
        k.all,
        k.tenant(input.tenantId),
        k.app(input.app),
        k.tenantIds,
        k.legacyDelegated,
        k.legacyIdle,
        ...k.statuses,
        k.appTenants(input.app),
        k.indexes,
        k.tenantSummary(input.tenantId),
      ],
      [
        input.id,
        score,
        input.tenantId,
        field ?? '',
        `${Math.trunc(this.clock())}:${input.id}`,
        field === undefined ? '' : score,
        takeOver?.expected ?? '',
        takeOver?.stale ?? '',
        input.status,
        '2',
        input.app,
        input.cloud,
        Date.parse(input.consentedAt),
        '1',
      ],
    )) as [number, string?]
    if (reply[0] !== 1) return { created: false, current: reply[1] ?? '' }
    const stored = toStoredRecord(encodeNewRegistration(this.keyRing, input, secrets))
    await this.redis.hset(k.reg(input.id), ...stored)
    return { created: true }
  }

  /** Its status change on a Cluster: the record, then MOVE_STATUS_COUNTED; a revoke releases the claim. */
  async setStatus(registration: Input, status: RegistrationStatus): Promise<void> {
    const k = this.#keys
    await this.redis.hset(k.reg(registration.id), 'status', status)
    await this.redis.hincrby(k.reg(registration.id), 'version', 1)
    await runScript(
      this.redis,
      MOVE_STATUS_COUNTED,
      [k.all, ...k.statuses, k.tenantSummary(registration.tenantId)],
      [registration.id, status, '1', registration.app, registration.cloud, ''],
    )
    const field = uniquenessField(registration)
    if (status === 'revoked' && field !== undefined) {
      await runScript(this.redis, RELEASE_CLAIM, [k.legacyDelegated, k.legacyIdle], [field, registration.id])
    }
  }

  /** Its touch's idle effect: the one idle set raised (XX GT). */
  async touch(id: string, lastRefreshMs: number): Promise<void> {
    await this.redis.call('ZADD', this.#keys.legacyIdle, 'XX', 'GT', lastRefreshMs, id)
  }
}
