// Access tokens for registrations: served from the sealed cache while fresh, otherwise fetched
// from Entra ID exactly once per expiry, however many requests and broker instances ask at once.
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
import { abortable } from '../abortable.js'
import type { Config } from '../config.js'
import { type IdentityProvider, type TokenGrant, UpstreamError } from '../entra/types.js'
import { BrokerError, type BrokerErrorOptions, type ErrorCode } from '../errors.js'
import type { Metrics } from '../metrics.js'
import type { CachedToken, LockHandle, Registration, Store } from '../store/types.js'
import type { AppScopes } from './token-scope.js'
import { SingleFlight } from './token-single-flight.js'
import { asUpstreamError, classifyUpstreamError, type UpstreamDecision } from './token-upstream.js'

export interface TokenIssuerDeps {
  config: Config
  store: Store
  idp: IdentityProvider
  metrics: Metrics
  logger: FastifyBaseLogger
  clock: () => number
}

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

export type TokenSource =
  /** Fresh in the cache. */
  | 'hit'
  /** Fetched upstream by this request. */
  | 'miss'
  /** Fetched by another request or instance while this one waited. */
  | 'shared'
  /** Upstream throttled or failing: a cached token still valid (inside the refresh margin) served. */
  | 'stale'

export interface IssuedToken {
  accessToken: string
  /** Epoch ms. */
  expiresAt: number
  scope: string
  source: TokenSource
}

interface FailureMarker {
  at: number
  code: ErrorCode
  message: string
  retryAfter?: number
  details?: Record<string, string | number | boolean | null>
}

const FAILURE_MARKER_MS = 5_000
const DEFAULT_RETRY_AFTER_S = 5
const MAX_RETRY_AFTER_S = 300
const ANSWER_MARGIN_MS = 50
const POLL_START_MS = 15
const POLL_MAX_MS = 200
/** Failures during which a cached token inside the refresh margin is still served. */
const SERVE_STALE_ON: ReadonlySet<ErrorCode> = new Set([
  'upstream_throttled',
  'upstream_unavailable',
  'upstream_timeout',
])
/** Most tokens kept in the per-instance cache. */
const LOCAL_CACHE_MAX = 10_000
/** A stale token is served only while at least this much of its life is left. */
const STALE_MIN_LEFT_MS = 30_000

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)))

/** Cache group of a registration's own tokens (delegated). */
export function registrationTokenGroup(id: string): string {
  return `reg:${id}`
}

/** Cache group of the app-only tokens shared by every admin registration of an app and tenant. */
export function tenantTokenGroup(registration: Pick<Registration, 'app' | 'cloud' | 'tenantId'>): string {
  return `tenant:${registration.app}:${registration.cloud}:${registration.tenantId}`
}

/** Cache group: shared by a tenant's admin-consent registrations of one app; per registration otherwise. */
export function tokenGroup(registration: Registration): string {
  return registration.kind === 'admin'
    ? tenantTokenGroup(registration)
    : registrationTokenGroup(registration.id)
}

export function consentUrl(config: Config, app: string): string {
  return `${config.publicUrl}/${app}`
}

export class TokenIssuer {
  readonly #deps: TokenIssuerDeps
  readonly #flights = new SingleFlight<IssuedToken>()
  /**
   * Fresh tokens this instance has already opened, by `group|scope`: a hit costs no Redis read.
   * Safe because every request re-reads the registration's status from the store first; a
   * consent failure drops the group here as it does in Redis.
   */
  readonly #local = new Map<string, CachedToken>()
  readonly #lockTtlMs: number
  readonly #marginMs: number

  constructor(deps: TokenIssuerDeps) {
    this.#deps = deps
    // Outlasts both upstream attempts plus the jitter between them; renewed while held anyway.
    this.#lockTtlMs = deps.config.tokens.upstreamTimeoutMs * 2 + 2_000
    this.#marginMs = deps.config.tokens.refreshMarginSeconds * 1000
  }

  /** Served while more than the refresh margin is left. */
  isFresh(token: CachedToken, now: number): boolean {
    return token.expiresAt - this.#marginMs > now
  }

