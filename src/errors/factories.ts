// Factories: the only way src/ builds a BrokerError. One function per failure, named for what
// went wrong, holding the message template of its catalogued code; `cause` where there is one.
// Messages are shown to callers (XSOAR admins, operators, tenant admins): they never carry a
// secret, and every value interpolated from the request is clipped by the caller.

import type { StoreFact } from '../store/store-facts.js'
import { BrokerError, type BrokerErrorOptions, type ErrorDetails } from './broker-error.js'
import { ERROR_CATALOGUE, isErrorCode } from './catalogue.js'

/** Retry-After (s) of a store outage: Redis reconnects within a few seconds when it can. */
export const STORE_RETRY_AFTER_S = 5

function withCause(cause: unknown): BrokerErrorOptions {
  return cause === undefined ? {} : { cause }
}

// ---- request shape -----------------------------------------------------------------------------

/** 400 `invalid_request` with a message naming what is wrong (e.g. `request body must have …`). */
export function invalidRequest(message: string, cause?: unknown): BrokerError {
  return new BrokerError('invalid_request', message, withCause(cause))
}

/** 400: a request body that is not JSON (the parser refused it). */
export function bodyNotJson(cause?: unknown): BrokerError {
  return invalidRequest('request body is not valid JSON', cause)
}

/** 413 `payload_too_large`: the body passed the route's limit. */
export function payloadTooLarge(cause?: unknown): BrokerError {
  return new BrokerError('payload_too_large', ERROR_CATALOGUE.payload_too_large.message, withCause(cause))
}

/** 400: the `cloud` field names a cloud the app is not offered in. */
export function cloudNotOffered(cloud: string, appName: string): BrokerError {
  return invalidRequest(`cloud: "${cloud}" is not offered for ${appName}`)
}

/** 400: the audit query gave both `cursor` and `since`. */
export function cursorWithSince(): BrokerError {
  return invalidRequest('querystring: give cursor or since, not both')
}

/** 400: the audit query gave `since` (oldest first) with `order=desc`. */
export function sinceWithDescendingOrder(): BrokerError {
  return invalidRequest('querystring: since reads oldest first; not with order=desc')
}

/** 400: a revocation without a reason (blank once trimmed). */
export function emptyReason(): BrokerError {
  return invalidRequest('reason must not be empty')
}

// ---- obtain-token ------------------------------------------------------------------------------

/** 400 `unknown_app`: `app_name` (clipped) is not hosted; `hosted` lists the hosted ones. */
export function unknownApp(appName: string, hosted: string): BrokerError {
  return new BrokerError(
    'unknown_app',
    `app_name "${appName}" is not hosted by this broker; hosted: ${hosted}`,
  )
}

/** 400 `invalid_scope`: both `scope` and `resource` were given. */
export function scopeWithResource(slug: string, allowed: string): BrokerError {
  return new BrokerError(
    'invalid_scope',
    `give either scope or resource, not both; ${slug} allows ${allowed}`,
  )
}

/** 400 `invalid_scope`: `resource` (clipped) is not one the app allows. */
export function resourceNotAllowed(resource: string, slug: string, allowed: string): BrokerError {
  return new BrokerError(
    'invalid_scope',
    `resource "${resource}" is not allowed for ${slug}; allowed: ${allowed}`,
  )
}

/** 400 `invalid_scope`: `scope` (clipped) is not one the app allows. */
export function scopeNotAllowed(scope: string, slug: string, allowed: string): BrokerError {
  return new BrokerError('invalid_scope', `scope "${scope}" is not allowed for ${slug}; allowed: ${allowed}`)
}

/** 401 `unknown_registration`: no registration of `slug` with the given ID. */
export function unknownRegistration(slug: string, publicUrl: string): BrokerError {
  return new BrokerError(
    'unknown_registration',
    `no ${slug} registration with this ID; check the ID field (<registration_id>@${publicUrl}/obtain-token)`,
  )
}

/** 401 `unknown_registration`: the registration was deleted while its token was being fetched. */
export function registrationGone(): BrokerError {
  return new BrokerError('unknown_registration', 'registration no longer exists')
}

/** 401 `invalid_key` or 400 `invalid_request`: `encrypted_token` did not decrypt or decode. */
export function encryptedTokenRejected(badKey: boolean, message: string): BrokerError {
  return new BrokerError(badKey ? 'invalid_key' : 'invalid_request', message)
}

