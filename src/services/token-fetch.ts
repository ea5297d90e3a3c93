// One token refresh under the refresh lock: the registration re-read (delegated), the grant from
// Entra ID behind the rate cap of the app registration that asks, what a failure means (needs_consent, a backoff for transient
// ones, published for waiters), and on success the rotated refresh token stored and the token
// cached with its jittered refresh-ahead point. Also the types the issuer's callers see.

import type { FastifyBaseLogger } from 'fastify'
import type { Config } from '../config.js'
import type { TokenGrant } from '../entra/types.js'
import { isBrokerError, recordedFailure, registrationBeingChanged } from '../errors.js'
import type { CachedToken, Registration, Store } from '../store/types.js'
import { grantFailure, requestGrant, type TokenGrantDeps } from './token-grant.js'
import { failureKey, publishFailure, type UpstreamPriority } from './token-markers.js'
import type { RegistrationLifecycle } from './token-registration.js'
import { type Random, refreshAheadAt } from './token-schedule.js'
import type { AppScopes } from './token-scope.js'
import { type UpstreamGuard, upstreamCallerOf } from './token-upstream-guard.js'
import { recordUpstreamFailure } from './upstream-failures.js'
import { recordUpstreamState } from './upstream-state.js'

/** The refresh lock's lease: a killed holder blocks the others at most this long. */
export const REFRESH_LOCK_LEASE_MS = 2_500

/** The refresh lock of one token group and scope, shared by every instance (refresh-ahead too). */
export function refreshLockName(group: string, scope: string): string {
  return `token-refresh:${group}|${scope}`
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
  /** Background work (keep-alive) yields the rate cap to callers; default `caller`. */
  priority?: UpstreamPriority
}

/** Where an issued token came from (the `result` label of the token cache metric). */
export type TokenSource =
  /** Fresh in the cache. */
  | 'hit'
  /** Fetched upstream by this request. */
  | 'miss'
  /** Fetched by another request or instance while this one waited. */
  | 'shared'

/** An access token as answered to the integration. */
export interface IssuedToken {
  accessToken: string
  /** Epoch ms. */
  expiresAt: number
  scope: string
  source: TokenSource
  /** Epoch ms of its refresh-ahead point, when it has one. */
  refreshAt?: number
}

/** How one refresh runs under the lock. */
export interface LeadOptions {
  /** The lock was held by someone else first: acquiring it without a result is a takeover. */
  waited: boolean
  priority: UpstreamPriority
  /** Upstream attempts (callers get one retry; background refreshes rely on the backoff). */
  attempts: number
  /** The first attempt's rate slot was taken before the lock (background work: see the issuer). */
  slotTaken?: boolean
}

/** What a refresh under the lock uses. */
export interface FetchContext {
  deps: TokenGrantDeps & { config: Config; store: Store; logger: FastifyBaseLogger }
  lifecycle: RegistrationLifecycle
  guard: UpstreamGuard
  random: Random
  /** A token is served while more than this is left of its life. */
  marginMs: number
}

