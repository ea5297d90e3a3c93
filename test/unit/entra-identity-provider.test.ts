// The Entra identity provider against a scripted HTTP server: which URLs it calls, what it sends,
// and how every kind of failure maps to UpstreamError / IdTokenError.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT } from 'jose'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { findApp, type ResolvedApp, resolveApp } from '../../src/config.js'
import { IdTokenError } from '../../src/entra/id-token.js'
import { createEntraIdentityProvider, redemptionScopes } from '../../src/entra/identity-provider.js'
import { type IdentityProvider, UpstreamError } from '../../src/entra/types.js'
import { testConfig } from '../support/config.js'

const TID = '7c3b1e5a-4d2f-4b8e-9a61-2f0c8d4e6b13'
const OID = '3f6c2a1e-8b4d-4c7a-9e15-0a1b2c3d4e01'

interface Recorded {
  method: string
  path: string
  body: URLSearchParams
}

type Handler = (request: Recorded, response: ServerResponse) => void | Promise<void>

let server: Server
let base: string
let privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey']
let publicJwk: JWK
const requests: Recorded[] = []
let handlers = new Map<string, Handler>()

function json(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers })
  response.end(JSON.stringify(body))
}

function discoveryDocument(segment: string, issuer: string) {
  return {
    issuer,
    authorization_endpoint: `${base}/${segment}/oauth2/v2.0/authorize`,
    token_endpoint: `${base}/${segment}/oauth2/v2.0/token`,
    jwks_uri: `${base}/${segment}/discovery/v2.0/keys`,
    id_token_signing_alg_values_supported: ['RS256'],
    response_types_supported: ['code'],
  }
}

function defaultHandlers(): Map<string, Handler> {
  return new Map<string, Handler>([
    [
      '/organizations/v2.0/.well-known/openid-configuration',
      (_q, r) => json(r, 200, discoveryDocument('organizations', `${base}/{tenantid}/v2.0`)),
    ],
    [
      `/${TID}/v2.0/.well-known/openid-configuration`,
      (_q, r) => json(r, 200, discoveryDocument(TID, `${base}/${TID}/v2.0`)),
    ],
    ['/organizations/discovery/v2.0/keys', (_q, r) => json(r, 200, { keys: [publicJwk] })],
  ])
}

