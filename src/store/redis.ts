// The production store: Redis (single server, Sentinel or Cluster). Every Lua script and every
// multi-key command touches keys of ONE hash slot, so the same code runs on a Cluster — except
// ADMIT_CLIENT (a request's two rate limits and its replay claim in one round trip), which runs
// only against a single server or Sentinel primary; on a Cluster, or a sharded Redis behind one
// endpoint that refuses it with CROSSSLOT, admit sends two commands instead.
//
// Key layout (P = keyPrefix, e.g. `cb:`; `{…}` is the hash tag; `enc()` percent-encodes `%{}`):
//
//   P reg:{enc(id)}                  HASH    one registration: metadata fields, usage fields
//                                            (lastIssuedAt, lastClient, lastRefreshAt), sealed
//                                            secrets (key, refreshToken) and `version`
//   P seen:{enc(id)}:<marker>        STRING  admit: replay marker of one request, PX replay TTL
//   P rl-reg:{enc(id)}               STRING  admit: per-registration fixed-window counter, PX window
//                                            (both in the record's slot: admit is one script)
//   P{idx}:all                       ZSET    every registration id, score = createdAt (ms)
//   P{idx}:tenant:<tenantId>         ZSET    ids of one tenant, score = createdAt
//   P{idx}:app:<app>                 ZSET    ids of one app, score = createdAt
//   P{idx}:tenants                   SET     every tenant id with a registration
//   P{idx}:delegated                 HASH    JSON [app, cloud, tenant, oid] → "<claimedAtMs>:<id>"
//                                            (delegated uniqueness among non-revoked registrations)
//   P{idx}:idle                      ZSET    delegated non-revoked ids, score = last refresh (or
//                                            creation) in ms
//   P eph:<key>                      STRING  ephemeral value (sealed when secret), PX expiry
//   P tok:{enc(group)}:<sha256(scope)> STRING sealed cached access token, PX expiry
//   P tok:{enc(group)}:members       SET     token keys of the group (same slot), expiry ≥ members'
//   P lock:<name>                    STRING  lock token, PX lease
//   P rl:<key>                       STRING  fixed-window counter, PX window (also admit's `client`)
//   P audit                          STREAM  audit events, MAXLEN ~ n (+ optional MINID retention)
//
// The record (slot of `reg:{id}`) and its index entries (slot of `{idx}`) can't be written in one
// atomic step on a Cluster, so writes are ordered to fail safe:
//   create: 1. claim the uniqueness slot and add index entries (one Lua call in `{idx}`),
//           2. write the record (Lua: only if absent),
//           3. delegated: check the claim is still ours (else undo and report the winner).
//   A crash after 1 leaves index entries pointing at a missing record: every reader skips those,
//   and a claim whose record is still missing after `claimGraceMs` (or whose record is revoked)
//   is taken over by the next create. A record never exists without its uniqueness claim.
//   revoke: 1. versioned update of the record, 2. release the claim only if it still names this id
//   (a crash in between leaves a claim on a revoked record, which the next create takes over).
import { createHash, randomBytes } from 'node:crypto'
import type { KeyRing } from '../crypto/envelope.js'
import { KeyRing as KeyRingClass } from '../crypto/envelope.js'
import { sha256Hex } from '../crypto/sha256.js'
import {
  admitArguments,
  assertAuditCursor,
  auditPage,
  clampLimit,
  compareIds,
  decodeAuditFields,
  decodeCursor,
  decodeMeta,
  decodeRegistration,
  decodeStored,
  encodeAuditFields,
  encodeCursor,
  encodeNewRegistration,
  encodeUpdate,
  encodeUsage,
  type IndexPosition,
  isoToMs,
  matchesQuery,
  openCachedToken,
  openEphemeral,
  openSecret,
  PUBLIC_FIELDS,
  pairsToHash,
  type RegistrationHash,
  rateLimitResult,
  requireName,
  requirePositiveMs,
  revokedIsFinal,
  SECRET_FIELDS,
  type SecretField,
  sealCachedToken,
  sealEphemeral,
  sealSecret,
  uniquenessField,
  validateNewRegistration,
} from './codec.js'
import type { RedisClient } from './redis-connection.js'
import type {
  AdmitRequest,
  AdmitResult,
  AuditEvent,
  AuditLog,
  AuditRecord,
  CachedToken,
  CreateResult,
  EphemeralStore,
  IdlePosition,
  LockHandle,
  LockManager,
  RateLimiter,
  RateLimitResult,
  Registration,
  RegistrationPage,
  RegistrationPatch,
  RegistrationQuery,
  RegistrationSecrets,
  RegistrationStore,
  RegistrationUsage,
  SecretsPatch,
  Store,
  StoredRegistration,
  TokenCache,
} from './types.js'

