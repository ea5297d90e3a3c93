// The idle index in Redis: which delegated registrations the keep-alive should refresh, in 4 096
// small sorted sets (buckets by a hash of the id, src/store/idle-order.ts) instead of one big one
// (~145 B per entry as a skiplist, ~55 B in a listpack bucket). Reading walks the buckets in order;
// every key is in the `{idx}` slot. Data written before the buckets (one `{idx}:idle` set): while
// the store is expanded (a rolling upgrade, store-upgrade.ts) new entries go there and keep-alive
// reads it, as the previous release does; the finish moves it (`migrateLegacyIdle`, under the
// migration lock). Until then the scripts that drop an entry drop it there too, and a touch raises
// it there too.
import { IDLE_BUCKETS, idleBucketOf } from '../idle-order.js'
import { comparePositions } from '../pagination.js'
import type { RedisClient } from '../redis-connection.js'
import type { IdlePosition } from '../types.js'
import type { RedisKeys } from './keys.js'
import { LuaScript, runScript } from './scripts.js'

/** Buckets read per round trip while walking. */
const WALK_GROUP = 64

/** The bucket key of a registration id. */
export function idleKeyOf(keys: RedisKeys, id: string): string {
  return keys.idleBucket(idleBucketOf(id))
}

/**
 * Raises `id`'s idle score to `score` (a refresh). XX: never re-adds a revoked registration; GT: an
 * out-of-order touch never moves it back. The legacy set too, for an entry not moved yet.
 */
export async function raiseIdle(
  redis: RedisClient,
  keys: RedisKeys,
  id: string,
  score: number,
): Promise<void> {
  const replies = await redis
    .pipeline()
    .call('ZADD', idleKeyOf(keys, id), 'XX', 'GT', score, id)
    .call('ZADD', keys.legacyIdle, 'XX', 'GT', score, id)
    .exec()
  for (const [error] of replies ?? []) if (error) throw error
}

/**
 * Idle entries (score < `beforeMs`) strictly after `after` in idle order, bucket by bucket, handed
 * to `take` a bucket at a time until it returns false (enough) or every bucket was read.
 */
export async function walkIdle(
  redis: RedisClient,
  keys: RedisKeys,
  beforeMs: number,
  after: IdlePosition | undefined,
  take: (entries: IdlePosition[]) => Promise<boolean>,
): Promise<void> {
  const first = after === undefined ? 0 : idleBucketOf(after.id)
  for (let from = first; from < IDLE_BUCKETS; from += WALK_GROUP) {
    const pipeline = redis.pipeline()
    const to = Math.min(IDLE_BUCKETS, from + WALK_GROUP)
    for (let bucket = from; bucket < to; bucket++)
      pipeline.zrange(keys.idleBucket(bucket), '-inf', `(${beforeMs}`, 'BYSCORE', 'WITHSCORES')
    const replies = (await pipeline.exec()) ?? []
    for (const [i, [error, reply]] of replies.entries()) {
      if (error) throw error
      const flat = reply as string[]
      let entries: IdlePosition[] = []
      for (let j = 0; j + 1 < flat.length; j += 2) entries.push({ id: flat[j]!, score: Number(flat[j + 1]) })
      if (after !== undefined && from + i === first) {
        entries = entries.filter((e) => comparePositions(e, after) > 0)
      }
      if (entries.length > 0 && !(await take(entries))) return
    }
  }
}

/**
 * KEYS: legacy idle set, then bucket keys. ARGV: (id, its score as read, index of its bucket in
 * KEYS)… Moves each entry still holding the score read to its bucket (never lowering a score a
 * touch raised there meanwhile). Returns how many were moved.
 */
const MOVE_IDLE = new LuaScript(`
local moved = 0
for i = 1, #ARGV, 3 do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    redis.call('ZADD', KEYS[tonumber(ARGV[i + 2])], 'GT', ARGV[i + 1], ARGV[i])
    redis.call('ZREM', KEYS[1], ARGV[i])
    moved = moved + 1
  end
end
if redis.call('ZCARD', KEYS[1]) == 0 then redis.call('DEL', KEYS[1]) end
return moved
`)

/** Legacy idle entries read per step of the move. */
const MOVE_BATCH = 500

/** Moves every entry of the legacy idle set to its bucket (the set goes once empty). Returns how many. */
export async function migrateLegacyIdle(redis: RedisClient, keys: RedisKeys): Promise<number> {
  let moved = 0
  for (;;) {
    const flat = await redis.zrange(keys.legacyIdle, '0', String(MOVE_BATCH - 1), 'WITHSCORES')
    if (flat.length === 0) return moved
    const bucketKeys: string[] = []
    const args: string[] = []
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const key = idleKeyOf(keys, flat[i]!)
      let at = bucketKeys.indexOf(key)
      if (at < 0) at = bucketKeys.push(key) - 1
      args.push(flat[i]!, flat[i + 1]!, String(at + 2)) // KEYS[1] is the legacy set
    }
    const step = Number(await runScript(redis, MOVE_IDLE, [keys.legacyIdle, ...bucketKeys], args))
    // an entry whose score changed between the read and the move is read again next round
    moved += step
  }
}
