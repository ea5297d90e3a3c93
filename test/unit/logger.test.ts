// Redaction, configured once in src/logger.ts: secret-bearing URL parameters and object fields
// never reach a log line, whatever shape the logged object has.
import { Writable } from 'node:stream'
import { pino } from 'pino'
import { describe, expect, it } from 'vitest'
import { loggerOptions, REDACT_PATHS, REDACTED, redactUrl } from '../../src/logger.js'

function memoryLogger(level = 'trace') {
  const lines: string[] = []
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean))
      callback()
    },
  })
  return { logger: pino(loggerOptions(level), stream), lines }
}

describe('redactUrl', () => {
  it('replaces the values of sensitive query parameters and keeps the rest', () => {
    const url = redactUrl('/callback?code=0.AAA-secret-code&state=s3cr3t-state&session_state=abc&foo=bar')
    expect(url).toBe(`/callback?code=${REDACTED}&state=${REDACTED}&session_state=${REDACTED}&foo=bar`)
    expect(url).not.toContain('secret-code')
    expect(url).not.toContain('s3cr3t-state')
  })

  it('matches parameter names case-insensitively and covers every token-like name', () => {
    for (const name of [
      'CODE',
      'Code',
      'id_token',
      'access_token',
      'refresh_token',
      'client_secret',
      'key',
      'Key',
      'token',
      'client_info',
    ]) {
      const out = redactUrl(`/x?${name}=leak-${name}`)
      expect(out, name).toBe(`/x?${name}=${REDACTED}`)
    }
  })

  it('redacts every occurrence of a repeated parameter and percent-encoded values', () => {
    const out = redactUrl('/x?code=a1&code=b2&cod%65=c3&state=%2Fevil')
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

  it('honours the configured level', () => {
    const { logger, lines } = memoryLogger('warn')
    logger.info('hidden')
    logger.warn('shown')
    expect(lines.map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual(['shown'])
  })
})