export interface RedisStoreOptions {
  redis: RedisClient
  keyRing: KeyRing
  /** Prepended to every key, e.g. `cb:`; must not contain `{` or `}`. */
  keyPrefix: string
  /** Approximate cap of the audit stream; default 100 000. */
  auditMaxLen?: number
  /** Audit events older than this (by stream id time) are trimmed on append. */
  auditRetentionMs?: number
  /** A delegated uniqueness claim whose record is still missing after this is abandoned; 30 s. */
  claimGraceMs?: number
  clock?: () => number
}

// ---- Lua ------------------------------------------------------------------------------------

class LuaScript {
  readonly sha: string
  constructor(readonly lua: string) {
    this.sha = createHash('sha1').update(lua, 'utf8').digest('hex')
  }
}

async function runScript(
  redis: RedisClient,
  script: LuaScript,
  keys: readonly string[],
  args: ReadonlyArray<string | number>,
): Promise<unknown> {
  try {
    return await redis.evalsha(script.sha, keys.length, ...keys, ...args)
  } catch (error) {
    if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error
    return await redis.eval(script.lua, keys.length, ...keys, ...args)
  }
}

/** KEYS[1] record. ARGV field/value pairs. Writes the record only when it doesn't exist. */
const CREATE_RECORD = new LuaScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
`)

/**
 * KEYS: all, tenant, app, tenants, delegated, idle (one slot).
 * ARGV: id, score, tenantId, uniqueness field ('' = none), claim value, idle score ('' = none),
 *       expected current claim ('' = slot must be free), stale id to drop from the indexes ('').
 * Returns {1} or {0, current claim}.
 */
const CLAIM_INDEX = new LuaScript(`
local id, score = ARGV[1], ARGV[2]
local field, claim, expected, stale = ARGV[4], ARGV[5], ARGV[7], ARGV[8]
if field ~= '' then
  local current = redis.call('HGET', KEYS[5], field)
  if current and current ~= expected then return {0, current} end
  redis.call('HSET', KEYS[5], field, claim)
  if stale ~= '' then
    redis.call('ZREM', KEYS[1], stale)
    redis.call('ZREM', KEYS[2], stale)
    redis.call('ZREM', KEYS[3], stale)
    redis.call('ZREM', KEYS[6], stale)
  end
end
redis.call('ZADD', KEYS[1], score, id)
redis.call('ZADD', KEYS[2], score, id)
redis.call('ZADD', KEYS[3], score, id)
redis.call('SADD', KEYS[4], ARGV[3])
if ARGV[6] ~= '' then redis.call('ZADD', KEYS[6], ARGV[6], id) end
return {1}
`)

/** KEYS: all, tenant, app, delegated, idle. ARGV: id, field, claim. Undoes a lost create. */
const UNCLAIM_INDEX = new LuaScript(`
if ARGV[2] ~= '' and redis.call('HGET', KEYS[4], ARGV[2]) == ARGV[3] then
  redis.call('HDEL', KEYS[4], ARGV[2])
end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
return 1
`)

/** KEYS: delegated, idle. ARGV: field, id. Frees the uniqueness slot only if it names this id. */
const RELEASE_CLAIM = new LuaScript(`
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current and string.match(current, '^%d+:(.*)$') == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
end
redis.call('ZREM', KEYS[2], ARGV[2])
return 1
`)

/**
 * KEYS[1] record. ARGV: expected version, new status ('' = unchanged), n, n field/value pairs,
 * then fields to delete. Returns nil (missing or version conflict) or {previous status, HGETALL}.
 */
const UPDATE_RECORD = new LuaScript(`
local current = redis.call('HMGET', KEYS[1], 'version', 'status')
if not current[1] or current[1] ~= ARGV[1] then return false end
if current[2] == 'revoked' and ARGV[2] ~= '' and ARGV[2] ~= 'revoked' then
  return redis.error_reply('REVOKED_FINAL revoked registrations stay revoked')
end
local n = tonumber(ARGV[3])
if n > 0 then
  local changes = {}
  for i = 4, 3 + 2 * n do changes[#changes + 1] = ARGV[i] end
  redis.call('HSET', KEYS[1], unpack(changes))
end
if #ARGV >= 4 + 2 * n then redis.call('HDEL', KEYS[1], unpack(ARGV, 4 + 2 * n)) end
redis.call('HINCRBY', KEYS[1], 'version', 1)
return {current[2], redis.call('HGETALL', KEYS[1])}
`)

/** KEYS[1] record. ARGV field/value pairs. Usage fields: no version check, missing id ignored. */
const TOUCH_RECORD = new LuaScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
`)