  /** A fresh token this instance holds for the registration's group and scope, without I/O. */
  peek(registration: Registration, scope: string): CachedToken | undefined {
    const key = `${tokenGroup(registration)}|${scope}`
    const token = this.#local.get(key)
    if (token === undefined) return undefined
    if (this.isFresh(token, this.#deps.clock())) return token
    this.#local.delete(key)
    return undefined
  }

  /** Serves a fresh cached token, e.g. one `peek` returned: a hit, counted. */
  served(registration: Registration, token: CachedToken): IssuedToken {
    this.#deps.metrics.tokenCache.inc({ app: registration.app, result: 'hit' })
    return issued(token, 'hit')
  }

  #remember(group: string, scope: string, token: CachedToken): void {
    if (!this.isFresh(token, this.#deps.clock())) return
    const key = `${group}|${scope}`
    if (!this.#local.has(key) && this.#local.size >= LOCAL_CACHE_MAX) {
      this.#local.delete(this.#local.keys().next().value as string)
    }
    this.#local.set(key, { accessToken: token.accessToken, expiresAt: token.expiresAt, scope: token.scope })
  }

  #forgetGroup(group: string): void {
    for (const key of this.#local.keys()) if (key.startsWith(`${group}|`)) this.#local.delete(key)
  }

  async issue(request: IssueRequest): Promise<IssuedToken> {
    const { store, clock, metrics } = this.#deps
    const group = tokenGroup(request.registration)
    const appLabel = request.registration.app
    const cached =
      request.cached === undefined
        ? (this.peek(request.registration, request.scope) ?? (await store.tokens.get(group, request.scope)))
        : request.cached
    if (!request.force && cached !== null && this.isFresh(cached, clock())) {
      this.#remember(group, request.scope, cached)
      return this.served(request.registration, cached)
    }
    const key = `${group}|${request.scope}${request.force ? '|force' : ''}`
    const { promise, shared } = this.#flights.run(key, () => this.#acquireAndFetch(request, group, cached))
    let result: IssuedToken
    try {
      result = await withDeadline(promise, request.deadlineAt - clock(), () => deadlineError())
    } catch (error) {
      // Throttled or failing upstream: a token that is still valid beats an error.
      if (
        error instanceof BrokerError &&
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
    this.#remember(group, request.scope, result)
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
    const failKey = `token-fail:${group}|${request.scope}`
    await this.#checkThrottle(request)

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
        throw new BrokerError(
          'upstream_timeout',
          'another broker instance is still fetching this access token; try again in a few seconds',
          { retryAfter: 2 },
        )
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
    return force ? changed : changed || this.isFresh(entry, now)
  }

  async #checkThrottle(request: IssueRequest): Promise<void> {
    const { store, clock } = this.#deps
    const raw = await store.ephemeral.get(throttleKey(request.registration))
    const until = raw === null ? 0 : Number(raw)
    const now = clock()
    if (!(until > now)) return
    throw throttledError(Math.max(1, Math.ceil((until - now) / 1000)))
  }

  async #lead(
    request: IssueRequest,
    group: string,
    seen: CachedToken | null,
    handle: LockHandle,
    failKey: string,
  ): Promise<IssuedToken> {
    const { store, logger } = this.#deps
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
      await this.#checkThrottle(request)
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

  async #fetch(request: IssueRequest, group: string, failKey: string): Promise<IssuedToken> {
    const { store, clock, logger, config } = this.#deps
    let registration = request.registration
    let refreshToken: string | undefined
    if (registration.kind === 'delegated') {
      // The newest state, read under the lock: status (revoked meanwhile?) and the newest refresh
      // token (another instance may have rotated it). Admin-consent flights are shared by every
      // registration of the tenant and use no secret of the registration, whose status the route
      // has just checked.
      const stored = await store.registrations.get(registration.id)
      if (stored === null) throw new BrokerError('unknown_registration', 'registration no longer exists')
      registration = stored.registration
      if (registration.status !== 'active') throw registrationStatusError(config, registration)
      refreshToken = stored.secrets.refreshToken
      if (refreshToken === undefined || refreshToken === '') {
        await this.markNeedsConsent(registration, 'no_refresh_token', 'no refresh token is stored')
        throw consentRequiredError(config, registration, 'no refresh token is stored for this registration')
      }
    }

    const startedAt = clock()
    let grant: TokenGrant
    try {
      grant = await this.#callUpstream(request, registration, refreshToken)
    } catch (error) {
      const failure = await this.#onUpstreamFailure(error, registration)
      await store.ephemeral
        .put(failKey, JSON.stringify(failure.marker), FAILURE_MARKER_MS)
        .catch((e: unknown) => logger.warn({ err: e }, 'could not publish a token failure for waiters'))
      throw failure.error
    }

    const lifetimeS = Number.isFinite(grant.expiresIn) && grant.expiresIn > 0 ? grant.expiresIn : 3599
    const expiresAt = startedAt + Math.floor(lifetimeS * 1000)
    const token: CachedToken = {
      accessToken: grant.accessToken,
      expiresAt,
      scope: grant.scope === '' ? request.scope : grant.scope,
    }
    if (registration.kind === 'delegated') {
      if (grant.refreshToken !== undefined && grant.refreshToken !== '') {
        await this.#storeRotatedRefreshToken(registration.id, refreshToken as string, grant.refreshToken)
      }
      store.registrations
        .touch(registration.id, { lastRefreshAt: new Date(clock()).toISOString() })
        .catch((e: unknown) =>
          logger.warn({ err: e, registrationId: registration.id }, 'could not record lastRefreshAt'),
        )
    }
    const ttl = Math.max(1_000, expiresAt - clock())
    await store.tokens.set(group, request.scope, token, ttl)
    return { ...token, source: 'miss' }
  }

  /** One call, and one retry with jitter on 5xx/timeout, all inside the caller's deadline. */
  async #callUpstream(
    request: IssueRequest,
    registration: Registration,
    refreshToken: string | undefined,
  ): Promise<TokenGrant> {
    const { idp, clock, metrics, config } = this.#deps
    const grantType = registration.kind === 'admin' ? 'client_credentials' : 'refresh_token'
    const resolved = request.app.resolved
    let last: UpstreamError | undefined
    for (let attempt = 0; attempt < 2; attempt++) {
      const budget = request.deadlineAt - clock() - ANSWER_MARGIN_MS
      if (budget < 100) break
      const timeoutMs = Math.min(config.tokens.upstreamTimeoutMs, budget)
      const signal = AbortSignal.timeout(timeoutMs)
      const t0 = performance.now()
      try {
        const call =
          registration.kind === 'admin'
            ? idp.clientCredentials(resolved, registration.tenantId, request.scope, signal)
            : idp.refresh(resolved, registration.tenantId, refreshToken as string, request.scope, signal)
        // An abort rejects with the signal's reason, which asUpstreamError below makes a timeout.
        const grant = await abortable(call, signal)
        metrics.upstreamRequests.inc({ grant: grantType, outcome: 'ok', code: '' })
        metrics.upstreamLatency.observe({ grant: grantType, outcome: 'ok' }, (performance.now() - t0) / 1000)
        return grant
      } catch (error) {
        const upstream = asUpstreamError(error, signal.aborted)
        last = upstream
        const code = upstream.errorCodes[0] === undefined ? '' : `AADSTS${upstream.errorCodes[0]}`
        metrics.upstreamRequests.inc({ grant: grantType, outcome: upstream.kind, code })
        metrics.upstreamLatency.observe(
          { grant: grantType, outcome: upstream.kind },
          (performance.now() - t0) / 1000,
        )
        const decision = classifyUpstreamError(upstream)
        if (decision !== 'unavailable' && decision !== 'timeout') throw upstream
        if (attempt === 0) {
          const jitter = 50 + Math.floor(Math.random() * 200)
          if (request.deadlineAt - clock() - jitter - ANSWER_MARGIN_MS < 100) break
          await sleep(jitter)
        }
      }
    }
    throw last ?? new UpstreamError('timeout', 'no time left to call the identity provider')
  }

  async #onUpstreamFailure(
    error: unknown,
    registration: Registration,
  ): Promise<{ error: BrokerError; marker: FailureMarker }> {
    const { config, logger, clock } = this.#deps
    const upstream = asUpstreamError(error, false)
    const decision: UpstreamDecision = classifyUpstreamError(upstream)
    const context = {
      registrationId: registration.id,
      app: registration.app,
      cloud: registration.cloud,
      tenantId: registration.tenantId,
      kind: upstream.kind,
      oauthError: upstream.error,
      aadsts: upstream.errorCodes,
      status: upstream.status,
      traceId: upstream.traceId,
      decision,
    }
    let brokerError: BrokerError
    switch (decision) {
      case 'needs_consent': {
        logger.warn(context, `token request refused (${upstream.label}): registration needs consent`)
        await this.markNeedsConsent(registration, upstream.label, upstream.error ?? upstream.kind)
        brokerError = consentRequiredError(
          config,
          registration,
          `Microsoft Entra ID no longer accepts this consent (${upstream.label})`,
        )
        break
      }
      case 'misconfigured':
        logger.error(
          context,
          `OPERATOR ACTION: Entra ID rejected the broker's client credentials for ${registration.app} (${registration.cloud}) with ${upstream.label}; check the client secret`,
        )
        brokerError = new BrokerError(
          'broker_misconfigured',
          `Microsoft Entra ID rejected the broker's own credentials for ${registration.app} (${upstream.label}); the broker operator must fix them, nothing needs changing on the integration`,
        )
        break
      case 'throttled': {
        const retryAfter = Math.min(
          MAX_RETRY_AFTER_S,
          Math.max(1, Math.ceil(upstream.retryAfterSeconds ?? DEFAULT_RETRY_AFTER_S)),
        )
        logger.warn({ ...context, retryAfter }, 'Entra ID throttled a token request')
        await this.#deps.store.ephemeral
          .put(throttleKey(registration), String(clock() + retryAfter * 1000), retryAfter * 1000)
          .catch((e: unknown) => logger.warn({ err: e }, 'could not record the throttle window'))
        brokerError = throttledError(retryAfter)
        break
      }
      case 'timeout':
        logger.warn(context, 'Entra ID did not answer a token request in time')
        brokerError = new BrokerError(
          'upstream_timeout',
          'Microsoft Entra ID did not answer in time; try again shortly',
          { retryAfter: DEFAULT_RETRY_AFTER_S },
        )
        break
      case 'unavailable':
        logger.warn(context, 'Entra ID is unavailable for token requests')
        brokerError = new BrokerError(
          'upstream_unavailable',
          `Microsoft Entra ID is not answering token requests (${upstream.label}); try again shortly`,
          { retryAfter: DEFAULT_RETRY_AFTER_S },
        )
        break
      default:
        logger.warn(context, `token request refused (${upstream.label})`)
        brokerError = new BrokerError(
          'upstream_error',
          `Microsoft Entra ID refused the token request (${upstream.label})${
            upstream.errorCodes.includes(90002) ? ': tenant not found in this cloud' : ''
          }`,
        )
    }
    const marker: FailureMarker = {
      at: clock(),
      code: brokerError.code,
      message: brokerError.message,
      ...(brokerError.retryAfter === undefined ? {} : { retryAfter: brokerError.retryAfter }),
      ...(brokerError.details === undefined ? {} : { details: brokerError.details }),
    }
    return { error: brokerError, marker }
  }

  /** Moves an active registration to `needs_consent` (compare-and-set, re-read on conflict). */
  async markNeedsConsent(registration: Registration, code: string, message: string): Promise<void> {
    const { store, clock, logger } = this.#deps
    for (let attempt = 0; attempt < 5; attempt++) {
      const current = attempt === 0 ? registration : await store.registrations.getMeta(registration.id)
      if (current === null || current.status !== 'active') return
      const at = new Date(clock()).toISOString()
      const updated = await store.registrations.update(current.id, current.version, {
        status: 'needs_consent',
        statusDetail: { code, message, at },
      })
      if (updated === null) continue
      logger.warn(
        { registrationId: current.id, app: current.app, tenantId: current.tenantId, code },
        'registration needs consent again',
      )
      await Promise.all([
        store.audit
          .append({
            type: 'registration.status_changed',
            actor: 'system',
            tenantId: current.tenantId,
            app: current.app,
            registrationId: current.id,
            detail: { from: 'active', to: 'needs_consent', code },
          })
          .catch((e: unknown) => logger.warn({ err: e }, 'could not append the audit event')),
        (async () => {
          this.#forgetGroup(tokenGroup(current))
          await store.tokens.deleteGroup(tokenGroup(current))
        })().catch((e: unknown) => logger.warn({ err: e }, 'could not drop cached tokens')),
      ])
      return
    }
    logger.warn(
      { registrationId: registration.id },
      'could not mark the registration needs_consent (conflicts)',
    )
  }

  /**
   * Stores the rotated refresh token with compare-and-set. On a conflict it re-reads: a revoked
   * registration is never given a token back, and a refresh token written by someone else after we
   * read ours (a new consent) is kept; otherwise ours — the newest — is written on the new version.
   */
  async #storeRotatedRefreshToken(id: string, used: string, rotated: string): Promise<void> {
    const { store, logger } = this.#deps
    let current = await store.registrations.getMeta(id)
    for (let attempt = 0; attempt < 8 && current !== null; attempt++) {
      if (current.status === 'revoked') return
      const updated = await store.registrations.update(id, current.version, {}, { refreshToken: rotated })
      if (updated !== null) return
      const again = await store.registrations.get(id)
      if (again === null) return
      if (again.secrets.refreshToken !== used && again.secrets.refreshToken !== rotated) {
        logger.info(
          { registrationId: id },
          'kept a refresh token written by another writer during the refresh',
        )
        return
      }
      if (again.secrets.refreshToken === rotated) return
      current = again.registration
    }
    logger.warn(
      { registrationId: id },
      'could not store the rotated refresh token (conflicts); the previous one still works',
    )
  }
}

