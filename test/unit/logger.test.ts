// Redaction, configured once in src/logger.ts: secret-bearing URL parameters and object fields
// never reach a log line, whatever shape the logged object has.
import fc from 'fast-check'
import { pino } from 'pino'
import { describe, expect, it } from 'vitest'
import { createLogger, loggerOptions, REDACT_PATHS, REDACTED, redactUrl } from '../../src/logger.js'
import { memoryLogStream } from '../support/log-capture.js'

function memoryStream() {
  return memoryLogStream()
}

/** The process logger (createLogger), writing to memory. */
function memoryLogger(level = 'trace') {
  const { stream, lines } = memoryLogStream()
  return { logger: createLogger(level, stream), lines }
}

describe('redactUrl', () => {
  it('keeps only the allowed parameters; every other one is left out, name and value, and counted', () => {
    const url = redactUrl('/callback?code=0.AAA-secret-code&state=s3cr3t-state&error=access_denied&foo=bar', [
      'error',
    ])
    expect(url).toBe('/callback?error=access_denied&(3 parameters not logged)')
    expect(url).not.toMatch(/secret-code|s3cr3t-state|foo|bar|code|state/)
  })

  it('leaves out every parameter nobody listed, whatever its name or case', () => {
    for (const name of ['bearer', 'CODE', 'Code', 'id_token', 'key', 'password', 'x', 'Error']) {
      const out = redactUrl(`/x?${name}=leak-${name}`, ['error'])
      expect(out, name).toBe('/x?(1 parameter not logged)')
    }
  })

  it('without an allowlist logs no parameter at all', () => {
    expect(redactUrl('/x?done=revoked&limit=5')).toBe('/x?(2 parameters not logged)')
  })

  it('matches names exactly, also when repeated or percent-encoded', () => {
    const out = redactUrl('/x?code=a1&code=b2&cod%65=c3&state=%2Fevil&done=ok', ['done'])
    expect(out).toBe('/x?done=ok&(4 parameters not logged)')
    expect(out).not.toMatch(/a1|b2|c3|evil/)
  })

  it('leaves URLs without a query untouched and never throws', () => {
    expect(redactUrl('/ms-graph-mail')).toBe('/ms-graph-mail')
    expect(redactUrl('/x?')).toBe('/x?')
    expect(() => redactUrl('/x?%E0%A4%A=1&code=%')).not.toThrow()
    expect(redactUrl('/x?%E0%A4%A=1&code=%')).not.toContain('code=%')
  })
})

