// Access tokens for registrations: served from the sealed cache while fresh, otherwise fetched
// from Entra ID exactly once per expiry, however many requests and broker instances ask at once.
// This file is the single-flight and lock core; the pieces it coordinates live beside it:
//   token-groups.ts        cache groups and this instance's copy of fresh tokens
//   token-markers.ts       failure and throttle markers shared between instances
//   token-grant.ts         the call to Entra (grant, retry) and the answer to its failures
//   token-registration.ts  needs_consent, rotated refresh token, status errors
//
//   request ──► cache fresh? ──yes──► hit
//                 │ no
//                 ▼
//   in-process single-flight (one promise per group+scope; other requests of this instance share it)
//                 │ leader of this instance
//                 ▼
//   Redis lock `token-refresh:<group>|<scope>` (random token, compare-and-delete, renewed while held)
//      │ acquired                                  │ held by another instance
//      ▼                                           ▼
//   re-read cache (another instance may have     wait: poll the cache (short backoff) until the
//   just refreshed), re-read the registration,   leader's token appears (`shared`), the leader's
//   honour a shared throttle marker, call        failure is published, or the lock frees (then try
//   upstream (≤ upstream timeout, one retry on   to lead); give up at the response deadline
//   5xx/timeout), store the rotated refresh
//   token with compare-and-set, cache, release
//
// Failures are published for waiters (`token-fail:` keys), a 429 sets `throttle:` for every
// instance until Retry-After, and consent failures move the registration to `needs_consent`.

import type { FastifyBaseLogger } from 'fastify'
import { withDeadline } from '../abortable.js'
import type { Config } from '../config.js'
import type { IdentityProvider, TokenGrant } from '../entra/types.js'
import { type ErrorCode, isBrokerError, otherInstanceFetching, tokenDeadlinePassed } from '../errors.js'
import type { Metrics } from '../metrics.js'
import type { CachedToken, LockHandle, Registration, Store } from '../store/types.js'
import { ANSWER_MARGIN_MS, DEFAULT_RETRY_AFTER_S, grantFailure, requestGrant, sleep } from './token-grant.js'
import { LocalTokenCache, tokenGroup } from './token-groups.js'
import {
  checkThrottle,
  failureError,
  failureKey,
  parseFailure,
  publishFailure,
  recordThrottle,
} from './token-markers.js'
import { RegistrationLifecycle } from './token-registration.js'
import type { AppScopes } from './token-scope.js'
import { SingleFlight } from './token-single-flight.js'
import { recordUpstreamState } from './upstream-state.js'

/** What a TokenIssuer needs; one issuer per broker instance. */
export interface TokenIssuerDeps {
  config: Config
  store: Store
  idp: IdentityProvider
  metrics: Metrics
  logger: FastifyBaseLogger
  clock: () => number
}

/** One request for an access token. */
export interface IssueRequest {
  /** Registration metadata as read for this request (status already checked by the caller). */
  registration: Registration
  app: AppScopes
  scope: string
  /** Epoch ms (by `clock`) by which the caller must have an answer. */
  deadlineAt: number
  /** A cache entry the caller already read for this group+scope (saves a round trip). */
  cached?: CachedToken | null
  /** Keep-alive: exchange the refresh token even when the cache is fresh. */
  force?: boolean
}

/** Where an issued token came from (the `result` label of the token cache metric). */
export type TokenSource =
  /** Fresh in the cache. */
  | 'hit'
  /** Fetched upstream by this request. */
  | 'miss'
  /** Fetched by another request or instance while this one waited. */
  | 'shared'
  /** Upstream throttled or failing: a cached token still valid (inside the refresh margin) served. */
  | 'stale'

/** An access token as answered to the integration. */
export interface IssuedToken {
  accessToken: string
  /** Epoch ms. */
  expiresAt: number
  scope: string
  source: TokenSource
}

const POLL_START_MS = 15
const POLL_MAX_MS = 200
/** Failures during which a cached token inside the refresh margin is still served. */
const SERVE_STALE_ON: ReadonlySet<ErrorCode> = new Set([
  'upstream_throttled',
  'upstream_unavailable',
  'upstream_timeout',
])
/** A stale token is served only while at least this much of its life is left. */
const STALE_MIN_LEFT_MS = 30_000

/** Issues access tokens: cache, single-flight per instance, one refresh lock across instances. */
export class TokenIssuer {
  readonly #deps: TokenIssuerDeps
  readonly #flights = new SingleFlight<IssuedToken>()
  /** Fresh tokens this instance has already opened: a hit costs no Redis read. */
  readonly #local: LocalTokenCache
  readonly #lifecycle: RegistrationLifecycle
  readonly #lockTtlMs: number

