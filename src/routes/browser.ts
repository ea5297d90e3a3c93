// What the browser-facing routes (consent pages, tenant self-service, admin console) do alike:
// HTML pages, signed cookies, CSRF checks on forms, per-client rate limits.
import type { FastifyReply, FastifyRequest } from 'fastify'
import { tokensMatch } from '../crypto/tokens.js'
import { csrfFailed, rateLimited } from '../errors.js'
import type { RateLimiter } from '../store/types.js'

/**
 * The request's cookies, parsed on first use: the cookie plugin is registered without its parsing
 * hook (app.ts), so requests that read no cookie don't pay for one.
 */
function cookiesOf(request: FastifyRequest): Record<string, string | undefined> {
  // `cookies` is null until parsed (here, or by the plugin when a reply sets a cookie).
  const parsed = request.cookies as Record<string, string | undefined> | null
  if (parsed !== null) return parsed
  const header = request.headers.cookie
  request.cookies = header === undefined ? {} : request.server.parseCookie(header)
  return request.cookies
}

/** The value of a signed cookie; undefined when it is absent or its signature doesn't verify. */
export function readSignedCookie(request: FastifyRequest, name: string): string | undefined {
  const raw = cookiesOf(request)[name]
  if (raw === undefined) return undefined
  const unsigned = request.unsignCookie(raw)
  return unsigned.valid && unsigned.value !== null ? unsigned.value : undefined
}

/** An HTML page, never cached. */
export function sendPage(reply: FastifyReply, status: number, body: string): FastifyReply {
  return reply.code(status).header('cache-control', 'no-store').type('text/html; charset=utf-8').send(body)
}

/**
 * A cross-site form must not start a flow (and bind a cookie for it) in someone's browser.
 * Origin is "null" under our no-referrer policy, so only a foreign origin is refused.
 */
export function refuseCrossSiteForm(request: FastifyRequest, publicOrigin: string, message: string): void {
  const origin = request.headers.origin
  if (
    request.headers['sec-fetch-site'] === 'cross-site' ||
    (origin !== undefined && origin !== 'null' && origin !== publicOrigin)
  ) {
    throw csrfFailed(message)
  }
}

/** The form's `csrf` field must match `expected` (a session's token, or a signed cookie's). */
export function requireFormCsrf(
  request: FastifyRequest,
  expected: string | undefined,
  message = 'the form’s csrf token is missing or wrong; reload the page and try again',
): void {
  const submitted = (request.body as Record<string, unknown> | undefined)?.csrf
  if (expected === undefined || !tokensMatch(expected, submitted)) {
    throw csrfFailed(message)
  }
}

/** Counts one hit on `key`; past `limit` in the window, rate_limited with Retry-After. */
export async function enforceRateLimit(
  limiter: RateLimiter,
  key: string,
  limit: number,
  windowMs: number,
  message: string,
): Promise<void> {
  const result = await limiter.hit(key, limit, windowMs)
  if (!result.allowed) {
    throw rateLimited(message, result.retryAfterMs / 1000)
  }
}
