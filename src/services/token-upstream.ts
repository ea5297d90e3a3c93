// What a failed token request means for the broker. Decided on the OAuth `error` field and the
// failure kind, never on description text; AADSTS numbers refine the decision and go to logs and
// metrics (see docs/entra-facts.md, the error table).
import { UpstreamError } from '../entra/types.js'

export type UpstreamDecision =
  /** The grant is gone (expired, revoked, consent removed, MFA/CA): the registration needs consent. */
  | 'needs_consent'
  /** The broker's own client credentials are wrong or expired: an operator problem. */
  | 'misconfigured'
  /** Throttled: no upstream call before Retry-After. */
  | 'throttled'
  /** 5xx, connection failure, unparseable answer: retry once, then 503. */
  | 'unavailable'
  /** No answer within the upstream timeout: retry once, then 504. */
  | 'timeout'
  /** A permanent error that consent won't fix (tenant not found, bad request): 502. */
  | 'permanent'

/** AADSTS codes meaning "the admin or user must consent (again)". */
const CONSENT_CODES: ReadonlySet<number> = new Set([
  70008, 700082, 50173, 65001, 90094, 50076, 50079, 53003, 70043, 700016, 500011, 65004, 50020,
])
/** AADSTS codes meaning "the broker's client secret/certificate is wrong". */
const CLIENT_CODES: ReadonlySet<number> = new Set([7000215, 7000222, 7000218, 700027, 700023])
const THROTTLE_CODES: ReadonlySet<number> = new Set([50196])
const TRANSIENT_CODES: ReadonlySet<number> = new Set([90033])

const CONSENT_ERRORS: ReadonlySet<string> = new Set([
  'invalid_grant',
  'interaction_required',
  'consent_required',
  'unauthorized_client',
  'login_required',
])
const TRANSIENT_ERRORS: ReadonlySet<string> = new Set(['temporarily_unavailable', 'server_error'])

export function classifyUpstreamError(error: UpstreamError): UpstreamDecision {
  switch (error.kind) {
    case 'throttled':
      return 'throttled'
    case 'timeout':
      return 'timeout'
    case 'unavailable':
      return 'unavailable'
    case 'oauth':
      break
  }
  const codes = error.errorCodes
  if (codes.some((c) => THROTTLE_CODES.has(c))) return 'throttled'
  if (error.error === 'invalid_client' || codes.some((c) => CLIENT_CODES.has(c))) return 'misconfigured'
  if (error.error !== undefined && TRANSIENT_ERRORS.has(error.error)) return 'unavailable'
  if (codes.some((c) => TRANSIENT_CODES.has(c))) return 'unavailable'
  if (codes.includes(90002)) return 'permanent'
  if (error.error !== undefined && CONSENT_ERRORS.has(error.error)) return 'needs_consent'
  if (codes.some((c) => CONSENT_CODES.has(c))) return 'needs_consent'
  return 'permanent'
}

/** Anything a provider throws, as an UpstreamError (aborts become timeouts). */
export function asUpstreamError(error: unknown, timedOut: boolean): UpstreamError {
  if (error instanceof UpstreamError) return error
  if (timedOut || (error as { name?: string } | undefined)?.name === 'TimeoutError') {
    return new UpstreamError('timeout', 'the identity provider did not answer in time', { cause: error })
  }
  return new UpstreamError('unavailable', 'the identity provider call failed', { cause: error })
}