/** 401 `stale_token`: the request's timestamp is `skew` s off, more than `maxSkew` allows. */
export function staleToken(skew: number, maxSkew: number): BrokerError {
  return new BrokerError(
    'stale_token',
    `the request's timestamp is ${Math.abs(skew)} s ${skew < 0 ? 'behind' : 'ahead of'} the broker's clock (allowed ±${maxSkew} s); check the clock of the XSOAR server or engine`,
  )
}

/** 401 `token_mismatch`: the decrypted content is not this registration's Token. */
export function tokenMismatch(): BrokerError {
  return new BrokerError(
    'token_mismatch',
    'the Token field does not match this registration; paste the Token shown on the consent page and clear any stored refresh token (auth-reset)',
  )
}

/** 401 `replayed_token`: this exact `encrypted_token` was accepted before. */
export function replayedToken(): BrokerError {
  return new BrokerError('replayed_token', ERROR_CATALOGUE.replayed_token.message)
}

/** 500 `internal_error`: the registration's stored Key cannot be used. */
export function unusableKey(cause?: unknown): BrokerError {
  return new BrokerError(
    'internal_error',
    "this registration's Key is unusable; quote the request_id to the operator",
    withCause(cause),
  )
}

/** 502 `broker_misconfigured`: the registration's app or cloud is no longer configured. */
export function cloudWithdrawn(app: string, cloud: string): BrokerError {
  return new BrokerError(
    'broker_misconfigured',
    `the broker no longer offers ${app} in the ${cloud} cloud; contact the broker operator`,
  )
}

/** 503 `store_unavailable`: the registration changed under a compare-and-set; retry in 1 s. */
export function registrationBeingChanged(): BrokerError {
  return new BrokerError('store_unavailable', 'this registration is being changed; retry shortly', {
    retryAfter: 1,
  })
}

/** 429 `rate_limited` for token requests (`what`: "for this registration", "from this address"). */
export function tokenRequestsRateLimited(retryAfterMs: number, what: string): BrokerError {
  return new BrokerError('rate_limited', `too many token requests ${what}; slow down`, {
    retryAfter: Math.max(1, Math.ceil(retryAfterMs / 1000)),
  })
}

/** 504 `upstream_timeout`: no answer at all within the response deadline. */
export function responseDeadlinePassed(retryAfter: number): BrokerError {
  return new BrokerError('upstream_timeout', 'no answer within the response deadline; try again shortly', {
    retryAfter,
  })
}

// ---- Microsoft Entra ID (token issuer) ---------------------------------------------------------

/** 504 `upstream_timeout`: another instance holds the fetch lock past the wait. */
export function otherInstanceFetching(retryAfter: number): BrokerError {
  return new BrokerError(
    'upstream_timeout',
    'another broker instance is still fetching this access token; try again in a few seconds',
    { retryAfter },
  )
}

/** 504 `upstream_timeout`: the issuer ran out of its deadline waiting on Entra ID. */
export function tokenDeadlinePassed(retryAfter: number): BrokerError {
  return new BrokerError(
    'upstream_timeout',
    'no access token within the response deadline (Microsoft Entra ID is slow); try again shortly',
    { retryAfter },
  )
}

/** 504 `upstream_timeout`: Entra ID did not answer a token request in time. */
export function upstreamTimedOut(retryAfter: number): BrokerError {
  return new BrokerError('upstream_timeout', ERROR_CATALOGUE.upstream_timeout.message, { retryAfter })
}

/** 503 `upstream_unavailable`: Entra ID answered 5xx or could not be reached (`label`: what it said). */
export function upstreamUnavailable(label: string, retryAfter: number): BrokerError {
  return new BrokerError(
    'upstream_unavailable',
    `Microsoft Entra ID is not answering token requests (${label}); try again shortly`,
    { retryAfter },
  )
}

/** 503 `upstream_throttled`: Entra ID throttles the tenant for `retryAfter` s. */
export function upstreamThrottled(retryAfter: number): BrokerError {
  return new BrokerError(
    'upstream_throttled',
    `Microsoft Entra ID is throttling token requests for this tenant; retry after ${retryAfter} s`,
    { retryAfter },
  )
}

/** 502 `upstream_error`: Entra ID refused for a reason consent does not fix. */
export function upstreamRefused(label: string, tenantNotFound: boolean): BrokerError {
  return new BrokerError(
    'upstream_error',
    `Microsoft Entra ID refused the token request (${label})${tenantNotFound ? ': tenant not found in this cloud' : ''}`,
  )
}

