// ObtainToken: the checks and answer of POST /obtain-token, the XSOAR MicrosoftApiModule's token
// endpoint (see the obtain-token protocol), without HTTP. Checks, in order (the body schema is the
// route's, before this): app → registration lookup with the per-IP rate limit in parallel (both
// skipped for a registration admitted before) → the encrypted_token authenticates under the
// registration's Key → timestamp window → content equals the Token → registration status → scope →
// [admit: one atomic store call that counts the per-IP limit when not counted yet, confirms the
// registration is still active at the version checked, claims the ciphertext (replay cache) and
// counts the per-registration rate limit; cache read] in parallel → token from the issuer. One Redis
// command per cache hit (two on a Cluster, where the per-IP counter is in another slot). A request
// refused before admit is still counted against its address. Failures are thrown as BrokerErrors.
//
// Per instance it keeps, each in one BoundedCache: imported Keys (by registration id, with the
// version they belong to), registrations admitted before (as of the version admitted, with what
// their checks need prepared once: Key, Token bytes, scopes, token group), the last usage written
// per registration, and the keys the shared rate limiter refused until their window ends. None is
// trusted past a change: admit re-checks the version in the store on every request.
import { BoundedCache } from '../bounded-cache.js'
import type { AppConfig, Config } from '../config.js'
import { type ImportedKey, matchesToken, replayMarker } from '../crypto/obtain-token.js'
import {
  type BrokerError,
  cloudWithdrawn,
  registrationBeingChanged,
  registrationOfAnotherApp,
  replayedToken,
  staleToken,
  tokenMismatch,
  unknownApp,
} from '../errors.js'
import { displayableText, ECHOED_TEXT_MAX } from '../one-line-text.js'
import type { Registration, Store } from '../store/types.js'
import {
  clientOf,
  decodeOrThrow,
  importKeyOrThrow,
  openOrThrow,
  type Prepared,
  prepare,
  type RegistrationMeta,
  rateLimitedError,
  unknownRegistrationError,
  type VersionedKey,
} from './obtain-token-checks.js'
import type { TokenIssuer } from './token-issuer.js'
import { registrationStatusError } from './token-registration.js'
import { type AppScopes, ScopeResolver } from './token-scope.js'

/** The body of POST /obtain-token as its schema admits it. */
export interface ObtainTokenBody {
  app_name: string
  registration_id: string
  encrypted_token: string
  scope?: string | null
  resource?: string | null
}

/** One token request, as the route parsed it. */
export interface ObtainTokenInput {
  /** The validated body. */
  body: ObtainTokenBody
  /** The caller's address, as the per-IP rate limit counts it. */
  clientIp: string
  /** `X-Content-Name`, raw; undefined when absent or empty. Recorded as the registration's last client. */
  clientName?: string | undefined
  /** `X-Content-Version`, raw; undefined when absent or empty. */
  clientVersion?: string | undefined
}

/** The success answer, exactly as sent (the XSOAR client reads these fields). */
export interface ObtainTokenAnswer {
  access_token: string
  token_type: 'Bearer'
  /** Whole seconds left, never negative. */
  expires_in: number
  scope: string
  /** The registration's Token, so clients that echo it back keep working. */
  refresh_token: string
}

/** What ObtainToken needs; `clock` is epoch ms. */
export interface ObtainTokenDeps {
  config: Config
  store: Store
  issuer: TokenIssuer
  scopes: ScopeResolver
  log: {
    error(object: Record<string, unknown>, message: string): void
    warn(object: Record<string, unknown>, message: string): void
  }
  clock: () => number
}

/** Usage (`lastIssuedAt`, `lastClient`) is written at most this often per registration and instance. */
export const TOUCH_EVERY_MS = 30_000
const KEY_CACHE_MAX = 10_000
const CURRENT_CACHE_MAX = 10_000
/** A registration that keeps changing between the read and admit is read at most this often. */
export const ADMIT_ATTEMPTS = 3
const TOUCH_CACHE_MAX = 50_000
const BLOCKED_MAX = 10_000

