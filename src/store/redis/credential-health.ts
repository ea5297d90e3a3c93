// The apps' credential health on Redis: a failing mark per credential (SET NX PX, so exactly one
// instance sees the state change) and its last success; all under the `{cred}` hash tag, so a
// registration's whole credential list is one MGET even on a Cluster.
import type { RedisClient } from '../redis-connection.js'
import type { CredentialHealthStore } from '../types.js'
import { requireName, requirePositiveMs } from '../validation.js'
import type { RedisKeys } from './keys.js'

/** `CredentialHealthStore` on Redis. */
export class RedisCredentialHealth implements CredentialHealthStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
  ) {}

  async markFailing(credential: string, code: string, ttlMs: number): Promise<boolean> {
    requireName(credential, 'credential')
    const ttl = requirePositiveMs(ttlMs, 'ttlMs')
    const reply = await this.redis.set(
      this.keys.credentialFailing(credential),
      code || 'failed',
      'PX',
      ttl,
      'NX',
    )
    return reply === 'OK'
  }

  async failing(credentials: readonly string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>()
    if (credentials.length === 0) return out
    const values = await this.redis.mget(...credentials.map((c) => this.keys.credentialFailing(c)))
    credentials.forEach((credential, i) => {
      const value = values[i]
      if (typeof value === 'string') out.set(credential, value)
    })
    return out
  }

  async clearFailing(credential: string): Promise<boolean> {
    return (await this.redis.del(this.keys.credentialFailing(credential))) > 0
  }

  async recordSuccess(credential: string, atMs: number, ttlMs: number): Promise<void> {
    requireName(credential, 'credential')
    await this.redis.set(
      this.keys.credentialSuccess(credential),
      String(atMs),
      'PX',
      requirePositiveMs(ttlMs, 'ttlMs'),
    )
  }

  async lastSuccess(credentials: readonly string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>()
    if (credentials.length === 0) return out
    const values = await this.redis.mget(...credentials.map((c) => this.keys.credentialSuccess(c)))
    credentials.forEach((credential, i) => {
      const at = Number(values[i])
      if (values[i] != null && Number.isFinite(at)) out.set(credential, at)
    })
    return out
  }
}