/** 502 `broker_misconfigured`: Entra ID rejected the broker's own client credentials for `app`. */
export function brokerCredentialsRejected(app: string, label: string): BrokerError {
  return new BrokerError(
    'broker_misconfigured',
    `Microsoft Entra ID rejected the broker's own credentials for ${app} (${label}); the broker operator must fix them, nothing needs changing on the integration`,
  )
}

/** 401 `consent_required`: `who` must consent again at `consentUrl` (`why` opens the message). */
export function consentRequired(why: string, who: string, consentUrl: string): BrokerError {
  return new BrokerError(
    'consent_required',
    `${why}: ${who} must consent again at ${consentUrl} and then use the ID, Token and Key shown there`,
    { details: { consent_url: consentUrl } },
  )
}

/** What a revoked registration's 401 says. */
export interface RevokedFacts {
  /** ISO time of the revocation. */
  at: string
  by: string | undefined
  reason: string | undefined
  consentUrl: string
}

/** 401 `revoked`: when, by whom and why, and where to consent again. */
export function registrationRevoked({ at, by, reason, consentUrl }: RevokedFacts): BrokerError {
  return new BrokerError(
    'revoked',
    `this registration was revoked on ${at}${by ? ` by ${by}` : ''}${reason ? ` (${reason})` : ''}; consent again at ${consentUrl} to get a new ID, Token and Key`,
    { details: { revoked_at: at, reason: reason ?? null, consent_url: consentUrl } },
  )
}

/** A failure as recorded earlier (e.g. a failure marker shared between instances). */
export interface RecordedFailure {
  code: string
  message: string
  retryAfter?: number
  details?: ErrorDetails
}

/**
 * The error a recorded failure stands for. The record comes from the store: a code this broker
 * does not catalogue (an older or newer instance wrote it) answers as an internal error.
 */
export function recordedFailure(record: RecordedFailure): BrokerError {
  if (!isErrorCode(record.code)) return internalError(new Error(`unknown recorded code ${record.code}`))
  const options: BrokerErrorOptions = {}
  if (record.retryAfter !== undefined) options.retryAfter = record.retryAfter
  if (record.details !== undefined) options.details = record.details
  return new BrokerError(record.code, record.message, options)
}

// ---- registrations and tenants (operators, tenant admins) --------------------------------------

/** 404 `not_found`: no registration with this id. */
export function registrationNotFound(id: string): BrokerError {
  return new BrokerError('not_found', `registration ${id} not found`)
}

/** 404 `not_found`: a tenant (for one app, when given) without registrations. */
export function tenantWithoutRegistrations(tenantId: string, app?: string): BrokerError {
  return new BrokerError(
    'not_found',
    app === undefined
      ? `tenant ${tenantId} has no registrations`
      : `tenant ${tenantId} has no registrations for app ${app}`,
  )
}

/** 404 `not_found`: no hosted app with this slug. */
export function appNotFound(slug: string): BrokerError {
  return new BrokerError('not_found', `no app named "${slug}"`)
}

/** 404 `not_found`: no webhook endpoint with this id. */
export function webhookEndpointNotFound(id: string): BrokerError {
  return new BrokerError('not_found', `webhook endpoint ${id} not found`)
}

/** 404 `not_found`: no delivery of this message to this endpoint. */
export function webhookDeliveryNotFound(endpointId: string, messageId: string): BrokerError {
  return new BrokerError('not_found', `no delivery of message ${messageId} to webhook endpoint ${endpointId}`)
}

/** 400 `invalid_request`: a webhook endpoint URL or event list the broker won't use. */
export function webhookEndpointRefused(why: string): BrokerError {
  return new BrokerError('invalid_request', `webhook endpoint refused: ${why}`)
}

/** 409 `conflict`: a change would bring a revoked registration back. */
export function revocationIsFinal(id: string, cause?: unknown): BrokerError {
  return new BrokerError('conflict', `registration ${id} is revoked; revocation is final`, withCause(cause))
}

/** 409 `conflict`: the registration kept changing under the revocation's compare-and-set. */
export function revocationKeptConflicting(id: string): BrokerError {
  return new BrokerError('conflict', `registration ${id} kept changing; try the revocation again`)
}

/**
 * The broker error of a store's refusal, its message kept: a malformed argument is the caller's
 * `invalid_request` (400), a refused change `conflict` (409), a missing record `not_found` (404).
 */
