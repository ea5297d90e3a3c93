// The order in which both stores walk idle delegated registrations (keep-alive): by bucket — a
// hash of the id, one of 4 096 —, then by last refresh (or creation), then by id. Why buckets: in
// Redis each bucket is a small sorted set that stays a compact listpack under the default
// `zset-max-listpack-entries` 128 (~100 registrations per bucket at 400 000 delegated ones), about
// a third of one big sorted set's cost; a keep-alive pass still reaches every idle registration
// once, oldest first within each bucket. The memory store walks the same order, so the two agree.
import { sha256Hex } from '../crypto/sha256.js'
import { compareIds } from './pagination.js'
import type { IdlePosition } from './types.js'

/** Number of idle buckets (3 hex digits of the id's SHA-256). */
export const IDLE_BUCKETS = 4096

/** The idle bucket of a registration id, 0 … IDLE_BUCKETS − 1. */
export function idleBucketOf(id: string): number {
  return Number.parseInt(sha256Hex(id).slice(0, 3), 16)
}

/** Orders idle positions by bucket, then last refresh, then id (as the Redis buckets are walked). */
export function compareIdle(a: IdlePosition, b: IdlePosition): number {
  const bucket = idleBucketOf(a.id) - idleBucketOf(b.id)
  if (bucket !== 0) return bucket
  return a.score === b.score ? compareIds(a.id, b.id) : a.score < b.score ? -1 : 1
}
