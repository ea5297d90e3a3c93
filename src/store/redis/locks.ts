// Distributed locks in Redis: SET NX PX with a random token; renew and release are scripts that
// act only while the lock still holds that token, so an expired holder never frees another's lock.
import { randomBytes } from 'node:crypto'
import type { RedisClient } from '../redis-connection.js'
import type { LockHandle, LockManager } from '../types.js'
import { requireName, requirePositiveMs } from '../validation.js'
import type { RedisKeys } from './keys.js'
import { LOCK_RELEASE, LOCK_RENEW, runScript } from './scripts.js'

/** `LockManager` on Redis: one `lock:<name>` string per lock. */
export class RedisLocks implements LockManager {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
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