export function storeFactError(fact: StoreFact): BrokerError {
  const code = (
    { invalid_argument: 'invalid_request', conflict: 'conflict', not_found: 'not_found' } as const
  )[fact.code]
  return new BrokerError(code, fact.message, { cause: fact })
}

// ---- who is asking -----------------------------------------------------------------------------

/** 401 `unauthorized`: no valid operator token on an operator API request. */
export function operatorTokenInvalid(): BrokerError {
  return new BrokerError('unauthorized', 'operator token missing or invalid (Authorization: Bearer …)')
}

/** 401 `unauthorized`: a handler ran without an authenticated operator (hook not applied). */
export function operatorUnknown(): BrokerError {
  return new BrokerError('unauthorized', 'operator token missing or invalid')
}

/** 401 `unauthorized`: `GET /metrics` on the public listener without an operator token. */
export function metricsTokenRequired(): BrokerError {
  return new BrokerError('unauthorized', 'an operator token is required (Authorization: Bearer …)')
}

/** 401 `unauthorized`: no (live) console session. */
export function consoleSessionMissing(): BrokerError {
  return new BrokerError(
    'unauthorized',
    'your console session is missing or has expired; sign in again at /admin',
  )
}

/** 401 `unauthorized`: no (live) `/{app}/manage` session. */
export function manageSessionMissing(): BrokerError {
  return new BrokerError('unauthorized', 'your session is missing or has expired; sign in again')
}

/** 403 `forbidden`: the signed-in user is not a tenant administrator. */
export function notTenantAdministrator(): BrokerError {
  return new BrokerError('forbidden', 'only a tenant administrator can manage registrations')
}

/** 403 `csrf_failed`: a form without the right CSRF token, or started from another site. */
export function csrfFailed(message: string = ERROR_CATALOGUE.csrf_failed.message): BrokerError {
  return new BrokerError('csrf_failed', message)
}

/** 429 `rate_limited` on a browser route; `message` says which budget. */
export function rateLimited(message: string, retryAfterSeconds: number): BrokerError {
  return new BrokerError('rate_limited', message, { retryAfter: retryAfterSeconds })
}

/** 503 or 400: a `/{app}/manage` sign-in could not be started (`status`: the flow failure's). */
export function manageSignInNotStarted(status: number): BrokerError {
  return new BrokerError(
    status >= 500 ? 'upstream_unavailable' : 'invalid_request',
    'the sign-in could not be started; try again in a moment',
  )
}

// ---- the broker itself -------------------------------------------------------------------------

/** 404 `not_found` for a 404 raised outside the broker's own code (e.g. by a plugin). */
export function notFound(cause?: unknown): BrokerError {
  return new BrokerError('not_found', ERROR_CATALOGUE.not_found.message, withCause(cause))
}

/** 404 `not_found`: no route for this method and path (the path is not echoed: it is the caller's text). */
export function routeNotFound(method: string, _path: string): BrokerError {
  return new BrokerError('not_found', `no route for ${method} at this path`)
}

/** 405 `method_not_allowed`: the path exists for `allowed` methods only (sent as `Allow`). */
export function methodNotAllowed(method: string, path: string, allowed: readonly string[]): BrokerError {
  return new BrokerError(
    'method_not_allowed',
    `${method} is not allowed on ${path}; use ${allowed.join(', ')}`,
    {
      details: { allow: allowed.join(', ') },
    },
  )
}

/** 503 `not_ready`: the readiness probe cannot reach the store. */
export function notReady(cause?: unknown): BrokerError {
  return new BrokerError('not_ready', 'store is not reachable', withCause(cause))
}

/** 503 `not_ready`: the instance is shutting down (draining); it still answers other requests. */
export function shuttingDown(): BrokerError {
  return new BrokerError('not_ready', 'shutting down', { retryAfter: 1 })
}

/** 503 `store_unavailable`: Redis refused, dropped, hung or ran out of reconnects. */
export function storeUnavailable(cause?: unknown): BrokerError {
  return new BrokerError('store_unavailable', ERROR_CATALOGUE.store_unavailable.message, {
    ...withCause(cause),
    retryAfter: STORE_RETRY_AFTER_S,
  })
}

/** 500 `internal_error`: a broker fault; the cause is logged, the caller quotes the request id. */
export function internalError(cause?: unknown): BrokerError {
  return new BrokerError('internal_error', ERROR_CATALOGUE.internal_error.message, withCause(cause))
}