/** KEYS[1] record. ARGV: (field, old ciphertext, new ciphertext)… Replaces only unchanged fields. */
const RESEAL_FIELDS = new LuaScript(`
local replaced = 0
for i = 1, #ARGV, 3 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
    replaced = replaced + 1
  end
end
return replaced
`)

/** KEYS: token key, members set (same slot). ARGV: sealed value, ttl ms. */
const TOKEN_SET = new LuaScript(`
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
const TOKEN_DELETE_GROUP = new LuaScript(`
local members = redis.call('SMEMBERS', KEYS[1])
for _, member in ipairs(members) do redis.call('DEL', member) end
redis.call('DEL', KEYS[1])
return #members
`)

const LOCK_RELEASE = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

const LOCK_RENEW = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`)

/**
 * Lua fragment: `hit(key, window ms)` counts one hit on a fixed-window counter (INCR; the first hit
 * starts the window, PEXPIRE NX semantics) and returns the count and the window's ms left.
 */
const LUA_HIT = `
local function hit(key, window)
  local count = redis.call('INCR', key)
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then
    redis.call('PEXPIRE', key, window)
    ttl = tonumber(window)
  end
  return count, ttl
end
`

/** KEYS[1] counter. ARGV window ms. Returns {count, window ms left}. */
const RATE_HIT = new LuaScript(`${LUA_HIT}
local count, ttl = hit(KEYS[1], ARGV[1])
return {count, ttl}
`)

/**
 * Lua fragment: `admit()` on KEYS record, replay marker, window counter (one slot) and ARGV
 * version, replay TTL ms, window ms. Only for an active record at that version: SET NX the marker,
 * count a hit. Returns {0} or {1, marker was new (1/0), count, window ms left}.
 */
const LUA_ADMIT = `${LUA_HIT}
local function admit()
  local current = redis.call('HMGET', KEYS[1], 'version', 'status')
  if current[1] ~= ARGV[1] or current[2] ~= 'active' then return {0} end
  local fresh = 0
  if redis.call('SET', KEYS[2], '1', 'PX', ARGV[2], 'NX') then fresh = 1 end
  local count, ttl = hit(KEYS[3], ARGV[3])
  return {1, fresh, count, ttl}
end
`

/** See LUA_ADMIT. */
const ADMIT = new LuaScript(`${LUA_ADMIT}
return admit()
`)

/**
 * ADMIT after a hit on a client's rate-limit key, in one call (one round trip per request). KEYS:
 * record, replay marker, window counter, client counter. ARGV: version, replay TTL ms, window ms,
 * client window ms, client limit. Over the client's limit nothing else is touched. Returns
 * {client count, client ms left, then ADMIT's reply (empty when over the client's limit)}.
 * The client counter is in another slot: single-node Redis only (Cluster sends two commands).
 */
const ADMIT_CLIENT = new LuaScript(`${LUA_ADMIT}
local ccount, cttl = hit(KEYS[4], ARGV[4])
if ccount > tonumber(ARGV[5]) then return {ccount, cttl} end
return {ccount, cttl, unpack(admit())}
`)

type AdmitReply = [0] | [1, number, number, number]

function admitted(reply: AdmitReply, limit: number): AdmitResult {
  if (reply[0] !== 1) return { current: false }
  const [, fresh, count, ttl] = reply
  return { current: true, fresh: fresh === 1, rate: rateLimitResult(count, limit, ttl) }
}

// ---- keys -----------------------------------------------------------------------------------

