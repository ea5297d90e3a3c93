import { describe, expect, it } from 'vitest'
import { BrokerError, ERROR_CATALOGUE, errorBody, toBrokerError } from '../../src/errors.js'

describe('error catalogue', () => {
  it('gives every code a 4xx or 5xx status', () => {
    for (const [code, status] of Object.entries(ERROR_CATALOGUE)) {
      expect(status, code).toBeGreaterThanOrEqual(400)
      expect(status, code).toBeLessThan(600)
    }
  })

  it('renders one line with code, message and request id, details merged', () => {
    const error = new BrokerError('consent_required', 'consent again at https://x/ms-graph-mail', {
      details: { consent_url: 'https://x/ms-graph-mail' },
    })
    const text = JSON.stringify(errorBody(error, 'req-1'))
    expect(text).not.toContain('\n')
    expect(JSON.parse(text)).toEqual({
      error: {
        code: 'consent_required',
        message: 'consent again at https://x/ms-graph-mail',
        consent_url: 'https://x/ms-graph-mail',
      },
      message: 'consent again at https://x/ms-graph-mail',
      request_id: 'req-1',
    })
    expect(error.statusCode).toBe(401)
  })

  it('does not let details override code or message', () => {
    const error = new BrokerError('revoked', 'revoked', { details: { code: 'x', message: 'y' } })
    expect(errorBody(error, 'r').error).toMatchObject({ code: 'revoked', message: 'revoked' })
  })

  it('hides unknown errors behind a generic 500', () => {
    const mapped = toBrokerError(new Error('ECONNREFUSED 10.0.0.1:6379 password=hunter2'))
    expect(mapped.code).toBe('internal_error')
    expect(mapped.statusCode).toBe(500)
    expect(mapped.message).not.toContain('hunter2')
  })

  it('maps validation and body-size errors', () => {
    const validation = Object.assign(new Error("must have required property 'registration_id'"), {
      validation: [{}],
      validationContext: 'body',
    })
    expect(toBrokerError(validation)).toMatchObject({
      code: 'invalid_request',
      message: "body must have required property 'registration_id'",
    })
    expect(
      toBrokerError(Object.assign(new Error('too large'), { code: 'FST_ERR_CTP_BODY_TOO_LARGE' })).code,
    ).toBe('payload_too_large')
  })
})

describe('store outages', () => {
  it('become a retryable 503, not a generic 500', () => {
    const gaveUp = Object.assign(new Error('Reached the max retries per request limit (which is 2).'), {
      name: 'MaxRetriesPerRequestError',
    })
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6390'), { code: 'ECONNREFUSED' })
    for (const error of [gaveUp, refused, new Error('Connection is closed.')]) {
      const mapped = toBrokerError(error)
      expect(mapped).toMatchObject({ code: 'store_unavailable', statusCode: 503, retryAfter: 5 })
      expect(mapped.message).not.toContain('127.0.0.1')
    }
  })
})
