// Everything about a failed call to the identity provider, in one place: what Entra answered
// (any fetch or openid-client failure → an UpstreamError, decided on `kind` and the OAuth `error`
// field, never on library classes or text) and what that means for the broker (classifyUpstreamError:
// needs consent, operator problem, throttled, retry, permanent). AADSTS numbers refine the decision
// and go to logs and metrics (docs/entra-facts.md, the error table).
import { ClientError, ResponseBodyError, WWWAuthenticateChallengeError } from 'openid-client'
import { UpstreamError } from './types.js'

/** Entra's "request loop" throttling code, answered with HTTP 400 instead of 429. */
const THROTTLED_CODE = 50196
/** OAuth errors that mean "try again later" rather than "this request is wrong". */
const TRANSIENT_ERRORS: ReadonlySet<string> = new Set(['temporarily_unavailable', 'server_error'])
/** Error bodies beyond this are not an Entra answer; don't buffer them. */
const MAX_ERROR_BODY_CHARS = 64 * 1024

/** The JSON body of an OAuth error answer, as Entra sends it (every field unchecked). */
export interface OAuthErrorBody {
  error?: unknown
  error_description?: unknown
  error_codes?: unknown
  trace_id?: unknown
}

/**
 * What an authorization redirect's `error` looks like: RFC 6749 §4.1.2.1 allows printable ASCII
 * without `"` and `\\`, and every code Entra sends (`access_denied`, `consent_required`,
 * `server_error` …) is lower-case words joined by `_`; 64 characters is far more than any is.
 */
const OAUTH_ERROR_CODE = /^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$/
const OAUTH_ERROR_CODE_MAX = 64

/**
 * Whether `error` can be an authorization server's error code. Anything else on a callback (`<zz>`,
 * `%`, an emoji) is a forged or broken URL, not the provider's answer: the caller's bad input.
 */
export function isOAuthErrorCode(error: string): boolean {
  return error.length <= OAUTH_ERROR_CODE_MAX && OAUTH_ERROR_CODE.test(error)
}

/**
 * Whether an OAuth `error` code (token endpoint answer or authorization redirect) means "the
 * identity provider is briefly unavailable, try again" rather than "this request is wrong".
 */
export function isTransientOAuthError(error: string): boolean {
  return TRANSIENT_ERRORS.has(error)
}

/** `Retry-After` as seconds (delta-seconds or an HTTP date); undefined when absent or unusable. */
export function parseRetryAfter(
  value: string | null | undefined,
  now: number = Date.now(),
): number | undefined {
  if (value === null || value === undefined) return undefined
  const trimmed = value.trim()
  if (/^\d{1,9}$/.test(trimmed)) return Number(trimmed)
  const date = Date.parse(trimmed)
  if (Number.isNaN(date)) return undefined
  return Math.max(0, Math.ceil((date - now) / 1000))
}

function errorCodesOf(body: OAuthErrorBody | undefined): number[] {
  const codes = body?.error_codes
  return Array.isArray(codes) ? codes.filter((c): c is number => Number.isInteger(c)) : []
}

/** Maps an HTTP answer that was not a success (status, headers, parsed JSON body if any). */
export function upstreamErrorFromResponse(
  status: number,
  headers: Headers,
  body: OAuthErrorBody | undefined,
  what: string,
): UpstreamError {
  const error = typeof body?.error === 'string' && body.error !== '' ? body.error : undefined
  const errorCodes = errorCodesOf(body)
  const traceId = typeof body?.trace_id === 'string' ? body.trace_id : undefined
  const details = {
    ...(error === undefined ? {} : { error }),
    errorCodes,
    status,
    ...(traceId === undefined ? {} : { traceId }),
  }
  const label = errorCodes[0] !== undefined ? `AADSTS${errorCodes[0]}` : (error ?? `HTTP ${status}`)
  if (status === 429 || errorCodes.includes(THROTTLED_CODE)) {
    const retryAfterSeconds = parseRetryAfter(headers.get('retry-after'))
    return new UpstreamError('throttled', `${what}: throttled by the identity provider (${label})`, {
      ...details,
      ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
    })
  }
  if (status >= 500 || (error !== undefined && isTransientOAuthError(error))) {
    return new UpstreamError('unavailable', `${what}: identity provider error (${label})`, details)
  }
  if (status >= 400 && error !== undefined) {
    return new UpstreamError('oauth', `${what}: ${label}`, details)
  }
  return new UpstreamError(
    'unavailable',
    `${what}: unexpected answer from the identity provider (HTTP ${status})`,
    {
      status,
    },
  )
}