/** Percent-encodes the characters that would change a key's hash tag. */
function encodeTagged(value: string): string {
  return value.replace(/[%{}]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
}

function makeKeys(prefix: string) {
  const idx = `${prefix}{idx}:`
  return {
    reg: (id: string) => `${prefix}reg:{${encodeTagged(id)}}`,
    seen: (id: string, marker: string) => `${prefix}seen:{${encodeTagged(id)}}:${marker}`,
    registrationRate: (id: string) => `${prefix}rl-reg:{${encodeTagged(id)}}`,
    all: `${idx}all`,
    tenant: (tenantId: string) => `${idx}tenant:${tenantId}`,
    app: (app: string) => `${idx}app:${app}`,
    tenants: `${idx}tenants`,
    delegated: `${idx}delegated`,
    idle: `${idx}idle`,
    ephemeral: (key: string) => `${prefix}eph:${key}`,
    token: (group: string, scope: string) => `${prefix}tok:{${encodeTagged(group)}}:${sha256Hex(scope)}`,
    tokenMembers: (group: string) => `${prefix}tok:{${encodeTagged(group)}}:members`,
    lock: (name: string) => `${prefix}lock:${name}`,
    rate: (key: string) => `${prefix}rl:${key}`,
    audit: `${prefix}audit`,
  }
}
type Keys = ReturnType<typeof makeKeys>

/** One hit on rate-limit key `key` (checked arguments): RateLimiter.hit, and admit's `client` on a Cluster. */
async function rateHit(
  redis: RedisClient,
  keys: Keys,
  key: string,
  limit: number,
  windowMs: number,
): Promise<RateLimitResult> {
  const [count, ttl] = (await runScript(redis, RATE_HIT, [keys.rate(key)], [windowMs])) as [number, number]
  return rateLimitResult(count, limit, ttl)
}

function flatten(hash: RegistrationHash): string[] {
  const out: string[] = []
  for (const [field, value] of Object.entries(hash)) out.push(field, value)
  return out
}

const PENDING_POLLS = 10
const PENDING_POLL_MS = 20
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

interface Claim {
  claimedAt: number
  id: string
}

function parseClaim(value: string): Claim {
  const colon = value.indexOf(':')
  return { claimedAt: Number(value.slice(0, colon)), id: value.slice(colon + 1) }
}

// ---- registrations --------------------------------------------------------------------------

class RedisRegistrations implements RegistrationStore {
  /** False once the server refused ADMIT_CLIENT's keys of two slots (see admit). */
  #crossSlotScripts = true

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly keyRing: KeyRing,
    private readonly clock: () => number,
    private readonly claimGraceMs: number,
  ) {}

  #indexKeys(registration: Pick<Registration, 'tenantId' | 'app'>): string[] {
    const k = this.keys
    return [k.all, k.tenant(registration.tenantId), k.app(registration.app), k.tenants, k.delegated, k.idle]
  }

  async create(input: Omit<Registration, 'version'>, secrets: RegistrationSecrets): Promise<CreateResult> {
    validateNewRegistration(input, secrets)
    const id = input.id
    const hash = encodeNewRegistration(this.keyRing, input, secrets)
    const recordKey = this.keys.reg(id)
    if ((await this.redis.exists(recordKey)) === 1) throw new Error(`registration ${id} already exists`)
    const field = input.status === 'revoked' ? undefined : uniquenessField(input)
    const score = isoToMs(input.createdAt, 'registration.createdAt')
    const claim = `${Math.trunc(this.clock())}:${id}`
    const indexKeys = this.#indexKeys(input)

    // 1. uniqueness claim + index entries (one slot, atomic)
    let expected = ''
    let stale = ''
    for (let attempt = 0; ; attempt++) {
      const reply = (await runScript(this.redis, CLAIM_INDEX, indexKeys, [
        id,
        score,
        input.tenantId,
        field ?? '',
        claim,
        field === undefined ? '' : score,
        expected,
        stale,
      ])) as [number, string?]
      if (reply[0] === 1) break
      const current = reply[1] ?? ''
      const holder = parseClaim(current)
      const state = await this.#claimState(holder)
      if (state === 'live' || state === 'pending' || attempt >= 3)
        return { created: false, existingId: holder.id }
      // abandoned (record never written) or revoked without its claim released: take it over
      expected = current
      stale = state === 'abandoned' ? holder.id : ''
    }

    // 2. the record, only if absent
    const written = await runScript(this.redis, CREATE_RECORD, [recordKey], flatten(hash))
    if (written !== 1) throw new Error(`registration ${id} already exists`)

    // 3. a create that stalled past the grace period may have lost its claim meanwhile
    if (field !== undefined) {
      const current = await this.redis.hget(this.keys.delegated, field)
      if (current !== claim) {
        await this.redis.del(recordKey)
        await runScript(
          this.redis,
          UNCLAIM_INDEX,
          [indexKeys[0]!, indexKeys[1]!, indexKeys[2]!, this.keys.delegated, this.keys.idle],
          [id, '', ''],
        )
        if (current === null) throw new Error(`registration ${id}: lost a concurrent create, retry`)
        return { created: false, existingId: parseClaim(current).id }
      }
    }
    return { created: true, registration: decodeRegistration(hash) }
  }

  async #claimState(holder: Claim): Promise<'live' | 'revoked' | 'abandoned' | 'pending'> {
    // A claim without its record is usually a create between its steps 1 and 2 (a millisecond or
    // two): wait briefly so the caller gets an id it can read.
    for (let poll = 0; ; poll++) {
      const status = await this.redis.hget(this.keys.reg(holder.id), 'status')
      if (status !== null) return status === 'revoked' ? 'revoked' : 'live'
      if (this.clock() - holder.claimedAt > this.claimGraceMs) return 'abandoned'
      if (poll >= PENDING_POLLS) return 'pending'
      await sleep(PENDING_POLL_MS)
    }
  }

  async get(id: string): Promise<StoredRegistration | null> {
    const hash = await this.redis.hgetall(this.keys.reg(id))
    if (hash.id === undefined) return null
    return decodeStored(this.keyRing, hash)
  }

  async getMeta(id: string): Promise<(Registration & RegistrationUsage) | null> {
    const values = await this.redis.hmget(this.keys.reg(id), ...PUBLIC_FIELDS)
    if (values[0] === null || values[0] === undefined) return null
    const hash: Record<string, string | undefined> = {}
    PUBLIC_FIELDS.forEach((field, i) => {
      const value = values[i]
      if (value !== null && value !== undefined) hash[field] = value
    })
    return decodeMeta(hash)
  }

  async update(
    id: string,
    expectedVersion: number,
    patch: RegistrationPatch,
    secrets?: SecretsPatch,
  ): Promise<Registration | null> {
    const changes = encodeUpdate(this.keyRing, id, patch, secrets, new Date(this.clock()).toISOString())
    const pairs = flatten(changes.set)
    let reply: [string, string[]] | null | false
    try {
      reply = (await runScript(
        this.redis,
        UPDATE_RECORD,
        [this.keys.reg(id)],
        [String(expectedVersion), patch.status ?? '', pairs.length / 2, ...pairs, ...changes.del],
      )) as [string, string[]] | null | false
    } catch (error) {
      if (error instanceof Error && error.message.includes('REVOKED_FINAL')) throw revokedIsFinal(id)
      throw error
    }
    // nil (RESP2 conversion of Lua false): missing record or version conflict
    if (reply === null || reply === false) return null
    const registration = decodeRegistration(pairsToHash(reply[1]))
    if (registration.status === 'revoked') {
      const field = uniquenessField(registration)
      if (field !== undefined) {
        await runScript(this.redis, RELEASE_CLAIM, [this.keys.delegated, this.keys.idle], [field, id])
      }
    }
    return registration
  }

  async touch(id: string, usage: RegistrationUsage): Promise<void> {
    const set = encodeUsage(usage)
    if (Object.keys(set).length === 0) return
    const touched = await runScript(this.redis, TOUCH_RECORD, [this.keys.reg(id)], flatten(set))
    if (touched === 1 && usage.lastRefreshAt !== undefined) {
      // XX: never re-adds a revoked registration; GT: an out-of-order touch never moves it back
      await this.redis.call(
        'ZADD',
        this.keys.idle,
        'XX',
        'GT',
        isoToMs(usage.lastRefreshAt, 'lastRefreshAt'),
        id,
      )
    }
  }

  async admit(id: string, request: AdmitRequest): Promise<AdmitResult> {
    const { replayTtlMs, windowMs, clientWindowMs } = admitArguments(id, request)
    const keys = [this.keys.reg(id), this.keys.seen(id, request.replayMarker), this.keys.registrationRate(id)]
    const args: Array<string | number> = [String(request.version), replayTtlMs, windowMs]
    const { client } = request
    if (client === undefined || clientWindowMs === undefined) {
      return admitted((await runScript(this.redis, ADMIT, keys, args)) as AdmitReply, request.limit)
    }
    if (this.redis.isCluster || !this.#crossSlotScripts) {
      return this.#admitInTwo(keys, args, request.limit, client, clientWindowMs)
    }
    let reply: number[]
    try {
      // {client count, client ms left} then, unless over the client's limit, ADMIT's reply
      reply = (await runScript(
        this.redis,
        ADMIT_CLIENT,
        [...keys, this.keys.rate(client.key)],
        [...args, clientWindowMs, client.limit],
      )) as number[]
    } catch (error) {
      // A sharded Redis behind one endpoint (a cluster proxy) refuses keys of two slots before
      // running anything: send two commands from now on, as on a Cluster.
      if (!(error instanceof Error) || !error.message.startsWith('CROSSSLOT')) throw error
      this.#crossSlotScripts = false
      return this.#admitInTwo(keys, args, request.limit, client, clientWindowMs)
    }
    const clientRate = rateLimitResult(reply[0]!, client.limit, reply[1]!)
    return { ...admitted(reply.slice(2) as AdmitReply, request.limit), client: clientRate }
  }

  /** admit's `client` hit first, then ADMIT: for keys in two hash slots (a Cluster, or a proxy). */
  async #admitInTwo(
    keys: string[],
    args: Array<string | number>,
    limit: number,
    client: { key: string; limit: number },
    clientWindowMs: number,
  ): Promise<AdmitResult> {
    const clientRate = await rateHit(this.redis, this.keys, client.key, client.limit, clientWindowMs)
    if (!clientRate.allowed) return { current: false, client: clientRate }
    const reply = (await runScript(this.redis, ADMIT, keys, args)) as AdmitReply
    return { ...admitted(reply, limit), client: clientRate }
  }

  /**
   * Index entries strictly after `after` in (score, id) order: the rest of its tie (registrations
   * created in the same millisecond, read whole), then up to `count` more.
   */
  async #indexAfter(key: string, after: IndexPosition | undefined, count: number): Promise<IndexPosition[]> {
    if (after === undefined) {
      return toPositions(
        await this.redis.zrange(key, '-inf', '+inf', 'BYSCORE', 'LIMIT', 0, count, 'WITHSCORES'),
      )
    }
    const score = String(after.score)
    const results = await this.redis
      .multi()
      .zrange(key, score, score, 'BYSCORE')
      .zrange(key, `(${score}`, '+inf', 'BYSCORE', 'LIMIT', 0, count, 'WITHSCORES')
      .exec()
    if (results === null) throw new Error('redis transaction was aborted')
    const [tieResult, restResult] = results
    if (tieResult === undefined || restResult === undefined) throw new Error('redis transaction lost replies')
    if (tieResult[0]) throw tieResult[0]
    if (restResult[0]) throw restResult[0]
    const ties = (tieResult[1] as string[])
      .filter((id) => compareIds(id, after.id) > 0)
      .map((id) => ({ score: after.score, id }))
    return [...ties, ...toPositions(restResult[1] as string[])]
  }

  /**
   * Keyset pagination over an index: loads entries after `after`, keeps the ones `load` returns
   * (missing records and filtered-out items come back undefined), and looks one item ahead so
   * the last page has no cursor.
   */
  async #walk<T>(
    key: string,
    after: IndexPosition | undefined,
    limit: number,
    load: (ids: string[]) => Promise<Array<T | undefined>>,
  ): Promise<{ items: T[]; next?: IndexPosition }> {
    const found: Array<{ position: IndexPosition; item: T }> = []
    const batchSize = Math.min(Math.max(limit + 1, 20), 200)
    let position = after
    while (found.length <= limit) {
      const entries = await this.#indexAfter(key, position, batchSize)
      if (entries.length === 0) break
      const loaded = await load(entries.map((entry) => entry.id))
      for (let i = 0; i < entries.length && found.length <= limit; i++) {
        const item = loaded[i]
        if (item !== undefined) found.push({ position: entries[i]!, item })
      }
      position = entries[entries.length - 1]
    }
    const page = found.slice(0, limit)
    return {
      items: page.map((entry) => entry.item),
      ...(found.length > limit ? { next: page[page.length - 1]!.position } : {}),
    }
  }

  async list(query: RegistrationQuery): Promise<RegistrationPage> {
    const limit = clampLimit(query.limit)
    const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor)
    const key =
      query.tenantId !== undefined
        ? this.keys.tenant(query.tenantId)
        : query.app !== undefined
          ? this.keys.app(query.app)
          : this.keys.all
    const { items, next } = await this.#walk(key, after, limit, (ids) =>
      Promise.all(
        ids.map(async (id) => {
          const meta = await this.getMeta(id)
          if (meta === null) return undefined // dangling index entry
          return matchesQuery(meta, query) ? meta : undefined
        }),
      ),
    )
    return { items, ...(next === undefined ? {} : { nextCursor: encodeCursor(next) }) }
  }

  async listTenantIds(): Promise<string[]> {
    return (await this.redis.smembers(this.keys.tenants)).sort()
  }

  async listIdleDelegated(before: string, limit: number, after?: IdlePosition): Promise<IdlePosition[]> {
    const beforeMs = isoToMs(before, 'before')
    if (!(limit >= 1)) return []
    const wanted = Math.trunc(limit)
    const batchSize = Math.min(Math.max(wanted, 20), 500)
    const out: IdlePosition[] = []
    let position: IndexPosition | undefined =
      after === undefined ? undefined : { score: after.score, id: after.id }
    while (out.length < wanted) {
      const entries = await this.#indexAfter(this.keys.idle, position, batchSize)
      const inRange = entries.filter((entry) => entry.score < beforeMs)
      if (inRange.length === 0) break
      const states = await Promise.all(
        inRange.map((entry) => this.redis.hmget(this.keys.reg(entry.id), 'kind', 'status')),
      )
      inRange.forEach((entry, i) => {
        const [kind, status] = states[i] ?? []
        if (kind === 'delegated' && typeof status === 'string' && status !== 'revoked') out.push(entry)
      })
      if (inRange.length < entries.length) break
      position = inRange[inRange.length - 1]
    }
    return out.slice(0, wanted)
  }

  async reseal(id: string): Promise<boolean> {
    const key = this.keys.reg(id)
    let rewritten = false
    for (let attempt = 0; attempt < 5; attempt++) {
      const values = await this.redis.hmget(key, ...SECRET_FIELDS)
      const args: string[] = []
      SECRET_FIELDS.forEach((field: SecretField, i) => {
        const sealed = values[i]
        if (typeof sealed !== 'string' || KeyRingClass.keyIdOf(sealed) === this.keyRing.current.id) return
        const plaintext = openSecret(this.keyRing, id, field, sealed)
        args.push(field, sealed, sealSecret(this.keyRing, id, field, plaintext))
      })
      if (args.length === 0) return rewritten
      const replaced = (await runScript(this.redis, RESEAL_FIELDS, [key], args)) as number
      if (replaced > 0) rewritten = true
      if (replaced === args.length / 3) return rewritten
      // a field changed underneath (e.g. a new refresh token): read again
    }
    throw new Error(`registration ${id}: reseal kept racing with concurrent writes`)
  }

  async scanIds(cursor: string | undefined, count: number): Promise<{ ids: string[]; nextCursor?: string }> {
    const limit = clampLimit(count, 100, 1000)
    const after = cursor === undefined ? undefined : decodeCursor(cursor)
    const { items, next } = await this.#walk(this.keys.all, after, limit, (ids) =>
      Promise.all(
        ids.map(async (id) => ((await this.redis.exists(this.keys.reg(id))) === 1 ? id : undefined)),
      ),
    )
    return { ids: items, ...(next === undefined ? {} : { nextCursor: encodeCursor(next) }) }
  }
}

