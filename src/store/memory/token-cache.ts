// Cached access tokens in memory, sealed for their group and scope; a group is one map, so
// deleting a group is one delete.
import type { KeyRing } from '../../crypto/envelope.js'
import { openCachedToken, sealCachedToken } from '../sealing.js'
import type { CachedToken, TokenCache } from '../types.js'
import { requireName, requirePositiveMs } from '../validation.js'
import { ExpiringMap } from './expiring-map.js'

/** `TokenCache` in memory. */
export class MemoryTokenCache implements TokenCache {
  readonly groups = new Map<string, ExpiringMap<string>>()
  constructor(
    private readonly keyRing: KeyRing,
    private readonly clock: () => number,
  ) {}

  async get(group: string, scope: string): Promise<CachedToken | null> {
    const sealed = this.groups.get(group)?.get(scope)
    return sealed === undefined ? null : openCachedToken(this.keyRing, group, scope, sealed)
  }

  async set(group: string, scope: string, token: CachedToken, ttlMs: number): Promise<void> {
    requireName(group, 'token group')
    const ttl = requirePositiveMs(ttlMs, 'ttlMs')
    let scopes = this.groups.get(group)
    if (scopes === undefined) {
      scopes = new ExpiringMap(this.clock)
      this.groups.set(group, scopes)
    }
    scopes.set(scope, sealCachedToken(this.keyRing, group, scope, token), ttl)
  }

  async deleteGroup(group: string): Promise<void> {
    this.groups.delete(group)
  }

  sweep(): void {
    for (const [group, scopes] of this.groups) {
      scopes.sweep()
      if (scopes.size === 0) this.groups.delete(group)
    }
  }
}
