// One access token from Entra ID: the grant a registration uses (client credentials for admin
// consent, its refresh token for delegated), one retry with jitter on 5xx/timeout inside the
// caller's deadline, metrics per attempt, and what the broker answers when Entra refuses. What a
// failure *means* is decided in entra/upstream-errors.ts (classifyUpstreamError).
import type { FastifyBaseLogger } from 'fastify'
import { abortable } from '../abortable.js'
import type { Config } from '../config.js'
import type { IdentityProvider, TokenGrant, UpstreamError } from '../entra/types.js'
import {
  asUpstreamError,
  classifyUpstreamError,
  TENANT_NOT_FOUND_CODE,
  type UpstreamDecision,
} from '../entra/upstream-errors.js'
import {
  type BrokerError,
  brokerCredentialsRejected,
  ownAppCredentialsRejected,
  tokenDeadlinePassed,
  upstreamRefused,
  upstreamTimedOut,
  upstreamUnavailable,
} from '../errors.js'
import type { Metrics } from '../metrics.js'
import type { Registration } from '../store/types.js'
import { consentReason } from './consent-reasons.js'
import { ownAppResolved } from './own-app.js'
import { throttledError } from './token-markers.js'
import { consentRequiredError } from './token-registration.js'
import type { AppScopes } from './token-scope.js'

/** Kept free under the caller's deadline for answering. */
export const ANSWER_MARGIN_MS = 50
/** Retry-After when Entra names none (throttling) or is down. */
export const DEFAULT_RETRY_AFTER_S = 5
const MAX_RETRY_AFTER_S = 300

/**
 * An attempt the caller's deadline gave less than this (and less than `UPSTREAM_TIMEOUT_MS`) that
 * gets no answer in time was cut by that deadline, not failed by Entra: it is not held against
 * Entra (no backoff, no failure published to other waiters), since Entra answers in a fraction of a
 * second when it is well.
 */
export const SHORT_ATTEMPT_MS = 1_000

/** Waits `ms` (at least 0). */
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)))

/** What a grant request needs. */
export interface TokenGrantDeps {
  config: Config
  idp: IdentityProvider
  metrics: Metrics
  clock: () => number
}

/** One grant for `registration`: what to ask for, and by when. */
export interface GrantRequest {
  app: AppScopes
  scope: string
  /** Epoch ms (by `clock`) by which the caller must have an answer. */
  deadlineAt: number
}

/** How a grant is attempted. */
export interface GrantOptions {
  /** Attempts in all (default 2: one retry with jitter on 5xx/timeout). */
  attempts?: number
  /** Awaited before each attempt (the upstream rate cap); may throw to give up. */
  beforeAttempt?: () => Promise<void>
  /** The tenant's own app's client secret (absent for the hosted app or a public client). */
  ownClientSecret?: string
}

/**
 * Calls Entra once, and once more with jitter on 5xx/timeout (`options.attempts`), all inside
 * `request.deadlineAt`. Throws the last UpstreamError (an abort becomes a timeout), or the deadline's
 * own BrokerError (`tokenDeadlinePassed`) when the deadline left no attempt, or only one too short
 * to say anything about Entra (SHORT_ATTEMPT_MS).
 */
