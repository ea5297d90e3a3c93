// Logging: pino JSON, redaction configured here once. Secrets never reach a log line: no header is
// logged but the integration's own name (x-content-name), body fields are censored by path, and a
// URL is logged with only the query parameters its route names as safe (an allowlist: the OAuth
// callback carries `code` and `state`, and a stranger can add anything).
import type { FastifyReply, FastifyRequest } from 'fastify'
import { type DestinationStream, type Logger, type LoggerOptions, pino } from 'pino'

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

/**
 * Path plus the query parameters named in `allowed` (the route's `logQuery`: known-safe names, e.g.
 * `done`, `limit`); every other parameter, known or not (`code`, `state`, `?bearer=…`), is left out,
 * name and value, and only counted. An allowlist: a parameter nobody thought of never reaches a log
 * line. Never throws.
 */
export function redactUrl(url: string, allowed: readonly string[] = []): string {
  const q = url.indexOf('?')
  if (q < 0) return url
  const kept: string[] = []
  let dropped = 0
  for (const [name, value] of new URLSearchParams(url.slice(q + 1))) {
    if (allowed.includes(name)) kept.push(`${encodeURIComponent(name)}=${encodeURIComponent(value)}`)
    else dropped++
  }
  if (dropped > 0) kept.push(`(${dropped} ${dropped === 1 ? 'parameter' : 'parameters'} not logged)`)
  return `${url.slice(0, q)}?${kept.join('&')}`
}

/** The query parameters a request's route allows in its log lines (its `config.logQuery`). */
function loggedQueryOf(request: Partial<FastifyRequest>): readonly string[] {
  const config = request.routeOptions?.config as { logQuery?: readonly string[] } | undefined
  return config?.logQuery ?? []
}

/** The one completion line per request (an `onResponse` hook): no body, no header, URL redacted. */
export function logRequestCompleted(request: FastifyRequest, reply: FastifyReply, done: () => void): void {
  request.log.info(
    {
      method: request.method,
      url: redactUrl(request.url, loggedQueryOf(request)),
      statusCode: reply.statusCode,
      durationMs: Math.round(reply.elapsedTime * 100) / 100,
      ip: request.ip,
    },
    'request completed',
  )
  done()
}

/** Error fields a log line may carry; an allowlist, like the query strings. */
const LOGGED_ERROR_FIELDS = ['type', 'message', 'stack', 'code', 'name', 'statusCode', 'reason'] as const

/**
 * What is logged of an error under `err`: its known-safe fields and its causes, nothing else.
 * Libraries hang request data on their errors (ioredis's `command.args` carries an AUTH password or
 * a sealed record, an HTTP client's `options` its headers), and a field nobody thought of must not
 * reach a log line.
 */
export function serializeError(error: unknown, depth = 0): unknown {
  if (error === null || typeof error !== 'object') return error
  const source = error as Record<string, unknown>
  const logged: Record<string, unknown> = {
    type: (error as { constructor?: { name?: unknown } }).constructor?.name ?? 'Object',
  }
  for (const field of LOGGED_ERROR_FIELDS) {
    const value = source[field]
    if (field !== 'type' && (typeof value === 'string' || typeof value === 'number')) logged[field] = value
  }
  // ioredis names the failed command: its name is safe, its arguments are not.
  const command = source.command as { name?: unknown } | undefined
  if (command !== null && typeof command === 'object' && typeof command.name === 'string') {
    logged.command = command.name
  }
  if (source.cause !== undefined && depth < 5) logged.cause = serializeError(source.cause, depth + 1)
  return logged
}

export function loggerOptions(level: string): LoggerOptions {
  return {
    level,
    redact: { paths: REDACT_PATHS, censor: REDACTED },
    serializers: {
      err: serializeError,
      // Whatever is logged under `req` passes here: never throw, never pass a header through.
      req(request: Partial<FastifyRequest> | null | undefined) {
        if (request === null || typeof request !== 'object') return request
        return {
          method: request.method,
          url: typeof request.url === 'string' ? redactUrl(request.url, loggedQueryOf(request)) : undefined,
          remoteAddress: request.ip,
          // The one header logged: the integration's name, bounded (it is the caller's free text).
          client: String(request.headers?.['x-content-name'] ?? '').slice(0, 100) || undefined,
        }
      },
    },
  }
}

type Stringifier = (value: unknown, ...rest: unknown[]) => string | undefined

/**
 * The one logger of the process: pino with `loggerOptions(level)`, writing to `destination`
 * (default stdout). Every line goes through the REDACT_PATHS redaction above, unchanged.
 *
 * Why the wrapper: pino runs every top-level field that no path names by its first segment
 * (`method`, `url`, `statusCode`, the message, the `reqId` binding…) through the redactor of the
 * `*.x` paths, even when the field is a string or a number. Every such path names a property
 * *inside* the field, which a string, number or boolean doesn't have, so the redactor can only
 * return the value serialised as it is — after walking ~20 paths (about 17 µs of a ~19 µs
 * completion line, measured). For those values we serialise directly; objects, arrays and null
 * still go through the redactor. Same paths, same redactor, same output (test/unit/logger.test.ts
 * checks the two loggers write identical lines for arbitrary values).
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const logger =
    destination === undefined ? pino(loggerOptions(level)) : pino(loggerOptions(level), destination)
  const { stringifiersSym, wildcardFirstSym } = pino.symbols
  const stringifiers = (
    logger as unknown as Record<symbol, Record<symbol, Stringifier | undefined> | undefined>
  )[stringifiersSym]
  const wildcard = stringifiers?.[wildcardFirstSym]
  // Defensive: should a pino update move these internals, its own behaviour stays untouched.
  if (stringifiers === undefined || typeof wildcard !== 'function') return logger
  stringifiers[wildcardFirstSym] = (value, ...rest) => {
    const type = typeof value
    // What the redactor's serialiser returns for these (JSON.stringify cannot throw on them).
    return type === 'string' || type === 'number' || type === 'boolean'
      ? JSON.stringify(value)
      : wildcard(value, ...rest)
  }
  return logger
}