interface Touch {
  at: number
  name: string | undefined
  version: string | undefined
}

interface Limit {
  key: string
  limit: number
  windowMs: number
}

/**
 * The obtain-token service: one per app instance (its caches are per instance), built by
 * createServices. `obtain` answers a request or throws a BrokerError.
 */
export class ObtainToken {
  readonly #config: Config
  readonly #store: Store
  readonly #issuer: TokenIssuer
  readonly #scopes: ScopeResolver
  readonly #log: ObtainTokenDeps['log']
  readonly #clock: () => number
  readonly #replayWindowMs: number
  readonly #hosted: string
  /** The hosted apps by slug. */
  readonly #apps: ReadonlyMap<string, AppConfig>
  /** Imported Keys by registration id, with the version they belong to (a new Key always bumps it). */
  readonly #keys = new BoundedCache<VersionedKey>({ maxEntries: KEY_CACHE_MAX })
  /**
   * Registrations admitted before, by id, as of the version admitted: every versioned update bumps
   * the version and admit refuses another version, so an entry is never trusted past a change.
   */
  readonly #current = new BoundedCache<Prepared>({ maxEntries: CURRENT_CACHE_MAX })
  /** Last usage written per registration: when, and the raw client headers it named. */
  readonly #touched = new BoundedCache<Touch>({ maxEntries: TOUCH_CACHE_MAX })
  /**
   * A key the shared limiter refused stays refused here until its window ends (epoch ms): a flood
   * costs no Redis round trips once it is over the limit (the window would not let it through anyway).
   */
  readonly #blocked = new BoundedCache<number>({ maxEntries: BLOCKED_MAX })

  constructor(deps: ObtainTokenDeps) {
    this.#config = deps.config
    this.#store = deps.store
    this.#issuer = deps.issuer
    this.#scopes = deps.scopes
    this.#log = deps.log
    this.#clock = deps.clock
    this.#replayWindowMs = (deps.config.tokens.maxSkewSeconds * 2 + 1) * 1000
    this.#hosted = deps.config.apps.map((a) => a.slug).join(', ')
    this.#apps = new Map(deps.config.apps.map((app) => [app.slug, app]))
  }