  constructor(deps: TokenIssuerDeps) {
    this.#deps = deps
    // Outlasts both upstream attempts plus the jitter between them; renewed while held anyway.
    this.#lockTtlMs = deps.config.tokens.upstreamTimeoutMs * 2 + 2_000
    this.#local = new LocalTokenCache(deps.config.tokens.refreshMarginSeconds * 1000, deps.clock)
    this.#lifecycle = new RegistrationLifecycle({
      config: deps.config,
      store: deps.store,
      logger: deps.logger,
      clock: deps.clock,
      onTokensDropped: (group) => this.#local.forgetGroup(group),
    })
  }

  /** A fresh token this instance holds for the registration's group and scope, without I/O. */
  peek(registration: Registration, scope: string): CachedToken | undefined {
    return this.#local.get(tokenGroup(registration), scope)
  }

  /** Serves a fresh cached token, e.g. one `peek` returned: a hit, counted. */
  served(registration: Registration, token: CachedToken): IssuedToken {
    this.#deps.metrics.tokenCache.inc({ app: registration.app, result: 'hit' })
    return issued(token, 'hit')
  }

  /**
   * An access token for the request: a fresh cached one, else one fetched once for every caller
   * of every instance; a still-valid cached token when Entra throttles or fails. Throws a
   * BrokerError (consent required, throttled, upstream failure, deadline).
   */
  async issue(request: IssueRequest): Promise<IssuedToken> {
    const { store, clock, metrics } = this.#deps
    const group = tokenGroup(request.registration)
    const appLabel = request.registration.app
    const cached =
      request.cached === undefined
        ? (this.peek(request.registration, request.scope) ?? (await store.tokens.get(group, request.scope)))
        : request.cached
    if (!request.force && cached !== null && this.#local.isFresh(cached, clock())) {
      this.#local.remember(group, request.scope, cached)
      return this.served(request.registration, cached)
    }
    const key = `${group}|${request.scope}${request.force ? '|force' : ''}`
    const { promise, shared } = this.#flights.run(key, () => this.#acquireAndFetch(request, group, cached))
    let result: IssuedToken
    try {
      result = await withDeadline(promise, request.deadlineAt - clock(), () =>
        tokenDeadlinePassed(DEFAULT_RETRY_AFTER_S),
      )
    } catch (error) {
      // Throttled or failing upstream: a token that is still valid beats an error.
      if (
        isBrokerError(error) &&
        SERVE_STALE_ON.has(error.code) &&
        cached !== null &&
        cached.expiresAt - STALE_MIN_LEFT_MS > clock()
      ) {
        metrics.tokenCache.inc({ app: appLabel, result: 'stale' })
        return issued(cached, 'stale')
      }
      throw error
    }
    const source: TokenSource = shared && result.source === 'miss' ? 'shared' : result.source
    this.#local.remember(group, request.scope, result)
    metrics.tokenCache.inc({ app: appLabel, result: source })
    return { ...result, source }
  }

  /** The instance-level leader: takes the Redis lock or waits for whoever holds it. */
  async #acquireAndFetch(
    request: IssueRequest,
    group: string,
    seen: CachedToken | null,
  ): Promise<IssuedToken> {
    const { store, clock, metrics } = this.#deps
    const lockName = `token-refresh:${group}|${request.scope}`
    const failKey = failureKey(group, request.scope)
    await checkThrottle(store, request.registration, clock())

    const waitStart = clock()
    let delay = POLL_START_MS
    let waited = false
    for (;;) {
      const handle = await store.locks.acquire(lockName, this.#lockTtlMs)
      if (handle !== null) {
        metrics.lockWaits.inc({ result: waited ? 'waited' : 'acquired' })
        if (waited) metrics.lockWaitSeconds.observe((clock() - waitStart) / 1000)
        return await this.#lead(request, group, seen, handle, failKey)
      }
      // Another instance is refreshing: take its result rather than refreshing again.
      waited = true
      const remaining = request.deadlineAt - clock()
      if (remaining <= delay + ANSWER_MARGIN_MS) {
        metrics.lockWaits.inc({ result: 'timeout' })
        metrics.lockWaitSeconds.observe((clock() - waitStart) / 1000)
        throw otherInstanceFetching(2)
      }
      await sleep(delay)
      delay = Math.min(Math.ceil(delay * 1.6), POLL_MAX_MS)
      const [entry, failure] = await Promise.all([
        store.tokens.get(group, request.scope),
        store.ephemeral.get(failKey),
      ])
      if (entry !== null && this.#isNewResult(entry, seen, request.force === true)) {
        metrics.lockWaitSeconds.observe((clock() - waitStart) / 1000)
        metrics.lockWaits.inc({ result: 'waited' })
        return issued(entry, 'shared')
      }
      const marker = parseFailure(failure)
      if (marker !== undefined && marker.at >= waitStart) {
        metrics.lockWaitSeconds.observe((clock() - waitStart) / 1000)
        metrics.lockWaits.inc({ result: 'waited' })
        throw failureError(marker, clock())
      }
    }
  }

  /** A cache entry written by someone else after we looked (or fresh, when not forcing). */
  #isNewResult(entry: CachedToken, seen: CachedToken | null, force: boolean): boolean {
    const now = this.#deps.clock()
    if (entry.expiresAt <= now) return false
    const changed = seen === null || entry.accessToken !== seen.accessToken
    return force ? changed : changed || this.#local.isFresh(entry, now)
  }

  /** Holds the lock (renewed while held) around the re-read and the fetch; always releases it. */
  async #lead(
    request: IssueRequest,
    group: string,
    seen: CachedToken | null,
    handle: LockHandle,
    failKey: string,
  ): Promise<IssuedToken> {
    const { store, logger, clock } = this.#deps
    const renewEvery = Math.max(250, Math.floor(this.#lockTtlMs / 3))
    const renewal = setInterval(() => {
      store.locks.renew(handle, this.#lockTtlMs).then(
        (held) => {
          if (!held)
            logger.warn({ lock: handle.name }, 'token refresh lock lease lost before the refresh ended')
        },
        (error: unknown) =>
          logger.warn({ err: error, lock: handle.name }, 'token refresh lock renewal failed'),
      )
    }, renewEvery)
    renewal.unref()
    try {
      // Re-read after acquiring: another instance may have refreshed between our miss and our lock.
      const entry = await store.tokens.get(group, request.scope)
      if (entry !== null && this.#isNewResult(entry, seen, request.force === true)) {
        return issued(entry, 'shared')
      }
      await checkThrottle(store, request.registration, clock())
      return await this.#fetch(request, group, failKey)
    } finally {
      clearInterval(renewal)
      await store.locks.release(handle).catch((error: unknown) => {
        logger.warn(
          { err: error, lock: handle.name },
          'token refresh lock release failed (it expires by itself)',
        )
      })
    }
  }

  /** Under the lock: the grant from Entra, the rotated refresh token stored, the token cached. */
  async #fetch(request: IssueRequest, group: string, failKey: string): Promise<IssuedToken> {
    const { store, clock, logger, config } = this.#deps
    let registration = request.registration
    let refreshToken: string | undefined
    let clientSecret: string | undefined
    if (registration.kind === 'delegated') {
      // Admin-consent flights are shared by every registration of the tenant and use no secret of
      // the registration, whose status the caller has just checked; delegated ones re-read it.
      ;({ registration, refreshToken, clientSecret } = await this.#lifecycle.readForRefresh(registration.id))
    } else if (registration.ownClientId !== undefined) {
      // A tenant's own app: its flight is its own, with the app's secret from the store.
      ;({ registration, clientSecret } = await this.#lifecycle.readOwnAppSecret(registration.id))
    }

    const startedAt = clock()
    let grant: TokenGrant
    try {
      grant = await requestGrant(this.#deps, request, registration, refreshToken, clientSecret)
    } catch (error) {
      const failure = grantFailure(error, registration, config, logger)
      if (failure.decision === 'needs_consent') {
        const { upstream } = failure
        await this.#lifecycle.markNeedsConsent(registration, upstream.label, upstream.error ?? upstream.kind)
      } else if (failure.decision === 'throttled') {
        // grantFailure's throttled answer always carries Retry-After.
        await recordThrottle(store, registration, failure.error.retryAfter as number, clock(), logger)
      }
      await publishFailure(store, failKey, failure.error, clock(), logger)
      throw failure.error
    }

    // a token after a throttle window: `upstream.recovered` (the store answers "no change" otherwise)
    await recordUpstreamState(store, registration, false, clock(), logger)
    const lifetimeS = Number.isFinite(grant.expiresIn) && grant.expiresIn > 0 ? grant.expiresIn : 3599
    const expiresAt = startedAt + Math.floor(lifetimeS * 1000)
    const token: CachedToken = {
      accessToken: grant.accessToken,
      expiresAt,
      scope: grant.scope === '' ? request.scope : grant.scope,
    }
    if (registration.kind === 'delegated') {
      if (grant.refreshToken !== undefined && grant.refreshToken !== '') {
        await this.#lifecycle.storeRotatedRefreshToken(
          registration.id,
          refreshToken as string,
          grant.refreshToken,
        )
      }
      this.#lifecycle.recordRefresh(registration.id)
    }
    const ttl = Math.max(1_000, expiresAt - clock())
    await store.tokens.set(group, request.scope, token, ttl)
    return { ...token, source: 'miss' }
  }
}

/** A cached token as served from `source`. */
function issued(token: CachedToken, source: TokenSource): IssuedToken {
  return { accessToken: token.accessToken, expiresAt: token.expiresAt, scope: token.scope, source }
}
