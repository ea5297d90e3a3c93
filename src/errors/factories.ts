// Factories: the only way src/ builds a BrokerError. One function per failure, named for what
// went wrong, holding the message template of its catalogued code; `cause` where there is one.
// Messages are shown to callers (XSOAR admins, operators, tenant admins): they never carry a
// secret, and every value interpolated from the request is clipped by the caller. The failures of
// a token request (obtain-token and Entra ID) are in token-factories.ts, the HTTP layer's own in
// transport-factories.ts.

import type { StoreFact } from '../store/store-facts.js'
import { BrokerError, withCause } from './broker-error.js'
import { ERROR_CATALOGUE } from './catalogue.js'

/** Retry-After (s) of a store outage: Redis reconnects within a few seconds when it can. */
export const STORE_RETRY_AFTER_S = 5

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

/**
 * 400: the audit query's `since` has the date-time format but names no instant: a leap second
 * (`23:59:60`), which the format allows and JavaScript's dates can't hold.
 */
export function sinceNotAnInstant(): BrokerError {
  return invalidRequest(
    'querystring/since is not an instant the broker can read (a leap second such as 23:59:60 is not); give an ISO 8601 time such as 2024-01-31T12:00:00Z',
  )
}

/** 400: the audit query gave `since` (oldest first) with `order=desc`. */
export function sinceWithDescendingOrder(): BrokerError {
  return invalidRequest('querystring: since reads oldest first; not with order=desc')
}

/** 400: a revocation without a reason (blank once trimmed). */
export function emptyReason(): BrokerError {
  return invalidRequest('reason must not be empty')
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

/**
 * 405 `method_not_allowed`: the route exists for `allowed` methods only (sent as `Allow`). `route`
 * is the route as declared (`/{app}`), never the request's own path.
 */
export function methodNotAllowed(method: string, route: string, allowed: readonly string[]): BrokerError {
  return new BrokerError(
    'method_not_allowed',
    `${method} is not allowed on ${route}; use ${allowed.join(', ')}`,
    {
      details: { allow: allowed.join(', ') },
    },
  )
}

/** 503 `not_ready`: the readiness probe cannot reach the store. */
export function notReady(cause?: unknown): BrokerError {
  return new BrokerError('not_ready', 'store is not reachable', withCause(cause))
}

/**
 * 503 `not_ready`: the instance is shutting down (draining); it still answers other requests. Not a
 * fault: logged at debug, not once per probe at error (the signal itself is logged once).
 */
export function shuttingDown(): BrokerError {
  return new BrokerError('not_ready', 'shutting down', { retryAfter: 1, expected: true })
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