/** A cached token as served from `source`. */
function issued(token: CachedToken, source: TokenSource): IssuedToken {
  return { accessToken: token.accessToken, expiresAt: token.expiresAt, scope: token.scope, source }
}

function throttleKey(registration: Registration): string {
  return `throttle:${registration.app}:${registration.cloud}:${registration.tenantId}`
}

function parseFailure(raw: string | null): FailureMarker | undefined {
  if (raw === null) return undefined
  try {
    const value = JSON.parse(raw) as FailureMarker
    return typeof value.at === 'number' && typeof value.code === 'string' ? value : undefined
  } catch {
    return undefined
  }
}

function failureError(marker: FailureMarker, now: number): BrokerError {
  const options: BrokerErrorOptions = {}
  if (marker.retryAfter !== undefined) {
    options.retryAfter = Math.max(1, marker.retryAfter - Math.floor((now - marker.at) / 1000))
  }
  if (marker.details !== undefined) options.details = marker.details
  return new BrokerError(marker.code, marker.message, options)
}

function throttledError(retryAfter: number): BrokerError {
  return new BrokerError(
    'upstream_throttled',
    `Microsoft Entra ID is throttling token requests for this tenant; retry after ${retryAfter} s`,
    { retryAfter },
  )
}

function deadlineError(): BrokerError {
  return new BrokerError(
    'upstream_timeout',
    'no access token within the response deadline (Microsoft Entra ID is slow); try again shortly',
    { retryAfter: DEFAULT_RETRY_AFTER_S },
  )
}

