// The order in which both stores list idle delegated registrations (keep-alive): by bucket — a
// hash of the id, one of 4 096 —, then by last refresh (or creation), then by id. Why buckets: in
// Redis each bucket is a small sorted set that stays a compact listpack under the default
// `zset-max-listpack-entries` 128 (~98 delegated registrations per bucket on average at 400 000),
// about a third of one big sorted set's cost. The memory store lists in the same order, so the two
// agree. A Redis store expanded by a rolling upgrade lists the previous release's order instead; a
// store hands out the order it lists in (`RegistrationStore.idleOrder`), so callers never pick one.
import { sha256Hex } from '../crypto/sha256.js'
import { comparePositions } from './pagination.js'
import type { IdleOrder, IdlePosition } from './types.js'

/** Number of idle buckets (3 hex digits of the id's SHA-256). */
export const IDLE_BUCKETS = 4096

/** The idle bucket of a registration id, 0 … IDLE_BUCKETS − 1. */
export function idleBucketOf(id: string): number {
  return Number.parseInt(sha256Hex(id).slice(0, 3), 16)
}

/** An idle position with its bucket worked out once, for comparing many times. */
export interface IdleSortKey extends IdlePosition {
  readonly bucket: number
}

/** The sort key of an idle position (hashes the id). */
export function idleSortKey(position: IdlePosition): IdleSortKey {
  return { id: position.id, score: position.score, bucket: idleBucketOf(position.id) }
}

/** Orders sort keys by bucket, then last refresh, then id (as the Redis buckets are read). */
export function compareIdleKeys(a: IdleSortKey, b: IdleSortKey): number {
  return a.bucket !== b.bucket ? a.bucket - b.bucket : comparePositions(a, b)
}

/** {@link compareIdleKeys} on positions (two hashes per call: not for sorting many). */
export function compareIdle(a: IdlePosition, b: IdlePosition): number {
  return compareIdleKeys(idleSortKey(a), idleSortKey(b))
}

/** This release's idle order: by bucket, then last refresh, then id (two hashes per comparison). */
export const BUCKETED_IDLE_ORDER: IdleOrder = { compare: compareIdle }

/**
 * The previous release's idle order — one idle set, by last refresh then id —: what a Redis store
 * lists while it is expanded during a rolling upgrade (redis/store-upgrade.ts), until it is finished.
 */
export const SINGLE_SET_IDLE_ORDER: IdleOrder = { compare: comparePositions }
