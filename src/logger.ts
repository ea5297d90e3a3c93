// Logging: pino JSON, redaction configured here once. Secrets never reach a log line: header and
// body fields are censored by path, and URLs are logged with sensitive query values replaced
// (the OAuth callback carries `code` and `state` in its query string).
import type { FastifyRequest } from 'fastify'
import type { LoggerOptions } from 'pino'

export const REDACTED = '[redacted]'

export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-content-licenseid"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  '*.key',
  '*.Key',
  '*.encrypted_token',
  '*.refresh_token',
  '*.refreshToken',
  '*.access_token',
  '*.accessToken',
  '*.id_token',
  '*.idToken',
  '*.code',
  '*.code_verifier',
  '*.codeVerifier',
  '*.client_secret',
  '*.clientSecret',
  '*.cookieSecret',
  '*.token',
  '*.password',
  'body',
  'req.body',
  'secrets',
  '*.secrets',
]

const SENSITIVE_QUERY = new Set([
  'code',
  'state',
  'session_state',
  'id_token',
  'access_token',
  'refresh_token',
  'client_secret',
  'key',
  'token',
  'client_info',
])

/** Path plus query, sensitive parameter values replaced; never throws. */
export function redactUrl(url: string): string {
  const q = url.indexOf('?')
  if (q < 0) return url
  const params = new URLSearchParams(url.slice(q + 1))
  const out: string[] = []
  for (const [name, value] of params) {
    out.push(
      `${encodeURIComponent(name)}=${SENSITIVE_QUERY.has(name.toLowerCase()) ? REDACTED : encodeURIComponent(value)}`,
    )
  }
  return `${url.slice(0, q)}?${out.join('&')}`
}

export function loggerOptions(level: string): LoggerOptions {
  return {
    level,
    redact: { paths: REDACT_PATHS, censor: REDACTED },
    serializers: {
      // Whatever is logged under `req` passes here: never throw, never pass a header through.
      req(request: Partial<FastifyRequest> | null | undefined) {
        if (request === null || typeof request !== 'object') return request
        return {
          method: request.method,
          url: typeof request.url === 'string' ? redactUrl(request.url) : undefined,
          remoteAddress: request.ip,
          client: request.headers?.['x-content-name'],
        }
      },
    },
  }
}
