// Cached access tokens in Redis, sealed for their group and scope. A group's keys share one hash
// slot with its members set, so revocation deletes a whole group in one script, also on a Cluster.
import type { KeyRing } from '../../crypto/envelope.js'
import type { RedisClient } from '../redis-connection.js'
import { openCachedToken, sealCachedToken } from '../sealing.js'
import type { CachedToken, TokenCache } from '../types.js'
import { requireName, requirePositiveMs } from '../validation.js'
import type { RedisKeys } from './keys.js'
import { runScript, TOKEN_DELETE_GROUP, TOKEN_SET } from './scripts.js'

/** `TokenCache` on Redis: `tok:{group}:<sha256(scope)>` strings listed in `tok:{group}:members`. */
export class RedisTokenCache implements TokenCache {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly keyRing: KeyRing,
  ) {}

  async get(group: string, scope: string): Promise<CachedToken | null> {
    const sealed = await this.redis.get(this.keys.token(group, scope))
    return sealed === null ? null : openCachedToken(this.keyRing, group, scope, sealed)
  }

  async set(group: string, scope: string, token: CachedToken, ttlMs: number): Promise<void> {
    requireName(group, 'token group')
    const sealed = sealCachedToken(this.keyRing, group, scope, token)
    await runScript(
      this.redis,
      TOKEN_SET,
      [this.keys.token(group, scope), this.keys.tokenMembers(group)],
      [sealed, requirePositiveMs(ttlMs, 'ttlMs')],
    )
  }

  async deleteGroup(group: string): Promise<void> {
    await runScript(this.redis, TOKEN_DELETE_GROUP, [this.keys.tokenMembers(group)], [])
  }
}