  /**
   * Runs every check in the order of this file's header and returns the access token. `deadlineAt`
   * (epoch ms by the clock) bounds the wait for the issuer; the caller races the whole call against
   * it too.
   */
  async obtain(input: ObtainTokenInput, deadlineAt: number): Promise<ObtainTokenAnswer> {
    const config = this.#config
    const store = this.#store
    const body = input.body
    const appConfig = this.#apps.get(body.app_name)
    if (appConfig === undefined) {
      throw unknownApp(displayableText(body.app_name, ECHOED_TEXT_MAX), this.#hosted)
    }
    const ipLimit: Limit = {
      key: `obtain-token:ip:${input.clientIp}`,
      limit: config.tokens.rateLimitPerIp,
      windowMs: config.tokens.rateLimitWindowMs,
    }
    this.#checkBlocked(ipLimit.key, 'from this address')
    // Every request that gets this far counts against its address once (except one refused by this
    // instance's local block of a registration over its limit: that costs no store call at all,
    // which is the block's purpose under a flood). An active registration seen before is taken
    // from `current` and its request costs one store call: admit counts the address too (and
    // re-checks, in the store, that the registration is still active at that version). Anything
    // else is read first, in parallel with the address's hit.
    let prepared = this.#current.get(body.registration_id)
    let fromCurrent = prepared !== undefined
    let meta: RegistrationMeta | null | undefined = prepared?.meta
    let ipCounted = false
    if (meta === undefined) {
      const [hit, read] = await Promise.all([
        store.rateLimiter.hit(ipLimit.key, ipLimit.limit, ipLimit.windowMs),
        store.registrations.getMeta(body.registration_id),
      ])
      ipCounted = true
      if (!hit.allowed) throw this.#rateLimited(ipLimit.key, hit.retryAfterMs, 'from this address')
      meta = read
    }
    let raw: Buffer
    try {
      raw = decodeOrThrow(body.encrypted_token)
    } catch (error) {
      return this.#refuse(error, ipCounted ? undefined : ipLimit)
    }
    for (let attempt = 1; ; attempt++) {
      let scope: string
      try {
        if (meta === null) throw this.#unknownRegistration(appConfig.slug, body.registration_id)
        if (meta.app !== appConfig.slug) throw await this.#otherApp(meta, raw, appConfig.slug)
        if (prepared === undefined) {
          const key = this.#importedKey(meta) ?? (await this.#keyFor(meta))
          if (key === null) throw this.#unknownRegistration(appConfig.slug)
          prepared = prepare(meta, key, this.#scopes)
          fromCurrent = false
        }
        scope = this.#verify(prepared, raw, body)
      } catch (error) {
        return this.#refuse(error, ipCounted ? undefined : ipLimit)
      }
      // (#verify refused a registration whose cloud is no longer offered)
      const appScopes = prepared.appScopes as AppScopes
      const local = this.#issuer.peekGroup(prepared.group, scope)
      this.#checkBlocked(prepared.limitKey, 'for this registration')
      // Only now, authenticated: one atomic store call claims the ciphertext (replay cache), counts
      // the per-registration limit (and the address's, unless counted above) and confirms the
      // registration is still active at this version, so a revocation or new Key on any instance
      // applies to the very next request.
      const admitting = store.registrations.admit(meta.id, {
        version: meta.version,
        replayMarker: replayMarker(raw),
        replayTtlMs: this.#replayWindowMs,
        limit: config.tokens.rateLimitPerRegistration,
        windowMs: config.tokens.rateLimitWindowMs,
        client: ipCounted ? undefined : ipLimit,
      })
      const [admission, cached] =
        local === undefined
          ? await Promise.all([admitting, store.tokens.get(prepared.group, scope)])
          : [await admitting, local]
      ipCounted = true
      if (admission.client !== undefined && !admission.client.allowed) {
        throw this.#rateLimited(ipLimit.key, admission.client.retryAfterMs, 'from this address')
      }
      if (!admission.current) {
        // Changed since it was read: read it again and redo every check on the new version.
        this.#current.delete(meta.id)
        if (attempt >= ADMIT_ATTEMPTS) {
          throw registrationBeingChanged()
        }
        meta = await store.registrations.getMeta(body.registration_id)
        prepared = undefined
        continue
      }
      if (!admission.fresh) {
        throw replayedToken()
      }
      if (!admission.rate.allowed)
        throw this.#rateLimited(prepared.limitKey, admission.rate.retryAfterMs, 'for this registration')
      if (!fromCurrent) this.#current.set(meta.id, prepared)
      const token =
        local === undefined
          ? await this.#issuer.issue({ registration: meta, app: appScopes, scope, deadlineAt, cached })
          : this.#issuer.served(meta, local)
      const now = this.#clock()
      this.#recordUsage(meta.id, input, now)
      return {
        access_token: token.accessToken,
        token_type: 'Bearer',
        expires_in: Math.max(0, Math.floor((token.expiresAt - now) / 1000)),
        scope: token.scope,
        refresh_token: meta.tenantId,
      }
    }
  }

  /**
   * The error for an ID of another app's registration: which app, when the encrypted_token
   * authenticates under that registration's Key (the caller holds its values and picked the wrong
   * integration); otherwise the same answer as a missing ID, so IDs can't be probed.
   */
  async #otherApp(meta: RegistrationMeta, raw: Buffer, slug: string): Promise<BrokerError> {
    try {
      const key = this.#importedKey(meta) ?? (await this.#keyFor(meta))
      if (key !== null) {
        openOrThrow(raw, key)
        return registrationOfAnotherApp(slug, meta.app)
      }
    } catch {
      // does not authenticate (or the Key can't be read): say no more than for a missing ID
    }
    return this.#unknownRegistration(slug)
  }

  /** Reads and imports the registration's Key; the caller found none in `keys` for this version. */
  async #keyFor(meta: Registration): Promise<ImportedKey | null> {
    const stored = await this.#store.registrations.get(meta.id)
    if (stored === null) return null
    const imported = importKeyOrThrow(stored.secrets.key, meta, this.#config, this.#log)
    this.#keys.set(meta.id, { version: stored.registration.version, key: imported })
    return imported
  }

  /** The Key imported before for this very version of the registration, if any. */
  #importedKey(meta: Registration): ImportedKey | undefined {
    const cached = this.#keys.get(meta.id)
    return cached !== undefined && cached.version === meta.version ? cached.key : undefined
  }

