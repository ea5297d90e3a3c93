import { describe, expect, it } from 'vitest'
import {
  BrokerError,
  CONSENT_FAILURE_REASONS,
  consentRequired,
  ERROR_CATALOGUE,
  errorBody,
  invalidRequest,
  isErrorCode,
  isStoreOutage,
  methodNotAllowed,
  RouteTable,
  recordedFailure,
  registrationRevoked,
  staleToken,
  statusOf,
  storeUnavailable,
  toBrokerError,
  tokenRequestsRateLimited,
  unknownApp,
} from '../../src/errors.js'
import { malformedCursor, revokedIsFinal } from '../../src/store/store-facts.js'

describe('error catalogue', () => {
  it('gives every code a 4xx or 5xx status', () => {
    for (const [code, { status }] of Object.entries(ERROR_CATALOGUE)) {
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

describe('catalogue entries', () => {
  it('every code has a message, and renders through the handler or on the consent page', () => {
    for (const [code, entry] of Object.entries(ERROR_CATALOGUE)) {
      expect(entry.message.length, code).toBeGreaterThan(0)
      expect(['route', 'consent-page'], code).toContain(entry.renders)
    }
  })

  it("folds in the consent flow's failures with their statuses (page-only codes)", () => {
    expect(CONSENT_FAILURE_REASONS).toEqual([
      'cancelled',
      'not_admin',
      'session_missing',
      'session_expired',
      'state_mismatch',
      'replayed',
      'tenant_mismatch',
      'consent_not_effective',
      'idp_error',
      'idp_unavailable',
      'invalid_id_token',
      'no_refresh_token',
      'invalid_callback',
      'own_app_invalid',
      'own_app_secret_rejected',
      'own_app_not_in_tenant',
      'own_app_public_client_disabled',
      'own_app_needs_secret',
      'device_code_expired',
      'own_app_missing_permissions',
    ])
    expect(CONSENT_FAILURE_REASONS.map((reason) => statusOf(reason))).toEqual([
      400, 403, 400, 400, 403, 409, 403, 503, 502, 503, 502, 502, 400, 400, 400, 400, 400, 400, 400, 400,
    ])
    // A consent failure is never answered as a BrokerError (JSON).
    for (const reason of CONSENT_FAILURE_REASONS) expect(isErrorCode(reason), reason).toBe(false)
    expect(isErrorCode('store_unavailable')).toBe(true)
    expect(isErrorCode('toString')).toBe(false)
  })

  it('keeps the documented statuses of the wire codes', () => {
    expect(
      Object.fromEntries(
        Object.entries(ERROR_CATALOGUE)
          .filter(([, entry]) => entry.renders === 'route')
          .map(([code, entry]) => [code, entry.status]),
      ),
    ).toEqual({
      invalid_request: 400,
      invalid_scope: 400,
      unknown_app: 400,
      unauthorized: 401,
      unknown_registration: 401,
      invalid_key: 401,
      stale_token: 401,
      replayed_token: 401,
      token_mismatch: 401,
      revoked: 401,
      consent_required: 401,
      csrf_failed: 403,
      forbidden: 403,
      not_found: 404,
      method_not_allowed: 405,
      request_timeout: 408,
      conflict: 409,
      payload_too_large: 413,
      uri_too_long: 414,
      unsupported_media_type: 415,
      rate_limited: 429,
      headers_too_large: 431,
      internal_error: 500,
      broker_misconfigured: 502,
      upstream_error: 502,
      upstream_unavailable: 503,
      upstream_throttled: 503,
      not_ready: 503,
      too_many_connections: 503,
      store_unavailable: 503,
      upstream_timeout: 504,
    })
  })
})

describe('factories', () => {
  it('build the catalogued code and status with the message template filled in', () => {
    expect(unknownApp('nope', 'ms-graph-mail, ms-graph-user')).toMatchObject({
      code: 'unknown_app',
      statusCode: 400,
      message: 'app_name "nope" is not hosted by this broker; hosted: ms-graph-mail, ms-graph-user',
    })
    expect(staleToken(-400, 300).message).toBe(
      "the request's timestamp is 400 s behind the broker's clock (allowed ±300 s); check the clock of the XSOAR server or engine",
    )
    expect(staleToken(301, 300).message).toContain('301 s ahead of')
    expect(tokenRequestsRateLimited(1200, 'for this registration')).toMatchObject({
      code: 'rate_limited',
      statusCode: 429,
      retryAfter: 2,
      message: 'too many token requests for this registration; slow down',
    })
  })

  it('carry details and the cause', () => {
    const cause = new Error('underlying')
    expect(invalidRequest('body is odd', cause).cause).toBe(cause)
    // A user's consent renews their registration without showing the Key: nothing to paste.
    expect(consentRequired('gone', 'delegated', 'https://b/x')).toMatchObject({
      code: 'consent_required',
      message:
        'gone: the user must consent again at https://b/x; the integration keeps its ID, Token and Key, nothing to change',
      details: { consent_url: 'https://b/x' },
    })
    expect(consentRequired('gone', 'admin', 'https://b/x')).toMatchObject({
      code: 'consent_required',
      message:
        'gone: a tenant administrator must consent again at https://b/x and then use the ID, Token and Key shown there',
      details: { consent_url: 'https://b/x' },
    })
    const revoked = registrationRevoked({
      at: '2026-01-02T03:04:05.000Z',
      by: 'operator:alice',
      reason: undefined,
      consentUrl: 'https://b/x',
    })
    expect(revoked.message).toBe(
      'this registration was revoked on 2026-01-02T03:04:05.000Z by operator:alice; consent again at https://b/x to get a new ID, Token and Key',
    )
    expect(revoked.details).toEqual({
      revoked_at: '2026-01-02T03:04:05.000Z',
      reason: null,
      consent_url: 'https://b/x',
    })
  })

  it('a recorded failure comes back as the same error, an uncatalogued code as an internal error', () => {
    expect(
      recordedFailure({ code: 'upstream_throttled', message: 'slow', retryAfter: 7, details: { a: 1 } }),
    ).toMatchObject({
      code: 'upstream_throttled',
      statusCode: 503,
      message: 'slow',
      retryAfter: 7,
      details: { a: 1 },
    })
    expect(recordedFailure({ code: 'cancelled', message: 'x' })).toMatchObject({
      code: 'internal_error',
      statusCode: 500,
    })
  })

  it('a wrong method names the allowed ones', () => {
    expect(methodNotAllowed('GET', '/obtain-token', ['POST'])).toMatchObject({
      code: 'method_not_allowed',
      statusCode: 405,
      details: { allow: 'POST' },
      message: 'GET is not allowed on /obtain-token; use POST',
    })
  })
})

describe('a Redis that hangs', () => {
  it('is an outage (ioredis rejects the command after commandTimeout), answered 503 with Retry-After', () => {
    const hung = new Error('Command timed out')
    expect(isStoreOutage(hung)).toBe(true)
    expect(toBrokerError(hung)).toMatchObject({ code: 'store_unavailable', statusCode: 503, retryAfter: 5 })
    expect(storeUnavailable(hung).cause).toBe(hung)
    expect(isStoreOutage(new Error('Command failed'))).toBe(false)
  })
})

describe('RouteTable', () => {
  const table = new RouteTable()
  table.add({ method: ['GET', 'HEAD'], url: '/:app' })
  table.add({ method: 'POST', url: '/obtain-token' })
  table.add({ method: ['GET', 'HEAD'], url: '/admin/api/registrations/:id' })
  table.add({ method: 'POST', url: '/admin/api/registrations/:id/revoke' })

  it('the most specific pattern decides: a static path beats the /:app catch-all', () => {
    expect(table.allowedMethods('/obtain-token')).toEqual(['POST'])
    expect(table.allowedMethods('/ms-graph-mail')).toEqual(['GET', 'HEAD'])
    expect(table.allowedMethods('/admin/api/registrations/abc')).toEqual(['GET', 'HEAD'])
    expect(table.allowedMethods('/admin/api/registrations/abc/')).toEqual(['GET', 'HEAD'])
    expect(table.allowedMethods('/admin/api/nothing')).toEqual([])
  })

  it('answers 405 for a known path with another method, else 404', () => {
    expect(table.notFoundError('GET', '/obtain-token')).toMatchObject({ code: 'method_not_allowed' })
    expect(table.notFoundError('DELETE', '/admin/api/registrations/abc')).toMatchObject({
      statusCode: 405,
      details: { allow: 'GET, HEAD' },
    })
    expect(table.notFoundError('GET', '/admin/api/nothing')).toMatchObject({
      code: 'not_found',
      message: 'no route for GET at this path',
    })
  })

  it("names the route as declared in a 405, never the request's path", () => {
    expect(table.notFoundError('PUT', '/admin/api/registrations/say-something-here')).toMatchObject({
      message: 'PUT is not allowed on /admin/api/registrations/{id}; use GET, HEAD',
    })
    expect(table.notFoundError('POST', '/Call-support-at-555-0100').message).not.toContain('Call-support')
  })

  it('a parameter given its values matches those only: a typo of a static path is 404', () => {
    const slugs = new RouteTable({ app: new Set(['ms-graph-mail']) })
    slugs.add({ method: ['GET', 'HEAD'], url: '/:app' })
    slugs.add({ method: 'POST', url: '/:app/start' })
    slugs.add({ method: 'POST', url: '/obtain-token' })
    slugs.add({ method: ['GET', 'HEAD'], url: '/admin/api/registrations/:id' })
    expect(slugs.notFoundError('POST', '/ms-graph-mail')).toMatchObject({
      statusCode: 405,
      message: 'POST is not allowed on /{app}; use GET, HEAD',
    })
    for (const typo of ['/obtain-tokn', '/Obtain-Token', '/obtain_token']) {
      expect(slugs.notFoundError('POST', typo), typo).toMatchObject({ statusCode: 404, code: 'not_found' })
    }
    expect(slugs.allowedMethods('/not-an-app/start')).toEqual([])
    expect(slugs.allowedMethods('/ms-graph-mail/start')).toEqual(['POST'])
    // Parameters without values match anything, as before.
    expect(slugs.allowedMethods('/admin/api/registrations/abc')).toEqual(['GET', 'HEAD'])
  })
})

describe('store facts', () => {
  it("become the broker's catalogued codes, their message kept", () => {
    expect(toBrokerError(malformedCursor())).toMatchObject({
      code: 'invalid_request',
      statusCode: 400,
      message: 'cursor is malformed',
    })
    expect(toBrokerError(revokedIsFinal('r1'))).toMatchObject({
      code: 'conflict',
      statusCode: 409,
      message: 'registration r1 is revoked; revocation is final',
    })
  })
})
