// The fixed-window rate-limit answer both stores give, from the window's count and time left: the
// Redis scripts and the memory counters count, this turns the count into allowed/remaining/retry.
import type { RateLimitResult } from './types.js'

/** A fixed-window answer from the window's count after this hit and its remaining ms. */
export function rateLimitResult(count: number, limit: number, ttlMs: number): RateLimitResult {
  const allowed = count <= limit
  return { allowed, remaining: Math.max(0, limit - count), retryAfterMs: allowed ? 0 : Math.max(1, ttlMs) }
}