export function consentRequiredError(config: Config, registration: Registration, why: string): BrokerError {
  const url = consentUrl(config, registration.app)
  const who = registration.kind === 'admin' ? 'a tenant administrator' : 'the user'
  return new BrokerError(
    'consent_required',
    `${why}: ${who} must consent again at ${url} and then use the ID, Token and Key shown there`,
    { details: { consent_url: url } },
  )
}

/** The 401 for a registration that is not `active`. */
export function registrationStatusError(config: Config, registration: Registration): BrokerError {
  const url = consentUrl(config, registration.app)
  if (registration.status === 'revoked') {
    const detail = registration.statusDetail
    const at = detail?.at ?? registration.updatedAt
    const reason = detail?.reason ?? detail?.message
    const by = detail?.by
    return new BrokerError(
      'revoked',
      `this registration was revoked on ${at}${by ? ` by ${by}` : ''}${reason ? ` (${reason})` : ''}; consent again at ${url} to get a new ID, Token and Key`,
      { details: { revoked_at: at, reason: reason ?? null, consent_url: url } },
    )
  }
  const code = registration.statusDetail?.code
  return consentRequiredError(
    config,
    registration,
    `this registration needs consent again${code ? ` (${code})` : ''}`,
  )
}

/** Races a promise against a time budget; the loser's later rejection is swallowed. */
export function withDeadline<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  if (ms <= 0) {
    promise.catch(() => {})
    return Promise.reject(onTimeout())
  }
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      promise.catch(() => {})
      reject(onTimeout())
    }, ms)
    promise.then(
      (value) => {
        clearTimeout(timer)
        resolve(value)
      },
      (error: unknown) => {
        clearTimeout(timer)
        reject(error)
      },
    )
  })
}