function toPositions(withScores: readonly string[]): IndexPosition[] {
  const out: IndexPosition[] = []
  for (let i = 0; i + 1 < withScores.length; i += 2)
    out.push({ id: withScores[i]!, score: Number(withScores[i + 1]) })
  return out
}

// ---- the rest -------------------------------------------------------------------------------

class RedisEphemeral implements EphemeralStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly keyRing: KeyRing,
  ) {}

  async put(key: string, value: string, ttlMs: number, options?: { secret?: boolean }): Promise<void> {
    requireName(key, 'ephemeral key')
    const stored = sealEphemeral(this.keyRing, key, value, options?.secret)
    await this.redis.set(this.keys.ephemeral(key), stored, 'PX', requirePositiveMs(ttlMs, 'ttlMs'))
  }

  async take(key: string, options?: { secret?: boolean }): Promise<string | null> {
    return openEphemeral(
      this.keyRing,
      key,
      await this.redis.getdel(this.keys.ephemeral(key)),
      options?.secret,
    )
  }

  async get(key: string, options?: { secret?: boolean }): Promise<string | null> {
    return openEphemeral(this.keyRing, key, await this.redis.get(this.keys.ephemeral(key)), options?.secret)
  }

  async claim(key: string, ttlMs: number): Promise<boolean> {
    requireName(key, 'ephemeral key')
    const reply = await this.redis.set(
      this.keys.ephemeral(key),
      '1',
      'PX',
      requirePositiveMs(ttlMs, 'ttlMs'),
      'NX',
    )
    return reply === 'OK'
  }

  async delete(key: string): Promise<void> {
    await this.redis.del(this.keys.ephemeral(key))
  }
}