describe('loggerOptions redaction', () => {
  it('covers the secret field names of the product', () => {
    for (const path of [
      'req.headers.authorization',
      'req.headers.cookie',
      'res.headers["set-cookie"]',
      '*.encrypted_token',
      '*.refresh_token',
      '*.access_token',
      '*.client_secret',
      '*.code',
      '*.key',
      '*.Key',
    ]) {
      expect(REDACT_PATHS, path).toContain(path)
    }
  })

  it('censors secret fields one level down, request headers and bodies', () => {
    const { logger, lines } = memoryLogger()
    logger.info(
      {
        grant: {
          refresh_token: 'RT-leak',
          access_token: 'AT-leak',
          accessToken: 'AT2-leak',
          code: 'CODE-leak',
          client_secret: 'CS-leak',
          encrypted_token: 'ET-leak',
          key: 'KEY-leak',
          Key: 'KEY2-leak',
        },
        req: {
          headers: { authorization: 'Bearer op-leak', cookie: 'cb_flow=cookie-leak' },
          body: 'x=body-leak',
        },
        res: { headers: { 'set-cookie': 'cb_flow=setcookie-leak' } },
        body: { encrypted_token: 'ET2-leak' },
        secrets: { key: 'SECRETS-leak' },
      },
      'something happened',
    )
    expect(lines).toHaveLength(1)
    const line = lines[0]!
    expect(line).not.toContain('-leak')
    const parsed = JSON.parse(line) as Record<string, Record<string, unknown>>
    expect(parsed.grant?.refresh_token).toBe(REDACTED)
    expect(parsed.grant?.encrypted_token).toBe(REDACTED)
    expect(parsed.body).toBe(REDACTED)
    expect(parsed.msg).toBe('something happened')
  })

  it('keeps non-secret fields readable', () => {
    const { logger, lines } = memoryLogger()
    logger.info(
      { registration: { id: 'reg-1', app: 'ms-graph-mail', tenantId: 't-1' }, statusCode: 200 },
      'ok',
    )
    const parsed = JSON.parse(lines[0]!) as { registration: { id: string }; statusCode: number }
    expect(parsed.registration.id).toBe('reg-1')
    expect(parsed.statusCode).toBe(200)
  })

  it('logs an error by its known-safe fields only: no command arguments, options or unknown fields', () => {
    const { logger, lines } = memoryLogger()
    const cause = Object.assign(new Error('WRONGPASS invalid username-password pair'), {
      command: { name: 'auth', args: ['default', 'hunter2-redis-password'] },
    })
    const error = Object.assign(new Error('registration index rebuild failed', { cause }), {
      code: 'ECONNRESET',
      options: { headers: { authorization: 'Bearer leaked-header' } },
      previousErrors: [{ args: ['hunter2-redis-password'] }],
    })
    logger.warn({ err: error }, 'rebuild failed')
    expect(lines).toHaveLength(1)
    expect(lines[0]).not.toContain('hunter2-redis-password')
    expect(lines[0]).not.toContain('leaked-header')
    const parsed = JSON.parse(lines[0]!) as { err: Record<string, unknown> }
    expect(parsed.err).toMatchObject({
      type: 'Error',
      message: 'registration index rebuild failed',
      // `*.code` is censored everywhere (an OAuth code is a secret), an error's code too.
      code: REDACTED,
      cause: { type: 'Error', message: 'WRONGPASS invalid username-password pair', command: 'auth' },
    })
    expect(Object.keys(parsed.err).sort()).toEqual(['cause', 'code', 'message', 'name', 'stack', 'type'])
  })

  it('honours the configured level', () => {
    const { logger, lines } = memoryLogger('warn')
    logger.info('hidden')
    logger.warn('shown')
    expect(lines.map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual(['shown'])
  })
})

describe('createLogger', () => {
  // createLogger serialises string, number and boolean fields without calling the redactor (nothing
  // inside them can match a path); everything else still goes through pino's redaction. It must
  // write exactly what plain pino with the same options writes, whatever is logged.
  const secretNames = [
    ...new Set(
      REDACT_PATHS.map((path) =>
        path
          .split('.')
          .pop()!
          .replace(/^\["|"\]$/g, ''),
      ),
    ),
  ]
  const key = fc.oneof(fc.constantFrom(...secretNames, 'req', 'res', 'headers', 'msg', 'url'), fc.string())
  const value = fc.letrec((tie) => ({
    leaf: fc.oneof(fc.string(), fc.double(), fc.integer(), fc.boolean(), fc.constant(null)),
    node: fc.oneof(
      { depthSize: 'small' },
      tie('leaf'),
      fc.array(tie('node'), { maxLength: 3 }),
      fc.dictionary(key, tie('node'), { maxKeys: 4, noNullPrototype: true }),
    ),
  })).node
  const withoutTime = (line: string) => line.replace(/"time":\d+,/, '')

  it('writes the same lines as pino with loggerOptions, for arbitrary objects, bindings and messages', () => {
    fc.assert(
      fc.property(
        fc.dictionary(key, value, { maxKeys: 6, noNullPrototype: true }),
        fc.dictionary(key, value, { maxKeys: 3, noNullPrototype: true }),
        fc.string(),
        (object, bindings, message) => {
          const plain = memoryStream()
          const fast = memoryStream()
          pino(loggerOptions('info'), plain.stream).child(bindings).info(object, message)
          createLogger('info', fast.stream).child(bindings).info(object, message)
          expect(fast.lines.map(withoutTime)).toEqual(plain.lines.map(withoutTime))
        },
      ),
      { numRuns: 300 },
    )
  })

  it('still censors every path of REDACT_PATHS when the secret sits next to plain string fields', () => {
    const { logger, lines } = memoryLogger()
    for (const path of REDACT_PATHS) {
      const segments = path
        .split(/\.|\["|"\]/)
        .filter(Boolean)
        .map((s) => (s === '*' ? 'anything' : s))
      const object: Record<string, unknown> = { method: 'POST', url: '/obtain-token', statusCode: 200 }
      let cursor = object
      for (const segment of segments.slice(0, -1)) {
        cursor[segment] = cursor[segment] ?? {}
        cursor = cursor[segment] as Record<string, unknown>
      }
      cursor[segments.at(-1)!] = `leak-${path}`
      logger.child({ reqId: 'r-1' }).info(object, 'request completed')
    }
    expect(lines).toHaveLength(REDACT_PATHS.length)
    for (const [i, line] of lines.entries()) {
      expect(line).not.toContain('leak-')
      // `req.*` values are also dropped earlier, by the `req` serializer (it keeps no header or body).
      if (!REDACT_PATHS[i]!.startsWith('req.')) expect(line, REDACT_PATHS[i]).toContain(REDACTED)
      expect(JSON.parse(line)).toMatchObject({ reqId: 'r-1', method: 'POST', statusCode: 200 })
    }
  })
})
