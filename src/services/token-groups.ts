// Where access tokens are cached: the cache group of a registration (admin-consent registrations of
// one app and tenant share app-only tokens; delegated ones have their own), and this instance's
// copy of the fresh tokens it has already opened, so a hit costs no Redis read.
import { BoundedCache } from '../bounded-cache.js'
import type { CachedToken, Registration } from '../store/types.js'

/** Most token groups kept in the per-instance cache (each holds a token per scope asked for). */
const LOCAL_CACHE_MAX = 10_000

/** Cache group of a registration's own tokens (delegated). */
export function registrationTokenGroup(id: string): string {
  return `reg:${id}`
}

/** Cache group of the app-only tokens shared by every admin registration of an app and tenant. */
export function tenantTokenGroup(registration: Pick<Registration, 'app' | 'cloud' | 'tenantId'>): string {
  return `tenant:${registration.app}:${registration.cloud}:${registration.tenantId}`
}

/**
 * Cache group: shared by a tenant's admin-consent registrations of one hosted app; per registration
 * otherwise (delegated, or the tenant's own app, whose tokens carry that app's permissions).
 */
export function tokenGroup(registration: Registration): string {
  return registration.kind === 'admin' && registration.ownClientId === undefined
    ? tenantTokenGroup(registration)
    : registrationTokenGroup(registration.id)
}

/** A token this instance holds, with the scope it is cached under (the grant may name another). */
export interface HeldToken extends CachedToken {
  readonly requestedScope: string
}

/**
 * Fresh tokens this instance has already opened, by group, then scope: at most `maxGroups` groups
 * (the group written to longest ago goes first), each holding at most one token per scope its app
 * allows (scopes are resolved from the app's allowlist before they get here), so at most
 * `maxGroups` × the largest allowlist tokens. Two Map lookups with strings the caller already
 * holds, instead of one under a key built per request: a cache hit reads this on every request.
 * Safe to serve because every request re-checks the registration's status in the store, and a
 * consent failure drops the group here as it does in Redis.
 */
export class LocalTokenCache {
  readonly #groups: BoundedCache<Map<string, HeldToken>>
  readonly #marginMs: number
  readonly #clock: () => number

  /** `marginMs`: a token is fresh while more than this is left of its life. */
  constructor(marginMs: number, clock: () => number, maxGroups = LOCAL_CACHE_MAX) {
    this.#groups = new BoundedCache({ maxEntries: maxGroups })
    this.#marginMs = marginMs
    this.#clock = clock
  }

  /** Served while more than the refresh margin is left. */
  isFresh(token: CachedToken, now: number): boolean {
    return token.expiresAt - this.#marginMs > now
  }

  /** The fresh token held for `group` and `scope`, without I/O; a stale one is dropped. */
  get(group: string, scope: string): HeldToken | undefined {
    const tokens = this.#groups.get(group)
    if (tokens === undefined) return undefined
    const token = tokens.get(scope)
    if (token === undefined) return undefined
    if (this.isFresh(token, this.#clock())) return token
    tokens.delete(scope)
    // an emptied group gives its place back
    if (tokens.size === 0) this.#groups.delete(group, tokens)
    return undefined
  }

  /** Keeps a copy of `token` while it is fresh (a stale one is not kept). */
  remember(group: string, scope: string, token: CachedToken): void {
    if (!this.isFresh(token, this.#clock())) return
    const tokens = this.#groups.get(group) ?? new Map<string, HeldToken>()
    // (re)written as the newest group: the one written to longest ago is evicted first
    this.#groups.set(group, tokens)
    tokens.set(scope, {
      accessToken: token.accessToken,
      expiresAt: token.expiresAt,
      scope: token.scope,
      ...(token.refreshAt === undefined ? {} : { refreshAt: token.refreshAt }),
      requestedScope: scope,
    })
  }

  /** Drops every token of `group` (its registration needs consent again). */
  forgetGroup(group: string): void {
    this.#groups.delete(group)
  }
}