class RedisTokenCache implements TokenCache {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly keyRing: KeyRing,
  ) {}

  async get(group: string, scope: string): Promise<CachedToken | null> {
    const sealed = await this.redis.get(this.keys.token(group, scope))
    return sealed === null ? null : openCachedToken(this.keyRing, group, scope, sealed)
  }

  async set(group: string, scope: string, token: CachedToken, ttlMs: number): Promise<void> {
    requireName(group, 'token group')
    const sealed = sealCachedToken(this.keyRing, group, scope, token)
    await runScript(
      this.redis,
      TOKEN_SET,
      [this.keys.token(group, scope), this.keys.tokenMembers(group)],
      [sealed, requirePositiveMs(ttlMs, 'ttlMs')],
    )
  }

  async deleteGroup(group: string): Promise<void> {
    await runScript(this.redis, TOKEN_DELETE_GROUP, [this.keys.tokenMembers(group)], [])
  }
}

class RedisLocks implements LockManager {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
  ) {}

  async acquire(name: string, ttlMs: number): Promise<LockHandle | null> {
    requireName(name, 'lock name')
    const token = randomBytes(20).toString('hex')
    const reply = await this.redis.set(
      this.keys.lock(name),
      token,
      'PX',
      requirePositiveMs(ttlMs, 'ttlMs'),
      'NX',
    )
    return reply === 'OK' ? { name, token } : null
  }

  async renew(handle: LockHandle, ttlMs: number): Promise<boolean> {
    const ttl = requirePositiveMs(ttlMs, 'ttlMs')
    return (await runScript(this.redis, LOCK_RENEW, [this.keys.lock(handle.name)], [handle.token, ttl])) === 1
  }

  async release(handle: LockHandle): Promise<boolean> {
    return (await runScript(this.redis, LOCK_RELEASE, [this.keys.lock(handle.name)], [handle.token])) === 1
  }
}