/** Under the lock: the grant from Entra, the rotated refresh token stored, the token cached. */
export async function fetchUnderLock(
  context: FetchContext,
  request: IssueRequest,
  group: string,
  options: LeadOptions,
  wasBackingOff: boolean,
): Promise<IssuedToken> {
  const { deps, lifecycle, guard, random, marginMs } = context
  const { store, clock, logger, config } = deps
  const failKey = failureKey(group, request.scope)
  let registration = request.registration
  let refreshToken: string | undefined
  let clientSecret: string | undefined
  if (registration.kind === 'delegated') {
    // Admin-consent flights are shared by every registration of the tenant and use no secret of
    // the registration, whose status the caller has just checked; delegated ones re-read it.
    ;({ registration, refreshToken, clientSecret } = await lifecycle.readForRefresh(registration.id))
  } else if (registration.ownClientId !== undefined) {
    // A tenant's own app: its flight is its own, with the app's secret from the store.
    ;({ registration, clientSecret } = await lifecycle.readOwnAppSecret(registration.id))
  }

  // The rate cap is Microsoft's unit of throttling: the app registration that asks (client id).
  const caller = upstreamCallerOf(registration, request.app)
  let slotTaken = options.slotTaken === true
  let startedAt = clock()
  let grant: TokenGrant
  try {
    grant = await requestGrant(deps, request, registration, refreshToken, {
      attempts: options.attempts,
      ...(clientSecret === undefined ? {} : { ownClientSecret: clientSecret }),
      beforeAttempt: async () => {
        if (slotTaken) slotTaken = false
        else await guard.permit(caller, options.priority, request)
        startedAt = clock()
      },
    })
  } catch (error) {
    // The deadline passed before a call, or cut the only one short: nothing to hold against Entra.
    if (isBrokerError(error)) throw error
    const failure = grantFailure(error, registration, config, logger)
    if (failure.decision === 'needs_consent') {
      const { upstream } = failure
      const marked = await lifecycle.markNeedsConsent(
        registration,
        upstream.label,
        upstream.error ?? upstream.kind,
        refreshToken,
      )
      // The refresh token refused was replaced meanwhile: the next request uses the new one.
      if (!marked) throw registrationBeingChanged()
    }
    await recordUpstreamFailure(
      store,
      registration.app,
      failure.decision === 'needs_consent' ? 'needs_consent' : failure.error.code,
      clock(),
      logger,
    )
    if (
      failure.decision === 'throttled' ||
      failure.decision === 'unavailable' ||
      failure.decision === 'timeout'
    ) {
      // Callers come back when the next attempt is allowed, not sooner.
      const nextAt = await guard.failed(registration, group, failure.error)
      const { code, message, details } = failure.error
      const error = recordedFailure({
        code,
        message,
        retryAfter: Math.max(1, Math.ceil((nextAt - clock()) / 1000)),
        ...(details === undefined ? {} : { details }),
      })
      await publishFailure(store, failKey, error, clock(), logger, options.priority)
      throw error
    }
    await publishFailure(store, failKey, failure.error, clock(), logger, options.priority)
    throw failure.error
  }

  // a token after a throttle window: `upstream.recovered` (the store answers "no change" otherwise)
  await recordUpstreamState(store, registration, false, clock(), logger)
  const lifetimeS = Number.isFinite(grant.expiresIn) && grant.expiresIn > 0 ? grant.expiresIn : 3599
  const lifetimeMs = Math.floor(lifetimeS * 1000)
  const expiresAt = startedAt + lifetimeMs
  const refreshAt = refreshAheadAt(
    startedAt,
    lifetimeMs,
    config.tokens.refreshAheadFraction,
    marginMs,
    random,
  )
  const token: CachedToken = {
    accessToken: grant.accessToken,
    expiresAt,
    scope: grant.scope === '' ? request.scope : grant.scope,
    ...(refreshAt === undefined ? {} : { refreshAt }),
  }
  if (registration.kind === 'delegated') {
    if (grant.refreshToken !== undefined && grant.refreshToken !== '') {
      await lifecycle.storeRotatedRefreshToken(registration, refreshToken as string, grant.refreshToken)
    }
    lifecycle.recordRefresh(registration.id)
  }
  const ttl = Math.max(1_000, expiresAt - clock())
  await store.tokens.set(group, request.scope, token, ttl)
  await guard.succeeded(registration, group, wasBackingOff)
  return { ...token, source: 'miss' }
}

/** A cached token as served from `source`. */
export function issued(token: CachedToken, source: TokenSource): IssuedToken {
  return {
    accessToken: token.accessToken,
    expiresAt: token.expiresAt,
    scope: token.scope,
    source,
    ...(token.refreshAt === undefined ? {} : { refreshAt: token.refreshAt }),
  }
}
