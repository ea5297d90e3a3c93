// Short-lived values in Redis (consent-flow state, one-time result pages, session data, markers):
// plain strings with a PX expiry, sealed for their key when secret; `take` is GETDEL.
import type { KeyRing } from '../../crypto/envelope.js'
import type { RedisClient } from '../redis-connection.js'
import { openEphemeral, sealEphemeral } from '../sealing.js'
import type { EphemeralStore } from '../types.js'
import { requireName, requirePositiveMs } from '../validation.js'
import type { RedisKeys } from './keys.js'

/** `EphemeralStore` on Redis: one `eph:<key>` string per value. */
export class RedisEphemeral implements EphemeralStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly keyRing: KeyRing,
  ) {}

  async put(key: string, value: string, ttlMs: number, options?: { secret?: boolean }): Promise<void> {
    requireName(key, 'ephemeral key')
    const stored = sealEphemeral(this.keyRing, key, value, options?.secret)
    await this.redis.set(this.keys.ephemeral(key), stored, 'PX', requirePositiveMs(ttlMs, 'ttlMs'))
  }

  async take(key: string, options?: { secret?: boolean }): Promise<string | null> {
    return openEphemeral(
      this.keyRing,
      key,
      await this.redis.getdel(this.keys.ephemeral(key)),
      options?.secret,
    )
  }

  async get(key: string, options?: { secret?: boolean }): Promise<string | null> {
    return openEphemeral(this.keyRing, key, await this.redis.get(this.keys.ephemeral(key)), options?.secret)
  }

  async claim(key: string, ttlMs: number): Promise<boolean> {
    requireName(key, 'ephemeral key')
    const reply = await this.redis.set(
      this.keys.ephemeral(key),
      '1',
      'PX',
      requirePositiveMs(ttlMs, 'ttlMs'),
      'NX',
    )
    return reply === 'OK'
  }

  async delete(key: string): Promise<void> {
    await this.redis.del(this.keys.ephemeral(key))
  }
}
