// Keyset pagination over the Redis sorted-set indexes (score = creation time or last refresh, ms):
// pages follow (score, id) order, so new entries never shift a page and ties in one millisecond
// are read whole. A listing over several indexes (an app's three statuses, a status of every app…)
// merges them: each gives its next entries in one transaction, the merge keeps the first ones.
// Dangling entries (an index entry whose record is missing) are skipped by the caller's loader.
import type { IndexPosition } from '../pagination.js'
import { compareIds, comparePositions } from '../pagination.js'
import type { RedisClient } from '../redis-connection.js'

/**
 * Index entries strictly after `after` in (score, id) order: the rest of its tie (registrations
 * created in the same millisecond, read whole), then up to `count` more.
 */
export async function indexAfter(
  redis: RedisClient,
  key: string,
  after: IndexPosition | undefined,
  count: number,
): Promise<IndexPosition[]> {
  if (after === undefined) {
    return toPositions(await redis.zrange(key, '-inf', '+inf', 'BYSCORE', 'LIMIT', 0, count, 'WITHSCORES'))
  }
  const score = String(after.score)
  const results = await redis
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
 * The first `count` entries strictly after `after` in (score, id) order over several indexes (ties
 * of one millisecond included), read in one transaction so an entry moving between two of them is
 * seen in exactly one. An id in two of them counts once.
 */
export async function mergedAfter(
  redis: RedisClient,
  keys: readonly string[],
  after: IndexPosition | undefined,
  count: number,
): Promise<IndexPosition[]> {
  if (keys.length === 1) return indexAfter(redis, keys[0]!, after, count)
  if (keys.length === 0) return []
  const multi = redis.multi()
  const score = after === undefined ? undefined : String(after.score)
  for (const key of keys) {
    if (score === undefined) {
      multi.zrange(key, '-inf', '+inf', 'BYSCORE', 'LIMIT', 0, count, 'WITHSCORES')
    } else {
      multi.zrange(key, score, score, 'BYSCORE')
      multi.zrange(key, `(${score}`, '+inf', 'BYSCORE', 'LIMIT', 0, count, 'WITHSCORES')
    }
  }
  const results = await multi.exec()
  if (results === null) throw new Error('redis transaction was aborted')
  const merged: IndexPosition[] = []
  results.forEach(([error, value], i) => {
    if (error) throw error
    const replies = value as string[]
    if (after !== undefined && i % 2 === 0) {
      // the tie of the cursor's millisecond: the ids after the cursor's
      for (const id of replies) if (compareIds(id, after.id) > 0) merged.push({ score: after.score, id })
    } else {
      merged.push(...toPositions(replies))
    }
  })
  merged.sort(comparePositions)
  const out: IndexPosition[] = []
  for (const position of merged) {
    if (out.length >= count) break
    const last = out[out.length - 1]
    if (last === undefined || last.id !== position.id || last.score !== position.score) out.push(position)
  }
  return out
}

/**
 * Keyset pagination over an index (or several, merged): loads entries after `after`, keeps the
 * ones `load` returns (missing records and filtered-out items come back undefined), and looks one
 * item ahead so the last page has no cursor.
 */
export async function walkIndex<T>(
  redis: RedisClient,
  key: string | readonly string[],
  after: IndexPosition | undefined,
  limit: number,
  load: (ids: string[]) => Promise<Array<T | undefined>>,
): Promise<{ items: T[]; next?: IndexPosition }> {
  const found: Array<{ position: IndexPosition; item: T }> = []
  const batchSize = Math.min(Math.max(limit + 1, 20), 200)
  let position = after
  while (found.length <= limit) {
    const entries =
      typeof key === 'string'
        ? await indexAfter(redis, key, position, batchSize)
        : await mergedAfter(redis, key, position, batchSize)
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

function toPositions(withScores: readonly string[]): IndexPosition[] {
  const out: IndexPosition[] = []
  for (let i = 0; i + 1 < withScores.length; i += 2)
    out.push({ id: withScores[i]!, score: Number(withScores[i + 1]) })
  return out
}
