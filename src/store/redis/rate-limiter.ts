// Fixed-window rate limits in Redis shared by every instance: one counter per key, counted and
// expired by one script (the first hit starts the window); `take` counts only what it lets through.
import { rateLimitResult } from '../rate-window.js'
import type { RedisClient } from '../redis-connection.js'
import type { RateLimiter, RateLimitResult } from '../types.js'
import { requireName, requirePositiveInteger, requirePositiveMs } from '../validation.js'
import type { RedisKeys } from './keys.js'
import { RATE_HIT, RATE_TAKE, runScript } from './scripts.js'

/** One hit on rate-limit key `key` (checked arguments): RateLimiter.hit, and admit's `client` on a Cluster. */
export async function rateHit(
  redis: RedisClient,
  keys: RedisKeys,
  key: string,
  limit: number,
  windowMs: number,
): Promise<RateLimitResult> {
  const [count, ttl] = (await runScript(redis, RATE_HIT, [keys.rate(key)], [windowMs, limit])) as [
    number,
    number,
  ]
  return rateLimitResult(count, limit, ttl)
}

/** `RateLimiter` on Redis: one `rl:<key>` counter per key. */
export class RedisRateLimiter implements RateLimiter {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
  ) {}

  async hit(key: string, limit: number, windowMs: number): Promise<RateLimitResult> {
    requireName(key, 'rate-limit key')
    requirePositiveInteger(limit, 'limit')
    return rateHit(this.redis, this.keys, key, limit, requirePositiveMs(windowMs, 'windowMs'))
  }

  async take(key: string, limit: number, windowMs: number): Promise<RateLimitResult> {
    requireName(key, 'rate-limit key')
    requirePositiveInteger(limit, 'limit')
    const window = requirePositiveMs(windowMs, 'windowMs')
    const [count, ttl, taken] = (await runScript(
      this.redis,
      RATE_TAKE,
      [this.keys.rate(key)],
      [limit, window],
    )) as [number, number, number]
    return taken === 1
      ? { allowed: true, remaining: Math.max(0, limit - count), retryAfterMs: 0 }
      : { allowed: false, remaining: 0, retryAfterMs: Math.max(1, ttl) }
  }
}
