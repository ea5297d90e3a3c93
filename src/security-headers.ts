// The broker's security headers, computed once from the configuration and sent on every answer:
// by an onRequest hook on routed requests, and written as they are by the answers that never reach
// a route (the framework's own errors, a request that timed out or could not be parsed, a refused
// connection — see connection-guard.ts). One fixed set rather than a middleware rebuilding it per
// request, so the same headers go out whichever way the answer leaves.
import type { Config } from './config.js'

type Headers = Readonly<Record<string, string>>

const HSTS = 'max-age=31536000; includeSubDomains'

/**
 * Every answer's headers (pages and JSON alike): the content security policy of the pages (scripts
 * and styles from this origin only; the start form may post on to the identity provider's origin),
 * never framed (`X-Frame-Options: DENY` agrees with `frame-ancestors 'none'`), no referrer, no
 * sniffing, isolated from other origins, HSTS when the public URL is https.
 */
export function documentSecurityHeaders(config: Pick<Config, 'authorities' | 'secureCookies'>): Headers {
  const authorityOrigins = [...new Set(Object.values(config.authorities).map((url) => new URL(url).origin))]
  const csp = [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    // The start form redirects to the authority; browsers apply form-action to that redirect.
    `form-action ${["'self'", ...authorityOrigins].join(' ')}`,
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join(';')
  return Object.freeze({
    'content-security-policy': csp,
    'cross-origin-opener-policy': 'same-origin',
    'cross-origin-resource-policy': 'same-origin',
    'origin-agent-cluster': '?1',
    'referrer-policy': 'no-referrer',
    ...(config.secureCookies ? { 'strict-transport-security': HSTS } : {}),
    'x-content-type-options': 'nosniff',
    'x-dns-prefetch-control': 'off',
    'x-download-options': 'noopen',
    'x-frame-options': 'DENY',
    'x-permitted-cross-domain-policies': 'none',
    'x-xss-protection': '0',
  })
}

/**
 * The JSON API's set (POST /obtain-token): the headers OWASP's REST Security Cheat Sheet asks of a
 * JSON API, plus CORP and no-referrer. The rest of the document set governs pages a browser
 * renders; this answer is read by the integration's HTTP client, and each extra header costs bytes
 * on every call.
 */
export function apiSecurityHeaders(config: Pick<Config, 'secureCookies'>): Headers {
  return Object.freeze({
    'cache-control': 'no-store',
    'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
    'cross-origin-resource-policy': 'same-origin',
    'referrer-policy': 'no-referrer',
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    ...(config.secureCookies ? { 'strict-transport-security': HSTS } : {}),
  })
}
