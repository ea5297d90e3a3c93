// Factories of a token request's failures: the obtain-token checks (app, registration, Key,
// timestamp, replay, scope, rate limits, deadline) and what Entra ID's answers mean for the caller
// (timeouts, outages, throttling, refusals, consent required, revoked). Kept apart from
// factories.ts (operators, tenant admins, the broker itself); all build from the one catalogue.
// Messages never carry a secret; values interpolated from the request are clipped by the caller.
import type { ConsentKind } from '../consent-kinds.js'
import { BrokerError, type BrokerErrorOptions, type ErrorDetails, withCause } from './broker-error.js'
import { ERROR_CATALOGUE, isErrorCode } from './catalogue.js'
import { internalError } from './factories.js'

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
export function unknownRegistration(slug: string, publicUrl: string, registrationId?: string): BrokerError {
  // No registration ID holds '@': the caller sent the whole ID field, which XSOAR's client splits.
  const whole = registrationId?.includes('@') === true
  return new BrokerError(
    'unknown_registration',
    whole
      ? `no ${slug} registration with this ID: registration_id holds the whole ID field; send only the part before "@" (the ID field is <registration_id>@${publicUrl}/obtain-token)`
      : `no ${slug} registration with this ID; check the ID field (<registration_id>@${publicUrl}/obtain-token)`,
  )
}

/**
 * 401 `unknown_registration`: the ID is of a registration of `registeredApp`, not of `slug`. Only
 * answered once the encrypted_token authenticates under that registration's Key (the caller holds
 * its values), so naming the app tells nothing to someone guessing IDs.
 */
export function registrationOfAnotherApp(slug: string, registeredApp: string): BrokerError {
  return new BrokerError(
    'unknown_registration',
    `this ID belongs to a ${registeredApp} registration, not ${slug}: use these values with the ${registeredApp} integration (app_name "${registeredApp}")`,
    { details: { registered_app: registeredApp } },
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

/** 504 `upstream_timeout`: the issuer ran out of its deadline (Entra ID, the upstream rate cap). */
export function tokenDeadlinePassed(retryAfter: number): BrokerError {
  return new BrokerError(
    'upstream_timeout',
    'no access token within the response deadline (waiting for Microsoft Entra ID or its request rate limit); try again shortly',
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

/**
 * 502 `upstream_error`: Entra ID refused a tenant's own app registration (its client secret, or a
 * public client whose "Allow public client flows" was turned off): the tenant's fix, not the operator's.
 */
export function ownAppCredentialsRejected(label: string): BrokerError {
  return new BrokerError(
    'upstream_error',
    `Microsoft Entra ID refused the tenant's own app registration (${label}); a tenant administrator must fix the app: a new client secret (replace it from the manage page) or, for the device code method, "Allow public client flows" turned back on`,
  )
}

/** 502 `broker_misconfigured`: Entra ID rejected the broker's own client credentials for `app`. */
export function brokerCredentialsRejected(app: string, label: string): BrokerError {
  return new BrokerError(
    'broker_misconfigured',
    `Microsoft Entra ID rejected the broker's own credentials for ${app} (${label}); the broker operator must fix them, nothing needs changing on the integration`,
  )
}

/**
 * 401 `consent_required`: the tenant administrator (`admin`) or the user (`delegated`) must consent
 * again at `consentUrl` (`why` opens the message). A user's consent renews their registration and
 * shows no Key, so the integration keeps its values; an admin consent shows a new registration's.
 */
export function consentRequired(why: string, kind: ConsentKind, consentUrl: string): BrokerError {
  const message =
    kind === 'admin'
      ? `${why}: a tenant administrator must consent again at ${consentUrl} and then use the ID, Token and Key shown there`
      : `${why}: the user must consent again at ${consentUrl}; the integration keeps its ID, Token and Key, nothing to change`
  return new BrokerError('consent_required', message, { details: { consent_url: consentUrl } })
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