  /**
   * Checks that need the registration, synchronous (the hot path doesn't yield here): the
   * encrypted_token authenticates under its Key, the timestamp is in the window, the content is the
   * Token, the status is active, the scope resolves. Returns the scope to serve.
   */
  #verify(prepared: Prepared, raw: Buffer, body: ObtainTokenBody): string {
    const config = this.#config
    const { meta, appScopes } = prepared
    const opened = openOrThrow(raw, prepared.key)
    const skew = Math.round(opened.timestamp - this.#clock() / 1000)
    if (Math.abs(skew) > config.tokens.maxSkewSeconds) {
      throw staleToken(skew, config.tokens.maxSkewSeconds)
    }
    if (!matchesToken(opened.content, prepared.token)) {
      throw tokenMismatch()
    }
    if (meta.status !== 'active') throw registrationStatusError(config, meta)
    if (appScopes === undefined) {
      this.#log.error(
        { registrationId: meta.id, app: meta.app, cloud: meta.cloud },
        'registration cloud is not configured',
      )
      throw cloudWithdrawn(meta.app, meta.cloud)
    }
    return ScopeResolver.resolve(appScopes, body.scope, body.resource)
  }

  /** Writes `lastIssuedAt`/`lastClient` unless written recently for the same client headers. */
  #recordUsage(id: string, input: ObtainTokenInput, now: number): void {
    const name = input.clientName
    const version = input.clientVersion
    const last = this.#touched.get(id)
    if (
      last !== undefined &&
      now - last.at < TOUCH_EVERY_MS &&
      last.name === name &&
      last.version === version
    )
      return
    this.#touched.set(id, { at: now, name, version })
    const client = clientOf(name, version)
    this.#store.registrations
      .touch(id, {
        lastIssuedAt: new Date(now).toISOString(),
        ...(client === undefined ? {} : { lastClient: client }),
      })
      .catch((error: unknown) => this.#log.warn({ err: error, registrationId: id }, 'could not record usage'))
  }

  #checkBlocked(key: string, what: string): void {
    if (this.#blocked.size === 0) return
    const until = this.#blocked.get(key)
    if (until === undefined) return
    const left = until - this.#clock()
    if (left > 0) throw rateLimitedError(left, what)
    this.#blocked.delete(key)
  }

  #rateLimited(key: string, retryAfterMs: number, what: string): BrokerError {
    this.#blocked.set(key, this.#clock() + retryAfterMs)
    return rateLimitedError(retryAfterMs, what)
  }

  /** A request refused before admit still counts against its address: past the limit, 429 wins. */
  async #refuse(error: unknown, uncounted: Limit | undefined): Promise<never> {
    if (uncounted !== undefined) {
      const hit = await this.#store.rateLimiter.hit(uncounted.key, uncounted.limit, uncounted.windowMs)
      if (!hit.allowed) throw this.#rateLimited(uncounted.key, hit.retryAfterMs, 'from this address')
    }
    throw error
  }

  #unknownRegistration(slug: string, registrationId?: string): BrokerError {
    return unknownRegistrationError(this.#config, slug, registrationId)
  }
}