/** Reads a failed response's body as an OAuth error body, if it is one. Never throws. */
export async function readErrorBody(response: Response): Promise<OAuthErrorBody | undefined> {
  try {
    const text = await response.clone().text()
    if (text.length > MAX_ERROR_BODY_CHARS) return undefined
    const parsed: unknown = JSON.parse(text)
    return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)
      ? (parsed as OAuthErrorBody)
      : undefined
  } catch {
    return undefined
  }
}

function isTimeoutOrAbort(error: unknown): 'timeout' | 'abort' | undefined {
  const name = (error as { name?: unknown } | null)?.name
  if (name === 'TimeoutError') return 'timeout'
  if (name === 'AbortError') return 'abort'
  return undefined
}

/**
 * Maps anything a `fetch` or an openid-client call threw. `what` names the operation for the
 * message (`client credentials`, `code redemption` …); messages never contain a secret.
 */
export async function toUpstreamError(error: unknown, what: string): Promise<UpstreamError> {
  if (error instanceof UpstreamError) return error
  if (error instanceof ResponseBodyError) {
    return upstreamErrorFromResponse(
      error.status,
      error.response.headers,
      error.cause as OAuthErrorBody,
      what,
    )
  }
  if (error instanceof WWWAuthenticateChallengeError) {
    // Thrown before openid-client reads the body; the body still carries Entra's error JSON.
    return upstreamErrorFromResponse(
      error.response.status,
      error.response.headers,
      await readErrorBody(error.response),
      what,
    )
  }
  if (error instanceof ClientError) {
    if (error.code === 'OAUTH_TIMEOUT' || error.code === 'OAUTH_ABORT') {
      return new UpstreamError('timeout', `${what}: no answer from the identity provider in time`, {
        cause: error,
      })
    }
    // Unexpected status or content type: openid-client hands over the Response as the cause.
    const cause = error.cause
    if (cause instanceof Response) {
      return upstreamErrorFromResponse(cause.status, cause.headers, await readErrorBody(cause), what)
    }
    return new UpstreamError(
      'unavailable',
      `${what}: unusable answer from the identity provider (${error.message})`,
      {
        cause: error,
      },
    )
  }
  const interrupted =
    isTimeoutOrAbort(error) ?? isTimeoutOrAbort((error as { cause?: unknown } | null)?.cause)
  if (interrupted !== undefined) {
    return new UpstreamError('timeout', `${what}: no answer from the identity provider in time`, {
      cause: error,
    })
  }
  return new UpstreamError('unavailable', `${what}: identity provider unreachable`, { cause: error })
}

/** What a failed token request means for the broker. */
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
/**
 * AADSTS codes meaning the broker's own credential was refused (secret wrong or expired, assertion
 * invalid or out of its time range, certificate or federated credential not registered): an
 * operator problem, never the tenant's.
 */
const CLIENT_CODES: ReadonlySet<number> = new Set([
  7000215, 7000222, 7000218, 700027, 700023, 700024, 70021, 50027,
])
/** AADSTS "tenant not found in this cloud": permanent, consent can't fix it. */
export const TENANT_NOT_FOUND_CODE = 90002
const TRANSIENT_CODES: ReadonlySet<number> = new Set([90033])

const CONSENT_ERRORS: ReadonlySet<string> = new Set([
  'invalid_grant',
  'interaction_required',
  'consent_required',
  'unauthorized_client',
  'login_required',
])

/**
 * Decides what a failed token request means, on the failure kind and the OAuth `error` field;
 * AADSTS codes refine it (throttling answered as 400, client-credential and consent codes).
 */
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
  if (codes.includes(THROTTLED_CODE)) return 'throttled'
  if (error.error === 'invalid_client' || codes.some((c) => CLIENT_CODES.has(c))) return 'misconfigured'
  if (error.error !== undefined && isTransientOAuthError(error.error)) return 'unavailable'
  if (codes.some((c) => TRANSIENT_CODES.has(c))) return 'unavailable'
  if (codes.includes(TENANT_NOT_FOUND_CODE)) return 'permanent'
  if (error.error !== undefined && CONSENT_ERRORS.has(error.error)) return 'needs_consent'
  if (codes.some((c) => CONSENT_CODES.has(c))) return 'needs_consent'
  return 'permanent'
}

/** Anything a provider threw, as an UpstreamError (aborts become timeouts). */
export function asUpstreamError(error: unknown, timedOut: boolean): UpstreamError {
  if (error instanceof UpstreamError) return error
  if (timedOut || (error as { name?: string } | undefined)?.name === 'TimeoutError') {
    return new UpstreamError('timeout', 'the identity provider did not answer in time', { cause: error })
  }
  return new UpstreamError('unavailable', 'the identity provider call failed', { cause: error })
}