class RedisRateLimiter implements RateLimiter {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
  ) {}

  async hit(key: string, limit: number, windowMs: number): Promise<RateLimitResult> {
    requireName(key, 'rate-limit key')
    return rateHit(this.redis, this.keys, key, limit, requirePositiveMs(windowMs, 'windowMs'))
  }
}

class RedisAuditLog implements AuditLog {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly clock: () => number,
    private readonly maxLen: number,
    private readonly retentionMs: number | undefined,
  ) {}

  async append(event: AuditEvent): Promise<string> {
    const fields = encodeAuditFields(event, new Date(this.clock()).toISOString())
    const id = await this.redis.xadd(this.keys.audit, 'MAXLEN', '~', this.maxLen, '*', ...fields)
    if (id === null) throw new Error('XADD returned no id')
    if (this.retentionMs !== undefined) {
      // stream ids carry the server's clock: trim relative to the id just written
      const newestMs = Number(id.slice(0, id.indexOf('-')))
      await this.redis.xtrim(this.keys.audit, 'MINID', Math.max(0, newestMs - this.retentionMs))
    }
    return id
  }

  async read(options: {
    cursor?: string
    limit?: number
    order?: 'asc' | 'desc'
  }): Promise<{ items: AuditRecord[]; nextCursor?: string }> {
    const limit = clampLimit(options.limit)
    if (options.cursor !== undefined) assertAuditCursor(options.cursor)
    const entries =
      options.order === 'desc'
        ? await this.redis.xrevrange(
            this.keys.audit,
            options.cursor === undefined ? '+' : `(${options.cursor}`,
            '-',
            'COUNT',
            limit,
          )
        : await this.redis.xrange(
            this.keys.audit,
            options.cursor === undefined ? '-' : `(${options.cursor}`,
            '+',
            'COUNT',
            limit,
          )
    return auditPage(
      entries.map(([id, fields]) => decodeAuditFields(id, fields)),
      limit,
    )
  }
}