beforeAll(async () => {
  const pair = await generateKeyPair('RS256')
  privateKey = pair.privateKey
  publicJwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' }
  server = createServer((request: IncomingMessage, response: ServerResponse) => {
    // No keep-alive: a connection closed by one test must not be reused by the next.
    response.setHeader('connection', 'close')
    let raw = ''
    request.setEncoding('utf8')
    request.on('data', (chunk: string) => {
      raw += chunk
    })
    request.on('end', () => {
      const url = new URL(request.url ?? '/', base)
      const recorded = { method: request.method ?? 'GET', path: url.pathname, body: new URLSearchParams(raw) }
      requests.push(recorded)
      const handler = handlers.get(url.pathname)
      if (handler === undefined) return json(response, 404, { error: 'not_found' })
      void handler(recorded, response)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

afterAll(async () => {
  server.closeAllConnections()
  await new Promise<void>((resolve) => server.close(() => resolve()))
})

let idp: IdentityProvider
let app: ResolvedApp

beforeEach(() => {
  requests.length = 0
  handlers = defaultHandlers()
  const config = testConfig({ authorityUrl: base })
  app = resolveApp(config, findApp(config, 'ms-graph-mail')!, 'global')!
  // Generous for a loaded CI machine; the timeout tests wait this long once.
  idp = createEntraIdentityProvider(config, { timeoutMs: 2000 })
})

afterEach(async () => {
  // Ends the requests a test left unanswered on purpose.
  server.closeAllConnections()
  // Let the client's connection pool see those sockets close, or the next test's first request
  // can pick a dead keep-alive socket and fail with "fetch failed".
  await new Promise((resolve) => setTimeout(resolve, 50))
})

const tokenPath = `/${TID}/oauth2/v2.0/token`
const organizationsTokenPath = '/organizations/oauth2/v2.0/token'

async function upstreamFailure(promise: Promise<unknown>): Promise<UpstreamError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(UpstreamError)
  return error as UpstreamError
}

async function idToken(overrides: JWTPayload = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  return new SignJWT({
    iss: `${base}/${TID}/v2.0`,
    aud: app.clientId,
    iat: now,
    nbf: now,
    exp: now + 3600,
    sub: 's',
    tid: TID,
    oid: OID,
    nonce: 'n-1',
    preferred_username: 'user@contoso.example',
    ...overrides,
  })
    .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
    .sign(privateKey)
}

describe('code redemption scopes', () => {
  it("keeps the OIDC scopes and the first resource's, since the token endpoint answers for one resource", () => {
    expect(
      redemptionScopes([
        'openid',
        'profile',
        'offline_access',
        'https://management.azure.com/user_impersonation',
        'https://api.loganalytics.io/Data.Read',
        'https://management.azure.com//other',
      ]),
    ).toEqual([
      'openid',
      'profile',
      'offline_access',
      'https://management.azure.com/user_impersonation',
      'https://management.azure.com//other',
    ])
    const graphOnly = [
      'openid',
      'https://graph.microsoft.com/Mail.Send',
      'https://graph.microsoft.com/User.Read',
    ]
    expect(redemptionScopes(graphOnly)).toEqual(graphOnly)
    expect(redemptionScopes(['openid', 'profile'])).toEqual(['openid', 'profile'])
  })
})

describe('URLs', () => {
  it('builds the sign-in URL from the organizations metadata with PKCE S256, state, nonce and prompt', async () => {
    const url = new URL(
      await idp.signInUrl(app, {
        state: 'st',
        nonce: 'nn',
        codeChallenge: 'c'.repeat(43),
        scopes: ['openid', 'profile'],
        redirectUri: 'http://127.0.0.1:3000/callback',
        prompt: 'select_account',
      }),
    )
    expect(`${url.origin}${url.pathname}`).toBe(`${base}/organizations/oauth2/v2.0/authorize`)
    expect(Object.fromEntries(url.searchParams)).toEqual({
      client_id: app.clientId,
      response_type: 'code',
      response_mode: 'query',
      redirect_uri: 'http://127.0.0.1:3000/callback',
      scope: 'openid profile',
      state: 'st',
      nonce: 'nn',
      code_challenge: 'c'.repeat(43),
      code_challenge_method: 'S256',
      prompt: 'select_account',
    })
  })

  it('builds the v2 admin-consent URL for one tenant', async () => {
    const url = new URL(
      await idp.adminConsentUrl(app, {
        tenantId: TID,
        state: 'st2',
        scope: 'https://graph.microsoft.com/.default',
        redirectUri: 'http://127.0.0.1:3000/callback',
      }),
    )
    expect(`${url.origin}${url.pathname}`).toBe(`${base}/${TID}/v2.0/adminconsent`)
    expect(Object.fromEntries(url.searchParams)).toEqual({
      client_id: app.clientId,
      redirect_uri: 'http://127.0.0.1:3000/callback',
      state: 'st2',
      scope: 'https://graph.microsoft.com/.default',
    })
  })

  it('refuses an admin-consent URL for something that is not a tenant GUID', async () => {
    await expect(
      idp.adminConsentUrl(app, { tenantId: 'common', state: 's', scope: 'x/.default', redirectUri: 'r' }),
    ).rejects.toThrow(/tenant GUID/)
  })
})

describe('client credentials', () => {
  it('posts to the tenant token endpoint with client_secret_post and returns the grant', async () => {
    handlers.set(tokenPath, (_q, r) =>
      json(r, 200, { token_type: 'Bearer', access_token: 'at-1', expires_in: 3599, scope: 'x' }),
    )
    const grant = await idp.clientCredentials(app, TID, app.defaultScope)
    expect(grant).toEqual({ accessToken: 'at-1', expiresIn: 3599, scope: 'x' })
    const call = requests.find((r) => r.path === tokenPath)!
    expect(call.method).toBe('POST')
    expect(Object.fromEntries(call.body)).toEqual({
      grant_type: 'client_credentials',
      scope: 'https://graph.microsoft.com/.default',
      client_id: app.clientId,
      client_secret: (app.credentials[0] as { secret: string }).secret,
    })
  })

  it('discovers each tenant once and reuses the metadata', async () => {
    handlers.set(tokenPath, (_q, r) =>
      json(r, 200, { token_type: 'Bearer', access_token: 'a', expires_in: 60 }),
    )
    await idp.clientCredentials(app, TID, app.defaultScope)
    await idp.clientCredentials(app, TID, app.defaultScope)
    await Promise.all([1, 2, 3].map(() => idp.clientCredentials(app, TID, app.defaultScope)))
    const discoveries = requests.filter((r) => r.path === `/${TID}/v2.0/.well-known/openid-configuration`)
    expect(discoveries).toHaveLength(1)
    expect(requests.filter((r) => r.path === tokenPath)).toHaveLength(5)
  })

  it('maps an OAuth error body to kind oauth with error, codes and trace id', async () => {
    handlers.set(tokenPath, (_q, r) =>
      json(r, 400, {
        error: 'unauthorized_client',
        error_description: 'AADSTS700016: Application was not found in the directory.',
        error_codes: [700016],
        trace_id: 'trace-1',
      }),
    )
    const error = await upstreamFailure(idp.clientCredentials(app, TID, app.defaultScope))
    expect(error.kind).toBe('oauth')
    expect(error.error).toBe('unauthorized_client')
    expect(error.errorCodes).toEqual([700016])
    expect(error.traceId).toBe('trace-1')
    expect(error.status).toBe(400)
    expect(error.label).toBe('AADSTS700016')
  })

  it('maps a 401 invalid_client with a WWW-Authenticate challenge to kind oauth', async () => {
    handlers.set(tokenPath, (_q, r) =>
      json(
        r,
        401,
        { error: 'invalid_client', error_codes: [7000215] },
        { 'www-authenticate': 'Basic realm="x"' },
      ),
    )
    const error = await upstreamFailure(idp.clientCredentials(app, TID, app.defaultScope))
    expect(error.kind).toBe('oauth')
    expect(error.error).toBe('invalid_client')
    expect(error.errorCodes).toEqual([7000215])
  })

  it('maps HTTP 429 to throttled with Retry-After seconds', async () => {
    handlers.set(tokenPath, (_q, r) =>
      json(r, 429, { error: 'temporarily_unavailable', error_codes: [50196] }, { 'retry-after': '7' }),
    )
    const error = await upstreamFailure(idp.clientCredentials(app, TID, app.defaultScope))
    expect(error.kind).toBe('throttled')
    expect(error.retryAfterSeconds).toBe(7)
  })

  it('maps AADSTS50196 on a 400 to throttled', async () => {
    handlers.set(tokenPath, (_q, r) => json(r, 400, { error: 'invalid_request', error_codes: [50196] }))
    const error = await upstreamFailure(idp.clientCredentials(app, TID, app.defaultScope))
    expect(error.kind).toBe('throttled')
    expect(error.retryAfterSeconds).toBeUndefined()
  })

  it('maps a 5xx HTML page to unavailable', async () => {
    handlers.set(tokenPath, (_q, r) => {
      r.writeHead(502, { 'content-type': 'text/html' })
      r.end('<html>Bad gateway</html>')
    })
    const error = await upstreamFailure(idp.clientCredentials(app, TID, app.defaultScope))
    expect(error.kind).toBe('unavailable')
    expect(error.status).toBe(502)
  })

  it('maps temporarily_unavailable on a 4xx to unavailable, keeping the error', async () => {
    handlers.set(tokenPath, (_q, r) =>
      json(r, 400, { error: 'temporarily_unavailable', error_codes: [90033] }),
    )
    const error = await upstreamFailure(idp.clientCredentials(app, TID, app.defaultScope))
    expect(error.kind).toBe('unavailable')
    expect(error.error).toBe('temporarily_unavailable')
  })

  it('maps a 200 that is not JSON to unavailable', async () => {
    handlers.set(tokenPath, (_q, r) => {
      r.writeHead(200, { 'content-type': 'text/plain' })
      r.end('hello')
    })
    const error = await upstreamFailure(idp.clientCredentials(app, TID, app.defaultScope))
    expect(error.kind).toBe('unavailable')
  })

  it('maps a reset connection to unavailable', async () => {
    handlers.set(tokenPath, (_q, r) => {
      r.socket?.destroy()
    })
    const error = await upstreamFailure(idp.clientCredentials(app, TID, app.defaultScope))
    expect(error.kind).toBe('unavailable')
  })

  it('maps no answer within the timeout to timeout', async () => {
    handlers.set(tokenPath, () => {
      // never answers
    })
    const startedAt = Date.now()
    const error = await upstreamFailure(idp.clientCredentials(app, TID, app.defaultScope))
    expect(error.kind).toBe('timeout')
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(1900)
    expect(Date.now() - startedAt).toBeLessThan(10_000)
  })

  it("honours the caller's AbortSignal", async () => {
    handlers.set(tokenPath, () => {
      // never answers
    })
    // A long own timeout, so only the caller's abort can end the call early.
    const patient = createEntraIdentityProvider(testConfig({ authorityUrl: base }), { timeoutMs: 30_000 })
    const controller = new AbortController()
    const startedAt = Date.now()
    const pending = patient.clientCredentials(app, TID, app.defaultScope, controller.signal)
    setTimeout(() => controller.abort(), 100)
    const error = await upstreamFailure(pending)
    expect(error.kind).toBe('timeout')
    expect(Date.now() - startedAt).toBeLessThan(10_000)
  })

  it('maps a failing tenant discovery (unknown tenant) to an oauth error and retries it next time', async () => {
    const unknown = 'b1b2b3b4-0000-4000-8000-000000000000'
    handlers.set(`/${unknown}/v2.0/.well-known/openid-configuration`, (_q, r) =>
      json(r, 400, { error: 'invalid_tenant', error_codes: [90002] }),
    )
    const first = await upstreamFailure(idp.clientCredentials(app, unknown, app.defaultScope))
    expect(first.kind).toBe('oauth')
    expect(first.errorCodes).toEqual([90002])
    await upstreamFailure(idp.clientCredentials(app, unknown, app.defaultScope))
    expect(
      requests.filter((r) => r.path === `/${unknown}/v2.0/.well-known/openid-configuration`),
    ).toHaveLength(2)
  })

  it('rejects tenant metadata whose issuer is not the tenant issuer', async () => {
    handlers.set(`/${TID}/v2.0/.well-known/openid-configuration`, (_q, r) =>
      json(r, 200, discoveryDocument(TID, 'https://evil.example/x/v2.0')),
    )
    const error = await upstreamFailure(idp.clientCredentials(app, TID, app.defaultScope))
    expect(error.kind).toBe('unavailable')
    expect(requests.some((r) => r.path === tokenPath)).toBe(false)
  })
})

describe('refresh', () => {
  it('asks for offline_access too and returns the rotated refresh token', async () => {
    handlers.set(tokenPath, (_q, r) =>
      json(r, 200, {
        token_type: 'Bearer',
        access_token: 'at-2',
        expires_in: 3600,
        scope: 'https://graph.microsoft.com/Mail.Read',
        refresh_token: 'rt-2',
      }),
    )
    const grant = await idp.refresh(app, TID, 'rt-1', 'https://graph.microsoft.com/.default')
    expect(grant).toEqual({
      accessToken: 'at-2',
      expiresIn: 3600,
      scope: 'https://graph.microsoft.com/Mail.Read',
      refreshToken: 'rt-2',
    })
    const call = requests.find((r) => r.path === tokenPath)!
    expect(call.body.get('grant_type')).toBe('refresh_token')
    expect(call.body.get('refresh_token')).toBe('rt-1')
    expect(call.body.get('scope')).toBe('https://graph.microsoft.com/.default offline_access')
  })

  it('maps invalid_grant (revoked grant) to kind oauth', async () => {
    handlers.set(tokenPath, (_q, r) => json(r, 400, { error: 'invalid_grant', error_codes: [50173] }))
    const error = await upstreamFailure(idp.refresh(app, TID, 'rt-1', 'https://graph.microsoft.com/.default'))
    expect(error.kind).toBe('oauth')
    expect(error.error).toBe('invalid_grant')
    expect(error.errorCodes).toEqual([50173])
  })
})

describe('code redemption', () => {
  const redemption = {
    code: 'code-1',
    codeVerifier: 'v'.repeat(43),
    redirectUri: 'http://127.0.0.1:3000/callback',
    nonce: 'n-1',
    scopes: ['openid', 'profile', 'offline_access'],
  }

  it('posts to the organizations token endpoint and validates the ID token', async () => {
    const token = await idToken({ wids: ['62e90394-69f5-4237-9190-012177145e10'] })
    handlers.set(organizationsTokenPath, (_q, r) =>
      json(r, 200, { token_type: 'Bearer', access_token: 'a', id_token: token, refresh_token: 'rt' }),
    )
    const redeemed = await idp.redeemCode(app, redemption)
    expect(redeemed).toEqual({
      idToken: {
        tid: TID,
        oid: OID,
        preferredUsername: 'user@contoso.example',
        name: '',
        wids: ['62e90394-69f5-4237-9190-012177145e10'],
      },
      accessToken: 'a',
      refreshToken: 'rt',
    })
    const call = requests.find((r) => r.path === organizationsTokenPath)!
    expect(Object.fromEntries(call.body)).toEqual({
      client_id: app.clientId,
      client_secret: (app.credentials[0] as { secret: string }).secret,
      grant_type: 'authorization_code',
      code: 'code-1',
      redirect_uri: 'http://127.0.0.1:3000/callback',
      code_verifier: 'v'.repeat(43),
      scope: 'openid profile offline_access',
    })
  })

  it('rejects an ID token issued for another tenant than its tid', async () => {
    const token = await idToken({ iss: `${base}/a9e4f7c2-1b3d-4e5f-8a7b-6c5d4e3f2a10/v2.0` })
    handlers.set(organizationsTokenPath, (_q, r) =>
      json(r, 200, { token_type: 'Bearer', access_token: 'a', id_token: token }),
    )
    const error = await idp.redeemCode(app, redemption).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(IdTokenError)
    expect((error as IdTokenError).reason).toBe('issuer')
  })

  it('rejects an ID token with another nonce', async () => {
    const token = await idToken({ nonce: 'someone-elses' })
    handlers.set(organizationsTokenPath, (_q, r) =>
      json(r, 200, { token_type: 'Bearer', access_token: 'a', id_token: token }),
    )
    const error = await idp.redeemCode(app, redemption).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(IdTokenError)
    expect((error as IdTokenError).reason).toBe('nonce')
  })

  it('maps an answer without id_token to unavailable', async () => {
    handlers.set(organizationsTokenPath, (_q, r) => json(r, 200, { token_type: 'Bearer', access_token: 'a' }))
    const error = await upstreamFailure(idp.redeemCode(app, redemption))
    expect(error.kind).toBe('unavailable')
  })

  it('maps invalid_grant (code already redeemed) to kind oauth', async () => {
    handlers.set(organizationsTokenPath, (_q, r) =>
      json(r, 400, { error: 'invalid_grant', error_codes: [54005], trace_id: 't' }),
    )
    const error = await upstreamFailure(idp.redeemCode(app, redemption))
    expect(error.kind).toBe('oauth')
    expect(error.errorCodes).toEqual([54005])
  })

  it('maps a slow token endpoint to timeout', async () => {
    handlers.set(organizationsTokenPath, () => {
      // never answers
    })
    const error = await upstreamFailure(idp.redeemCode(app, redemption))
    expect(error.kind).toBe('timeout')
  })

  it('maps an unreachable JWKS to unavailable, not to a bad token', async () => {
    handlers.delete('/organizations/discovery/v2.0/keys')
    const token = await idToken()
    handlers.set(organizationsTokenPath, (_q, r) =>
      json(r, 200, { token_type: 'Bearer', access_token: 'a', id_token: token }),
    )
    const error = await upstreamFailure(idp.redeemCode(app, redemption))
    expect(error.kind).toBe('unavailable')
  })

  it('maps a failing discovery document to unavailable', async () => {
    handlers.set('/organizations/v2.0/.well-known/openid-configuration', (_q, r) => {
      r.writeHead(503, { 'content-type': 'text/html' })
      r.end('<html>Service unavailable</html>')
    })
    const error = await upstreamFailure(idp.redeemCode(app, redemption))
    expect(error.kind).toBe('unavailable')
    expect(error.status).toBe(503)
    expect(requests.some((r) => r.path === organizationsTokenPath)).toBe(false)
  })
})
