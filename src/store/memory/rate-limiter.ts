// Fixed-window rate limits in memory (one process); admit counts its `client` key here too.
import type { RateLimiter, RateLimitResult } from '../types.js'
import { requireName, requirePositiveInteger, requirePositiveMs } from '../validation.js'
import { ExpiringMap, hitWindow } from './expiring-map.js'

/** `RateLimiter` in memory. */
export class MemoryRateLimiter implements RateLimiter {
  readonly windows: ExpiringMap<number>
  constructor(clock: () => number) {
    this.windows = new ExpiringMap(clock)
  }

  async hit(key: string, limit: number, windowMs: number): Promise<RateLimitResult> {
    requireName(key, 'rate-limit key')
    requirePositiveInteger(limit, 'limit')
    return this.count(key, limit, requirePositiveMs(windowMs, 'windowMs'))
  }

  async take(key: string, limit: number, windowMs: number): Promise<RateLimitResult> {
    requireName(key, 'rate-limit key')
    requirePositiveInteger(limit, 'limit')
    const window = requirePositiveMs(windowMs, 'windowMs')
    const count = this.windows.get(key) ?? 0
    const ttl = this.windows.ttl(key) ?? window
    if (count >= limit) return { allowed: false, remaining: 0, retryAfterMs: Math.max(1, ttl) }
    this.windows.set(key, count + 1, ttl)
    return { allowed: true, remaining: Math.max(0, limit - count - 1), retryAfterMs: 0 }
  }

  /** A hit, synchronously (admit counts its `client` key here too). */
  count(key: string, limit: number, window: number): RateLimitResult {
    return hitWindow(this.windows, key, limit, window)
  }
}