export function createRedisStore(options: RedisStoreOptions): Store {
  const { redis, keyRing, keyPrefix } = options
  if (/[{}]/.test(keyPrefix)) {
    throw new TypeError('keyPrefix must not contain { or } (it would change hash slots)')
  }
  // Token-group members are stored as full key names and deleted from Lua, so the client itself
  // must not rewrite key names.
  if ((redis.options as { keyPrefix?: string }).keyPrefix) {
    throw new TypeError("use createRedisStore's keyPrefix, not the ioredis keyPrefix option")
  }
  const clock = options.clock ?? Date.now
  const keys = makeKeys(keyPrefix)
  const auditMaxLen = Math.max(1, Math.trunc(options.auditMaxLen ?? 100_000))
  return {
    kind: 'redis',
    registrations: new RedisRegistrations(redis, keys, keyRing, clock, options.claimGraceMs ?? 30_000),
    ephemeral: new RedisEphemeral(redis, keys, keyRing),
    tokens: new RedisTokenCache(redis, keys, keyRing),
    locks: new RedisLocks(redis, keys),
    rateLimiter: new RedisRateLimiter(redis, keys),
    audit: new RedisAuditLog(redis, keys, clock, auditMaxLen, options.auditRetentionMs),
    async ping() {
      await redis.ping()
    },
    async close() {
      if (redis.status === 'end') return
      try {
        await redis.quit()
      } catch {
        redis.disconnect()
      }
    },
  }
}