export async function requestGrant(
  deps: TokenGrantDeps,
  request: GrantRequest,
  registration: Registration,
  refreshToken: string | undefined,
  options: GrantOptions = {},
): Promise<TokenGrant> {
  const { idp, clock, metrics, config } = deps
  const grantType = registration.kind === 'admin' ? 'client_credentials' : 'refresh_token'
  // A tenant's own app: its client id and secret, never the hosted app's.
  const resolved =
    registration.ownClientId === undefined
      ? request.app.resolved
      : ownAppResolved(request.app.resolved, {
          tenantId: registration.tenantId,
          clientId: registration.ownClientId,
          ...(options.ownClientSecret === undefined ? {} : { clientSecret: options.ownClientSecret }),
        })
  const attempts = options.attempts ?? 2
  let last: UpstreamError | undefined
  for (let attempt = 0; attempt < attempts; attempt++) {
    await options.beforeAttempt?.()
    const budget = request.deadlineAt - clock() - ANSWER_MARGIN_MS
    if (budget < 100) break
    // Whole milliseconds: AbortSignal.timeout refuses a fraction (RangeError), and a deadline taken
    // from the request's arrival time usually carries one.
    const timeoutMs = Math.floor(Math.min(config.tokens.upstreamTimeoutMs, budget))
    const cutByDeadline = timeoutMs < Math.min(config.tokens.upstreamTimeoutMs, SHORT_ATTEMPT_MS)
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
      if (cutByDeadline && upstream.kind === 'timeout') {
        metrics.upstreamRequests.inc({ grant: grantType, outcome: 'deadline', code: '' })
        metrics.upstreamLatency.observe(
          { grant: grantType, outcome: 'deadline' },
          (performance.now() - t0) / 1000,
        )
        // A caller who joined the flight meanwhile may have moved its deadline on (token-issuer.ts).
        const left = request.deadlineAt - clock() - ANSWER_MARGIN_MS
        if (attempt < attempts - 1 && left >= SHORT_ATTEMPT_MS) continue
        break
      }
      last = upstream
      const code = upstream.errorCodes[0] === undefined ? '' : `AADSTS${upstream.errorCodes[0]}`
      metrics.upstreamRequests.inc({ grant: grantType, outcome: upstream.kind, code })
      metrics.upstreamLatency.observe(
        { grant: grantType, outcome: upstream.kind },
        (performance.now() - t0) / 1000,
      )
      const decision = classifyUpstreamError(upstream)
      if (decision !== 'unavailable' && decision !== 'timeout') throw upstream
      if (attempt < attempts - 1) {
        const jitter = 50 + Math.floor(Math.random() * 200)
        if (request.deadlineAt - clock() - jitter - ANSWER_MARGIN_MS < 100) break
        await sleep(jitter)
      }
    }
  }
  if (last === undefined) throw tokenDeadlinePassed(1)
  throw last
}

/** A failed grant: Entra's error, what it means, and the broker's answer. */
export interface GrantFailure {
  upstream: UpstreamError
  decision: UpstreamDecision
  error: BrokerError
}

/**
 * The broker's answer to a failed grant, logged with the registration and Entra's codes (never a
 * secret). Acting on it (marking `needs_consent`, opening a throttle window) is the caller's job.
 */
export function grantFailure(
  thrown: unknown,
  registration: Registration,
  config: Config,
  logger: FastifyBaseLogger,
): GrantFailure {
  const upstream = asUpstreamError(thrown, false)
  const decision = classifyUpstreamError(upstream)
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
  let error: BrokerError
  switch (decision) {
    case 'needs_consent':
      logger.warn(context, `token request refused (${upstream.label}): registration needs consent`)
      // the same plain-language text as the registration.needs_consent notification
      error = consentRequiredError(config, registration, consentReason(upstream.label).reason)
      break
    case 'misconfigured':
      if (registration.ownClientId !== undefined) {
        // The tenant's own app, not the broker's: its administrator fixes it; no operator page.
        logger.warn(
          { ...context, ownClientId: registration.ownClientId },
          `token request refused (${upstream.label}): the tenant's own app registration was refused`,
        )
        error = ownAppCredentialsRejected(upstream.label)
        break
      }
      logger.error(
        context,
        `OPERATOR ACTION: Entra ID rejected the broker's client credentials for ${registration.app} (${registration.cloud}) with ${upstream.label}; check the client secret`,
      )
      error = brokerCredentialsRejected(registration.app, upstream.label)
      break
    case 'throttled': {
      const retryAfter = Math.min(
        MAX_RETRY_AFTER_S,
        Math.max(1, Math.ceil(upstream.retryAfterSeconds ?? DEFAULT_RETRY_AFTER_S)),
      )
      // Transient: the issuer logs the token group's backoff state changes, not every failure.
      logger.debug({ ...context, retryAfter }, 'Entra ID throttled a token request')
      error = throttledError(retryAfter)
      break
    }
    case 'timeout':
      logger.debug(context, 'Entra ID did not answer a token request in time')
      error = upstreamTimedOut(DEFAULT_RETRY_AFTER_S)
      break
    case 'unavailable':
      logger.debug(context, 'Entra ID is unavailable for token requests')
      error = upstreamUnavailable(upstream.label, DEFAULT_RETRY_AFTER_S)
      break
    default:
      logger.warn(context, `token request refused (${upstream.label})`)
      error = upstreamRefused(upstream.label, upstream.errorCodes.includes(TENANT_NOT_FOUND_CODE))
  }
  return { upstream, decision, error }
}
