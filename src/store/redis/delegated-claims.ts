// Where a delegated uniqueness claim lives in Redis, and the move of claims written before that.
//
// Why: one big hash of JSON fields [app, cloud, tenant, oid] (the layout before 2026-11-30) costs
// ~230 B per delegated registration — a hashtable, since it outgrows Redis's listpack limits, and
// the field repeats what the record holds. Now the field is a 132-bit SHA-256 digest of that JSON
// (22 base64url characters: 2 pick one of 4 096 bucket hashes, 20 are the field), so every bucket
// stays a small listpack under Redis's defaults (`hash-max-listpack-entries` 128: ~100 claims per
// bucket at 400 000 delegated registrations). The value is unchanged: "<claimedAtMs>:<id>", and a
// claim's holder is checked against its record on every conflict (registration-creation.ts), so a
// digest collision would fail loudly instead of answering another user's registration.
//
// Upgrade (store-upgrade.ts): while the store is expanded (a rolling upgrade from the previous
// release, which reads and writes only the legacy hash), claims are taken in the legacy hash only.
// Once contracted, every script that reads a claim also reads the legacy field and moves it to its
// bucket when it claims; `migrateLegacyClaims` (the finish, or start-up, under the migration lock)
// moves the rest and deletes the legacy hash. Every key is in the `{idx}` slot: each script is atomic.
import { createHash } from 'node:crypto'
import type { RedisClient } from '../redis-connection.js'
import { idleKeyOf } from './idle-buckets.js'
import type { RedisKeys } from './keys.js'
import { LuaScript, runScript } from './scripts.js'

/** A claim's place: its bucket key, its field there, and its field in the legacy hash. */
export interface ClaimSlot {
  key: string
  field: string
  legacyField: string
}

/** A claim's value: when it was taken (epoch ms) and by which registration id. */
export interface Claim {
  claimedAt: number
  id: string
}

/** A claim's value "<claimedAtMs>:<id>" read. */
export function parseClaim(value: string): Claim {
  const colon = value.indexOf(':')
  return { claimedAt: Number(value.slice(0, colon)), id: value.slice(colon + 1) }
}

/** Characters of the digest naming the bucket (base64url: 64² = 4 096 buckets). */
const BUCKET_CHARS = 2
/** Characters of the digest kept: 22 base64url characters, 132 bits. */
const DIGEST_CHARS = 22

/** The slot of `uniquenessField` (registration-hash.ts: the JSON identity of the claim). */
export function claimSlot(keys: RedisKeys, uniquenessField: string): ClaimSlot {
  const digest = createHash('sha256').update(uniquenessField, 'utf8').digest('base64url')
  return {
    key: keys.delegatedClaims(digest.slice(0, BUCKET_CHARS)),
    field: digest.slice(BUCKET_CHARS, DIGEST_CHARS),
    legacyField: uniquenessField,
  }
}

/**
 * KEYS: claim bucket, idle bucket, legacy claims hash, legacy idle set. ARGV: field, id, legacy
 * field. Frees the uniqueness slot only where it names this id (in the bucket, or in the legacy
 * hash), and drops the idle entry (in its bucket, or in the legacy set).
 */
const RELEASE_CLAIM = new LuaScript(`
local function names(current) return current and string.match(current, '^%d+:(.*)$') == ARGV[2] end
if names(redis.call('HGET', KEYS[1], ARGV[1])) then redis.call('HDEL', KEYS[1], ARGV[1]) end
if names(redis.call('HGET', KEYS[3], ARGV[3])) then redis.call('HDEL', KEYS[3], ARGV[3]) end
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZREM', KEYS[4], ARGV[2])
return 1
`)

/**
 * KEYS: claim bucket, legacy claims hash. ARGV: field, legacy field. The claim wherever it is: in its
 * bucket (contracted), or in the legacy hash (expanded: a rolling upgrade, store-upgrade.ts; or
 * not moved yet) — one script, so a move in between can't hide it.
 */
const READ_CLAIM = new LuaScript(`
return redis.call('HGET', KEYS[1], ARGV[1]) or redis.call('HGET', KEYS[2], ARGV[2])
`)

/** The current claim value of `slot` ("<claimedAtMs>:<id>"), or null when free. */
export async function readClaim(
  redis: RedisClient,
  keys: RedisKeys,
  slot: ClaimSlot,
): Promise<string | null> {
  const value = await runScript(
    redis,
    READ_CLAIM,
    [slot.key, keys.legacyDelegated],
    [slot.field, slot.legacyField],
  )
  return typeof value === 'string' ? value : null
}

/** Frees the claim of `uniquenessField` if it names `id`, and drops `id`'s idle entry (a revoke). */
export async function releaseClaim(
  redis: RedisClient,
  keys: RedisKeys,
  uniquenessField: string,
  id: string,
): Promise<void> {
  const slot = claimSlot(keys, uniquenessField)
  await runScript(
    redis,
    RELEASE_CLAIM,
    [slot.key, idleKeyOf(keys, id), keys.legacyDelegated, keys.legacyIdle],
    [slot.field, id, slot.legacyField],
  )
}

/**
 * KEYS: legacy hash, then bucket keys. ARGV: (legacy field, its value as read, index of its bucket
 * in KEYS, field)… Moves each legacy claim still holding the value read to its bucket, unless the
 * bucket already holds a claim for it (written since, by a create that read the legacy one first).
 * Returns how many were moved.
 */
const MOVE_CLAIMS = new LuaScript(`
local moved = 0
for i = 1, #ARGV, 4 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    if redis.call('HSETNX', KEYS[tonumber(ARGV[i + 2])], ARGV[i + 3], ARGV[i + 1]) == 1 then moved = moved + 1 end
    redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
return moved
`)

/** KEYS[1] a hash: deleted only while it has no field. */
const DROP_IF_EMPTY = new LuaScript(`
if redis.call('HLEN', KEYS[1]) == 0 then return redis.call('DEL', KEYS[1]) end
return 0
`)

/** Legacy claims read per step of the move. */
const MOVE_BATCH = 500

/**
 * Moves every claim of the legacy hash to its bucket, then deletes the hash once empty (a create
 * by an instance of the previous release meanwhile leaves one behind: read by every script, moved
 * by the next start-up). Returns how many were moved.
 */
export async function migrateLegacyClaims(redis: RedisClient, keys: RedisKeys): Promise<number> {
  const legacy = keys.legacyDelegated
  let moved = 0
  let cursor = '0'
  do {
    const [next, flat] = await redis.hscan(legacy, cursor, 'COUNT', MOVE_BATCH)
    cursor = next
    const bucketKeys: string[] = []
    const args: string[] = []
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const slot = claimSlot(keys, flat[i]!)
      let at = bucketKeys.indexOf(slot.key)
      if (at < 0) at = bucketKeys.push(slot.key) - 1
      args.push(flat[i]!, flat[i + 1]!, String(at + 2), slot.field) // KEYS[1] is the legacy hash
    }
    if (args.length > 0) moved += Number(await runScript(redis, MOVE_CLAIMS, [legacy, ...bucketKeys], args))
  } while (cursor !== '0')
  // only while still empty: an old instance's create may have landed since the scan
  await runScript(redis, DROP_IF_EMPTY, [legacy], [])
  return moved
}
