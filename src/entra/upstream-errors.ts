// Turns whatever a call to the identity provider threw or answered into an UpstreamError, so the
// services decide on `kind` and the OAuth `error` field only, never on library classes or text.
import { ClientError, ResponseBodyError, WWWAuthenticateChallengeError } from 'openid-client'
import { UpstreamError } from './types.js'

/** Entra's "request loop" throttling code, answered with HTTP 400 instead of 429. */
const THROTTLED_CODE = 50196
/** OAuth errors that mean "try again later" rather than "this request is wrong". */
const TRANSIENT_ERRORS = new Set(['temporarily_unavailable', 'server_error'])
/** Error bodies beyond this are not an Entra answer; don't buffer them. */
const MAX_ERROR_BODY_CHARS = 64 * 1024

export interface OAuthErrorBody {
  error?: unknown
  error_description?: unknown
  error_codes?: unknown
  trace_id?: unknown
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
  if (status >= 500 || (error !== undefined && TRANSIENT_ERRORS.has(error))) {
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
