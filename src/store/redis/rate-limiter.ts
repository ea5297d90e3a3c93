// Fixed-window rate limits in Redis shared by every instance: one counter per key, counted and
// expired by one script (the first hit starts the window).
import { rateLimitResult } from '../rate-window.js'
import type { RedisClient } from '../redis-connection.js'
import type { RateLimiter, RateLimitResult } from '../types.js'
import { requireName, requirePositiveMs } from '../validation.js'
import type { RedisKeys } from './keys.js'
import { RATE_HIT, runScript } from './scripts.js'

/** One hit on rate-limit key `key` (checked arguments): RateLimiter.hit, and admit's `client` on a Cluster. */
export async function rateHit(
  redis: RedisClient,
  keys: RedisKeys,
  key: string,
  limit: number,
  windowMs: number,
): Promise<RateLimitResult> {
  const [count, ttl] = (await runScript(redis, RATE_HIT, [keys.rate(key)], [windowMs])) as [number, number]
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
    return rateHit(this.redis, this.keys, key, limit, requirePositiveMs(windowMs, 'windowMs'))
  }
}
