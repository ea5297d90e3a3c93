import { createHash, randomBytes } from 'node:crypto'
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose'
import { describe, expect, it } from 'vitest'
import {
  CONTOSO_ADMIN,
  CONTOSO_TENANT_ID,
  CONTOSO_USER,
  FABRIKAM_ADMIN,
  FABRIKAM_TENANT_ID,
  FABRIKAM_USER,
  findDemoClient,
  GLOBAL_ADMINISTRATOR_ROLE,
} from '../../emulator/demo-data.js'
import { startEmulator } from '../../emulator/server.js'
import { useEmulator } from '../support/emulator.js'
import { completeAtEmulator } from '../support/emulator-driver.js'

type Json = Record<string, unknown>

const MAIL = findDemoClient('ms-graph-mail')
const USER_APP = findDemoClient('ms-graph-user')
const GRAPH = 'https://graph.microsoft.com'
const REDIRECT = 'http://127.0.0.1:8765/auth/callback'

const emu = useEmulator({ resetEach: true })

function pkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url')
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') }
}

interface AuthorizeParams {
  tenant?: string
  client?: { clientId: string }
  scope?: string
  extra?: Record<string, string>
}

function authorizeUrl(p: AuthorizeParams = {}): string {
  const url = new URL(`${emu.url}/${p.tenant ?? 'organizations'}/oauth2/v2.0/authorize`)
  url.search = new URLSearchParams({
    client_id: (p.client ?? MAIL).clientId,
    redirect_uri: REDIRECT,
    response_type: 'code',
    scope: p.scope ?? `openid profile offline_access ${GRAPH}/Mail.Read`,
    state: 'st-123',
    ...p.extra,
  }).toString()
  return url.toString()
}

function adminConsentUrl(tenant: string, extra: Record<string, string> = {}): string {
  const url = new URL(`${emu.url}/${tenant}/v2.0/adminconsent`)
  url.search = new URLSearchParams({
    client_id: MAIL.clientId,
    redirect_uri: REDIRECT,
    scope: `${GRAPH}/.default`,
    state: 'admin-state',
    ...extra,
  }).toString()
  return url.toString()
}

interface TokenResult {
  status: number
  headers: Headers
  json: Json
  text: string
}

async function token(
  tenant: string,
  fields: Record<string, string | undefined>,
  client: { clientId: string; clientSecret: string } | null = MAIL,
  auth: 'post' | 'basic' = 'post',
): Promise<TokenResult> {
  const body = new URLSearchParams()
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) body.set(k, v)
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' }
  if (client && auth === 'post') {
    body.set('client_id', client.clientId)
    body.set('client_secret', client.clientSecret)
  } else if (client) {
    const basic = `${encodeURIComponent(client.clientId)}:${encodeURIComponent(client.clientSecret)}`
    headers.authorization = `Basic ${Buffer.from(basic).toString('base64')}`
  }
  const res = await fetch(`${emu.url}/${tenant}/oauth2/v2.0/token`, { method: 'POST', headers, body })
  const text = await res.text()
  let json: Json = {}
  try {
    json = JSON.parse(text) as Json
  } catch {
    // non-JSON bodies (injected faults) are checked through `text`
  }
  return { status: res.status, headers: res.headers, json, text }
}

/** Signs in through the driver and returns the code plus what redeeming it needs. */
async function obtainCode(
  options: { username?: string; tenant?: string; scope?: string; client?: { clientId: string } } = {},
) {
  const { verifier, challenge } = pkcePair()
  const nonce = `n-${randomBytes(6).toString('hex')}`
  const location = await completeAtEmulator(
    authorizeUrl({
      tenant: options.tenant,
      client: options.client,
      scope: options.scope,
      extra: { code_challenge: challenge, code_challenge_method: 'S256', nonce },
    }),
    { username: options.username ?? CONTOSO_ADMIN.username },
  )
  const code = location.searchParams.get('code')
  expect(code, `no code in ${location}`).toBeTruthy()
  return { code: code!, verifier, nonce, location }
}

async function redeem(
  code: string,
  verifier: string,
  tenant = 'organizations',
  client: { clientId: string; clientSecret: string } = MAIL,
) {
  return token(
    tenant,
    { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier },
    client,
  )
}

async function signedInTokens(options: Parameters<typeof obtainCode>[0] = {}) {
  const { code, verifier } = await obtainCode(options)
  const res = await redeem(code, verifier, options.tenant)
  expect(res.status, res.text).toBe(200)
  return res.json
}

async function adminConsent(tenant = CONTOSO_TENANT_ID, username = CONTOSO_ADMIN.username): Promise<URL> {
  return completeAtEmulator(adminConsentUrl(tenant), { username })
}

async function hook(method: string, path: string, body?: unknown): Promise<{ status: number; json: Json }> {
  const res = await fetch(`${emu.url}/_emulator/${path}`, {
    method,
    ...(body !== undefined
      ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }
      : {}),
  })
  return { status: res.status, json: (await res.json()) as Json }
}

const clientCredentials = (tenant: string, scope = `${GRAPH}/.default`) =>
  token(tenant, { grant_type: 'client_credentials', scope })

function expectEntraError(res: TokenResult, status: number, error: string, code: number) {
  expect(res.status, res.text).toBe(status)
  expect(res.json.error).toBe(error)
  expect(res.json.error_codes).toEqual([code])
  expect(res.json.error_description).toMatch(new RegExp(`^AADSTS${code}: `))
}

async function postForm(url: string, fields: Record<string, string>): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields),
  })
}

function formOf(html: string): { action: string; flow: string } {
  const form = /<form method="post" action="([^"]+)">/.exec(html)
  const flow = /<input type="hidden" name="flow" value="([^"]+)">/.exec(html)
  expect(form, html).not.toBeNull()
  expect(flow, html).not.toBeNull()
  return { action: new URL(form![1]!, emu.url).toString(), flow: flow![1]! }
}

describe('discovery and keys', () => {
  it.each(['organizations', 'common'])('/%s advertises the {tenantid} issuer template', async (tenant) => {
    const res = await fetch(`${emu.url}/${tenant}/v2.0/.well-known/openid-configuration`)
    expect(res.status).toBe(200)
    const doc = (await res.json()) as Json
    expect(doc.issuer).toBe(`${emu.url}/{tenantid}/v2.0`)
    expect(doc.authorization_endpoint).toBe(`${emu.url}/${tenant}/oauth2/v2.0/authorize`)
    expect(doc.token_endpoint).toBe(`${emu.url}/${tenant}/oauth2/v2.0/token`)
    expect(doc.jwks_uri).toBe(`${emu.url}/${tenant}/discovery/v2.0/keys`)
    expect(doc.device_authorization_endpoint).toBe(`${emu.url}/${tenant}/oauth2/v2.0/devicecode`)
    expect(doc.end_session_endpoint).toBe(`${emu.url}/${tenant}/oauth2/v2.0/logout`)
    expect(doc.response_types_supported).toEqual(['code'])
    expect(doc.response_modes_supported).toEqual(expect.arrayContaining(['query', 'form_post']))
    expect(doc.subject_types_supported).toEqual(['pairwise'])
    expect(doc.id_token_signing_alg_values_supported).toEqual(['RS256'])
    expect(doc.token_endpoint_auth_methods_supported).toEqual([
      'client_secret_post',
      'private_key_jwt',
      'client_secret_basic',
    ])
    expect(doc.scopes_supported).toEqual(['openid', 'profile', 'email', 'offline_access'])
    expect(doc.claims_supported).toEqual(expect.arrayContaining(['tid', 'oid', 'nonce', 'wids']))
    expect(doc.code_challenge_methods_supported).toEqual(['S256'])
    expect(doc.request_uri_parameter_supported).toBe(false)
    expect(doc.tenant_region_scope).toBeNull()
  })

  it('a tenant GUID, or its verified domain, gets the exact issuer', async () => {
    for (const segment of [CONTOSO_TENANT_ID, 'contoso.example']) {
      const doc = (await (
        await fetch(`${emu.url}/${segment}/v2.0/.well-known/openid-configuration`)
      ).json()) as Json
      expect(doc.issuer).toBe(`${emu.url}/${CONTOSO_TENANT_ID}/v2.0`)
      expect(doc.token_endpoint).toBe(`${emu.url}/${CONTOSO_TENANT_ID}/oauth2/v2.0/token`)
      expect(doc.jwks_uri).toBe(`${emu.url}/${CONTOSO_TENANT_ID}/discovery/v2.0/keys`)
      expect(doc.tenant_region_scope).toBe('NA')
    }
    const fabrikam = (await (
      await fetch(`${emu.url}/${FABRIKAM_TENANT_ID}/v2.0/.well-known/openid-configuration`)
    ).json()) as Json
    expect(fabrikam.issuer).toBe(`${emu.url}/${FABRIKAM_TENANT_ID}/v2.0`)
  })

  it('an unknown tenant is AADSTS90002 in Entra error shape, at discovery, keys and token', async () => {
    const unknown = '00000000-1111-2222-3333-444444444444'
    for (const path of [
      `${unknown}/v2.0/.well-known/openid-configuration`,
      `${unknown}/discovery/v2.0/keys`,
    ]) {
      const res = await fetch(`${emu.url}/${path}`)
      expect(res.status).toBe(400)
      const body = (await res.json()) as Json
      expect(body.error).toBe('invalid_request')
      expect(body.error_codes).toEqual([90002])
      expect(body.trace_id).toMatch(/^[0-9a-f-]{36}$/)
      expect(body.correlation_id).toMatch(/^[0-9a-f-]{36}$/)
      expect(body.timestamp).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/)
      expect(body.error_description).toBe(
        `AADSTS90002: Tenant '${unknown}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.\r\nTrace ID: ${body.trace_id}\r\nCorrelation ID: ${body.correlation_id}\r\nTimestamp: ${body.timestamp}`,
      )
    }
    const res = await clientCredentials(unknown)
    expectEntraError(res, 400, 'invalid_request', 90002)
  })

  it('/consumers names the Microsoft account tenant as its issuer, as Entra does', async () => {
    const doc = (await (
      await fetch(`${emu.url}/consumers/v2.0/.well-known/openid-configuration`)
    ).json()) as Json
    expect(doc.issuer).toBe(`${emu.url}/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0`)
    expect(doc.token_endpoint).toBe(`${emu.url}/consumers/oauth2/v2.0/token`)
  })

  it('logout redirects to an allowed post_logout_redirect_uri; the device authorization endpoint answers a user code', async () => {
    const logout = await fetch(
      `${emu.url}/common/oauth2/v2.0/logout?post_logout_redirect_uri=${encodeURIComponent('http://localhost:3000/bye')}&state=s1`,
      { redirect: 'manual' },
    )
    expect(logout.status).toBe(302)
    expect(logout.headers.get('location')).toBe('http://localhost:3000/bye?state=s1')
    const elsewhere = await fetch(
      `${emu.url}/common/oauth2/v2.0/logout?post_logout_redirect_uri=${encodeURIComponent('https://evil.example/')}`,
      { redirect: 'manual' },
    )
    expect(elsewhere.status).toBe(200)
    expect(elsewhere.headers.get('location')).toBeNull()
    const device = await fetch(`${emu.url}/organizations/oauth2/v2.0/devicecode`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: MAIL.clientId, scope: 'openid' }),
    })
    expect(device.status).toBe(200)
    const started = (await device.json()) as Json
    expect(started.user_code).toMatch(/^[A-Z]{9}$/)
    expect(started.verification_uri).toBe(`${emu.url}/devicelogin`)
  })

  it('JWKS publishes the RS256 signing key with kid and use', async () => {
    const res = await fetch(`${emu.url}/common/discovery/v2.0/keys`)
    const jwks = (await res.json()) as { keys: Json[] }
    expect(jwks.keys).toHaveLength(1)
    const [key] = jwks.keys
    expect(key).toMatchObject({ kty: 'RSA', use: 'sig', alg: 'RS256', e: 'AQAB' })
    expect(key!.kid).toMatch(/^[\w-]{43}$/)
    expect(typeof key!.n).toBe('string')
    expect(key!.d).toBeUndefined()
    expect(emu.state.keys[0]!.kid).toBe(key!.kid)
  })
})

describe('authorization code flow', () => {
  it('authorize → sign-in → consent → code → tokens, with PKCE and nonce', async () => {
    const { verifier, challenge } = pkcePair()
    const url = authorizeUrl({
      extra: { code_challenge: challenge, code_challenge_method: 'S256', nonce: 'nonce-42' },
    })
    const signIn = await fetch(url, { redirect: 'manual' })
    expect(signIn.status).toBe(200)
    expect(signIn.headers.get('content-type')).toMatch(/^text\/html/)
    const signInHtml = await signIn.text()
    expect(signInHtml.match(/<form\b/g)).toHaveLength(1)
    expect(signInHtml.match(/type="submit"/g)).toHaveLength(1)
    expect(signInHtml).toMatch(/<input type="text" id="username" name="username"/)
    const first = formOf(signInHtml)
    expect(first.action).toBe(`${emu.url}/organizations/login`)

    const consent = await postForm(first.action, { flow: first.flow, username: CONTOSO_ADMIN.username })
    expect(consent.status).toBe(200)
    const consentHtml = await consent.text()
    expect(consentHtml).toContain('<button type="submit" name="decision" value="accept">Accept</button>')
    expect(consentHtml).toContain('<button type="submit" name="decision" value="deny">Cancel</button>')
    expect(consentHtml.match(/type="submit"/g)).toHaveLength(2)
    expect(consentHtml).toContain(`Mail.Read on ${GRAPH}`)
    expect(consentHtml).toContain('(offline_access)')
    const second = formOf(consentHtml)

    const back = await postForm(second.action, { flow: second.flow, decision: 'accept' })
    expect(back.status).toBe(302)
    const location = new URL(back.headers.get('location')!)
    expect(`${location.origin}${location.pathname}`).toBe(REDIRECT)
    expect(location.searchParams.get('state')).toBe('st-123')
    expect(location.searchParams.get('session_state')).toMatch(/^[0-9a-f-]{36}$/)
    const code = location.searchParams.get('code')!
    expect(code.length).toBeGreaterThan(40)

    const res = await redeem(code, verifier)
    expect(res.status, res.text).toBe(200)
    expect(res.headers.get('cache-control')).toContain('no-store')
    const t = res.json
    expect(t.token_type).toBe('Bearer')
    expect(t.expires_in).toBe(3600)
    expect(t.ext_expires_in).toBe(3600)
    expect(t.scope).toBe(`${GRAPH}/Mail.Read openid profile offline_access`)
    expect(typeof t.refresh_token).toBe('string')

    const jwks = createRemoteJWKSet(new URL(`${emu.url}/organizations/discovery/v2.0/keys`))
    const { payload: id, protectedHeader } = await jwtVerify(t.id_token as string, jwks, {
      issuer: `${emu.url}/${CONTOSO_TENANT_ID}/v2.0`,
      audience: MAIL.clientId,
      algorithms: ['RS256'],
    })
    expect(protectedHeader.kid).toBe(emu.state.keys[0]!.kid)
    expect(id).toMatchObject({
      tid: CONTOSO_TENANT_ID,
      oid: CONTOSO_ADMIN.oid,
      preferred_username: CONTOSO_ADMIN.username,
      name: CONTOSO_ADMIN.displayName,
      nonce: 'nonce-42',
      ver: '2.0',
      wids: [GLOBAL_ADMINISTRATOR_ROLE],
    })
    expect(id.sub).toMatch(/^[\w-]{43}$/)
    expect(id.sub).not.toBe(CONTOSO_ADMIN.oid)
    expect(id.nbf).toBe(id.iat)
    expect(id.exp! - id.iat!).toBe(3600)

    const { payload: at } = await jwtVerify(t.access_token as string, jwks, { audience: GRAPH })
    expect(at).toMatchObject({
      iss: `${emu.url}/${CONTOSO_TENANT_ID}/v2.0`,
      tid: CONTOSO_TENANT_ID,
      oid: CONTOSO_ADMIN.oid,
      appid: MAIL.clientId,
      azp: MAIL.clientId,
      scp: 'Mail.Read',
    })
    expect(at.jti).toMatch(/^[0-9a-f-]{36}$/)
    expect(at.exp! - at.iat!).toBe(3600)
    expect(Math.abs(at.iat! - Date.now() / 1000)).toBeLessThan(5)
  })

  it('returns a refresh token only with offline_access and an ID token only with openid', async () => {
    const bare = await signedInTokens({ scope: `${GRAPH}/Mail.Read` })
    expect(bare.refresh_token).toBeUndefined()
    expect(bare.id_token).toBeUndefined()
    expect(bare.scope).toBe(`${GRAPH}/Mail.Read`)
    expect(decodeJwt(bare.access_token as string).scp).toBe('Mail.Read')

    const oidcOnly = await signedInTokens({ scope: 'openid' })
    expect(oidcOnly.refresh_token).toBeUndefined()
    expect(typeof oidcOnly.id_token).toBe('string')
    expect(decodeJwt(oidcOnly.access_token as string).aud).toBe(GRAPH)

    const offline = await signedInTokens({ scope: `offline_access ${GRAPH}/User.Read` })
    expect(typeof offline.refresh_token).toBe('string')
    expect(offline.id_token).toBeUndefined()
  })

  it('users without roles get no wids; sub is pairwise per client, oid is not', async () => {
    const mail = await signedInTokens({ username: CONTOSO_USER.username })
    const mailId = decodeJwt(mail.id_token as string)
    expect(mailId.wids).toBeUndefined()
    expect(mailId.oid).toBe(CONTOSO_USER.oid)
    const { code, verifier } = await obtainCode({ username: CONTOSO_USER.username, client: USER_APP })
    const other = await redeem(code, verifier, 'organizations', USER_APP)
    const otherId = decodeJwt(other.json.id_token as string)
    expect(otherId.aud).toBe(USER_APP.clientId)
    expect(otherId.oid).toBe(CONTOSO_USER.oid)
    expect(otherId.sub).not.toBe(mailId.sub)
  })

  it('remembers consent, asks again with prompt=consent or for new scopes', async () => {
    await obtainCode({ username: CONTOSO_USER.username })
    const signInThenPost = async (url: string) => {
      const form = formOf(await (await fetch(url)).text())
      return postForm(form.action, { flow: form.flow, username: CONTOSO_USER.username })
    }
    const silent = await signInThenPost(authorizeUrl())
    expect(silent.status).toBe(302)
    expect(new URL(silent.headers.get('location')!).searchParams.get('code')).toBeTruthy()

    const forced = await signInThenPost(authorizeUrl({ extra: { prompt: 'consent' } }))
    expect(forced.status).toBe(200)
    expect(await forced.text()).toContain('value="accept"')

    const more = await signInThenPost(
      authorizeUrl({ scope: `openid ${GRAPH}/Mail.Read ${GRAPH}/Calendars.Read` }),
    )
    expect(more.status).toBe(200)
    expect(await more.text()).toContain(`Calendars.Read on ${GRAPH}`)
  })

  it("skips user consent once the user's tenant gave admin consent", async () => {
    await adminConsent()
    const form = formOf(await (await fetch(authorizeUrl())).text())
    const res = await postForm(form.action, { flow: form.flow, username: CONTOSO_USER.username })
    expect(res.status).toBe(302)
    expect(new URL(res.headers.get('location')!).searchParams.get('code')).toBeTruthy()
  })

  it('a declined consent redirects access_denied AADSTS65004 with the state', async () => {
    const location = await completeAtEmulator(authorizeUrl(), {
      username: CONTOSO_USER.username,
      decision: 'deny',
    })
    expect(`${location.origin}${location.pathname}`).toBe(REDIRECT)
    expect(location.searchParams.get('error')).toBe('access_denied')
    expect(location.searchParams.get('error_description')).toBe(
      'AADSTS65004: User declined to consent to access the app.',
    )
    expect(location.searchParams.get('state')).toBe('st-123')
    expect(location.searchParams.get('code')).toBeNull()
  })

  it('redirects request errors to the client with error, AADSTS description and state', async () => {
    const cases: [Record<string, string>, string, number][] = [
      [{ prompt: 'none' }, 'login_required', 50058],
      [{ code_challenge: pkcePair().challenge, code_challenge_method: 'plain' }, 'invalid_request', 501491],
      [{ code_challenge: pkcePair().challenge }, 'invalid_request', 501491],
      [{ response_type: 'token' }, 'unsupported_response_type', 700051],
      [{ scope: '' }, 'invalid_request', 900144],
      [{ prompt: 'bogus' }, 'invalid_request', 90100],
    ]
    for (const [extra, error, code] of cases) {
      const res = await fetch(authorizeUrl({ extra }), { redirect: 'manual' })
      expect(res.status, JSON.stringify(extra)).toBe(302)
      const location = new URL(res.headers.get('location')!)
      expect(`${location.origin}${location.pathname}`).toBe(REDIRECT)
      expect(location.searchParams.get('error')).toBe(error)
      expect(location.searchParams.get('error_description')).toMatch(new RegExp(`^AADSTS${code}: `))
      expect(location.searchParams.get('state')).toBe('st-123')
    }
  })

  it('shows an error page, never a redirect, for unknown clients, redirect URIs or tenants', async () => {
    const cases: [string, string][] = [
      [authorizeUrl({ client: { clientId: '99999999-0000-0000-0000-000000000000' } }), 'AADSTS700016'],
      [authorizeUrl({ extra: { redirect_uri: 'https://evil.example/callback' } }), 'AADSTS50011'],
      [authorizeUrl({ extra: { redirect_uri: 'https://127.0.0.1:8765/cb' } }), 'AADSTS50011'],
      [authorizeUrl({ tenant: '00000000-1111-2222-3333-444444444444' }), 'AADSTS90002'],
    ]
    for (const [url, code] of cases) {
      const res = await fetch(url, { redirect: 'manual' })
      expect(res.status).toBe(400)
      expect(res.headers.get('location')).toBeNull()
      expect(await res.text()).toContain(code)
      await expect(completeAtEmulator(url, { username: CONTOSO_ADMIN.username })).rejects.toThrow(code)
    }
    for (const redirect of ['http://localhost:1234/x', 'http://[::1]:9/cb', 'http://127.0.0.1:65000/a/b']) {
      const res = await fetch(authorizeUrl({ extra: { redirect_uri: redirect } }), { redirect: 'manual' })
      expect(res.status, redirect).toBe(200)
    }
  })

  it('accepts explicitly registered redirect URIs given to buildEmulator', async () => {
    const other = await startEmulator({ redirectUris: ['http://broker:3000/callback'] })
    try {
      const url = authorizeUrl()
        .replace(emu.url, other.url)
        .replace(encodeURIComponent(REDIRECT), encodeURIComponent('http://broker:3000/callback'))
      const location = await completeAtEmulator(url, { username: FABRIKAM_USER.username })
      expect(`${location.origin}${location.pathname}`).toBe('http://broker:3000/callback')
      expect(location.searchParams.get('code')).toBeTruthy()
    } finally {
      await other.close()
    }
  })

  it('prefills login_hint, shows domain_hint, escapes HTML, re-renders on unknown usernames', async () => {
    const hint = '"><script>alert(1)</script>'
    const res = await fetch(authorizeUrl({ extra: { login_hint: hint, domain_hint: 'contoso.example' } }))
    const html = await res.text()
    expect(html).not.toContain('<script>')
    expect(html).toContain('value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"')
    expect(html).toContain('Domain hint: <code>contoso.example</code>')

    const hinted = await (await fetch(authorizeUrl({ extra: { login_hint: CONTOSO_USER.username } }))).text()
    expect(hinted).toContain(`name="username" value="${CONTOSO_USER.username}"`)

    const form = formOf(html)
    const again = await postForm(form.action, { flow: form.flow, username: 'nobody@contoso.example' })
    expect(again.status).toBe(200)
    const againHtml = await again.text()
    expect(againHtml).toContain('id="error"')
    expect(againHtml).toContain('AADSTS50034')
    expect(againHtml).toContain('name="username"')
    expect(formOf(againHtml).flow).toBe(form.flow)
    await expect(completeAtEmulator(authorizeUrl(), { username: 'nobody@contoso.example' })).rejects.toThrow(
      /rejected username 'nobody@contoso\.example'.*AADSTS50034/,
    )

    const expired = await postForm(form.action, { flow: 'no-such-flow', username: CONTOSO_USER.username })
    expect(expired.status).toBe(400)
    expect(await expired.text()).toContain('AADSTS50089')
  })

  it('refuses a user of another tenant at a tenant-specific path with AADSTS50020', async () => {
    const location = await completeAtEmulator(authorizeUrl({ tenant: CONTOSO_TENANT_ID }), {
      username: FABRIKAM_USER.username,
    })
    expect(location.searchParams.get('error')).toBe('access_denied')
    expect(location.searchParams.get('error_description')).toMatch(/^AADSTS50020: /)
    expect(location.searchParams.get('state')).toBe('st-123')
    // The same user is fine at its own tenant.
    const ok = await completeAtEmulator(authorizeUrl({ tenant: FABRIKAM_TENANT_ID }), {
      username: FABRIKAM_USER.username,
    })
    expect(ok.searchParams.get('code')).toBeTruthy()
  })

  it('answers response_mode=form_post with an auto-posting form', async () => {
    const url = authorizeUrl({ extra: { response_mode: 'form_post' } })
    const form = formOf(await (await fetch(url)).text())
    const consent = formOf(
      await (await postForm(form.action, { flow: form.flow, username: CONTOSO_ADMIN.username })).text(),
    )
    const res = await postForm(consent.action, { flow: consent.flow, decision: 'accept' })
    expect(res.status).toBe(200)
    const html = await res.text()
    expect(html).toContain(`<form method="post" name="hiddenform" action="${REDIRECT}">`)
    const code = /<input type="hidden" name="code" value="([^"]+)">/.exec(html)?.[1]
    expect(code).toBeTruthy()
    expect(html).toContain('<input type="hidden" name="state" value="st-123">')

    const viaDriver = await completeAtEmulator(url, { username: CONTOSO_ADMIN.username })
    expect(`${viaDriver.origin}${viaDriver.pathname}`).toBe(REDIRECT)
    expect(viaDriver.searchParams.get('state')).toBe('st-123')
    const redeemed = await token('organizations', {
      grant_type: 'authorization_code',
      code: viaDriver.searchParams.get('code')!,
      redirect_uri: REDIRECT,
    })
    expect(redeemed.status, redeemed.text).toBe(200)
  })

  it('codes are single use (AADSTS54005)', async () => {
    const { code, verifier } = await obtainCode()
    expect((await redeem(code, verifier)).status).toBe(200)
    expectEntraError(await redeem(code, verifier), 400, 'invalid_grant', 54005)
  })

  it('codes must be redeemed at the authority path they were issued for (AADSTS700005)', async () => {
    const { code, verifier } = await obtainCode({ tenant: 'organizations' })
    expectEntraError(await redeem(code, verifier, CONTOSO_TENANT_ID), 400, 'invalid_grant', 700005)
    expectEntraError(await redeem(code, verifier, 'common'), 400, 'invalid_grant', 700005)
    expect((await redeem(code, verifier, 'organizations')).status).toBe(200)

    const tenantCode = await obtainCode({ tenant: CONTOSO_TENANT_ID })
    expectEntraError(
      await redeem(tenantCode.code, tenantCode.verifier, 'organizations'),
      400,
      'invalid_grant',
      700005,
    )
    expect((await redeem(tenantCode.code, tenantCode.verifier, CONTOSO_TENANT_ID)).status).toBe(200)
  })

  it('checks redirect_uri, the PKCE verifier, the client and the 10-minute lifetime', async () => {
    const { code, verifier } = await obtainCode()
    const wrongRedirect = await token('organizations', {
      grant_type: 'authorization_code',
      code,
      redirect_uri: 'http://127.0.0.1:8765/other',
      code_verifier: verifier,
    })
    expectEntraError(wrongRedirect, 400, 'invalid_grant', 500112)
    expectEntraError(await redeem(code, pkcePair().verifier), 400, 'invalid_grant', 501481)
    const noVerifier = await token('organizations', {
      grant_type: 'authorization_code',
      code,
      redirect_uri: REDIRECT,
    })
    expectEntraError(noVerifier, 400, 'invalid_grant', 501481)
    expectEntraError(await redeem(code, verifier, 'organizations', USER_APP), 400, 'invalid_grant', 70000)
    expectEntraError(await redeem('not-a-code', verifier), 400, 'invalid_grant', 9002313)

    const expiring = await obtainCode()
    expect((await hook('POST', 'clock', { advanceSec: 601 })).status).toBe(200)
    expectEntraError(await redeem(expiring.code, expiring.verifier), 400, 'invalid_grant', 70008)
  })

  it('authenticates clients by client_secret_post or client_secret_basic', async () => {
    const { code, verifier } = await obtainCode()
    const fields = { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier }
    const wrong = await token('organizations', fields, { clientId: MAIL.clientId, clientSecret: 'nope' })
    expectEntraError(wrong, 401, 'invalid_client', 7000215)
    const unknown = await token('organizations', fields, {
      clientId: '99999999-0000-0000-0000-000000000000',
      clientSecret: 'x',
    })
    expectEntraError(unknown, 400, 'unauthorized_client', 700016)
    const noSecret = await token('organizations', { ...fields, client_id: MAIL.clientId }, null)
    expectEntraError(noSecret, 401, 'invalid_client', 7000218)
    const basic = await token('organizations', fields, MAIL, 'basic')
    expect(basic.status, basic.text).toBe(200)
    expect(basic.json.token_type).toBe('Bearer')
  })
})

describe('refresh tokens', () => {
  it('rotate on every refresh while the old refresh token keeps working', async () => {
    const first = await signedInTokens()
    const rt1 = first.refresh_token as string
    const refresh = (rt: string, scope?: string) =>
      token('organizations', { grant_type: 'refresh_token', refresh_token: rt, scope })
    const second = await refresh(rt1)
    expect(second.status, second.text).toBe(200)
    const rt2 = second.json.refresh_token as string
    expect(rt2).toMatch(/^1\./)
    expect(rt2).not.toBe(rt1)
    const again = await refresh(rt1)
    expect(again.status, again.text).toBe(200)
    const third = await refresh(rt2)
    expect(third.status).toBe(200)
    const tokens = [first, second.json, again.json, third.json].map((t) => t.access_token as string)
    expect(new Set(tokens).size).toBe(4)
    expect(new Set(tokens.map((t) => decodeJwt(t).jti)).size).toBe(4)
    expect(second.json.scope).toBe(`${GRAPH}/Mail.Read openid profile offline_access`)
    const id = decodeJwt(second.json.id_token as string)
    expect(id.oid).toBe(CONTOSO_ADMIN.oid)
    expect(id.nonce).toBeUndefined()
  })

  it('grants any requested scope, one resource per request, at its own tenant', async () => {
    const rt = (await signedInTokens()).refresh_token as string
    const la = await token(CONTOSO_TENANT_ID, {
      grant_type: 'refresh_token',
      refresh_token: rt,
      scope: 'https://api.loganalytics.io/Data.Read offline_access',
    })
    expect(la.status, la.text).toBe(200)
    const at = decodeJwt(la.json.access_token as string)
    expect(at.aud).toBe('https://api.loganalytics.io')
    expect(at.scp).toBe('Data.Read')
    expect(la.json.id_token).toBeUndefined()

    const two = await token('organizations', {
      grant_type: 'refresh_token',
      refresh_token: rt,
      scope: `${GRAPH}/Mail.Read https://api.loganalytics.io/Data.Read`,
    })
    expectEntraError(two, 400, 'invalid_scope', 28000)
    const elsewhere = await token(FABRIKAM_TENANT_ID, { grant_type: 'refresh_token', refresh_token: rt })
    expectEntraError(elsewhere, 400, 'invalid_grant', 700005)
    const otherClient = await token(
      'organizations',
      { grant_type: 'refresh_token', refresh_token: rt },
      USER_APP,
    )
    expectEntraError(otherClient, 400, 'invalid_grant', 70000)
  })
})

describe('admin consent', () => {
  it('an administrator consents for the tenant: admin_consent=True, tenant, scope, state', async () => {
    const res = await fetch(adminConsentUrl('organizations'))
    const form = formOf(await res.text())
    const page = await postForm(form.action, { flow: form.flow, username: CONTOSO_ADMIN.username })
    const html = await page.text()
    expect(html).toContain('on behalf of your entire organization')
    expect(html).toContain('Mail.Send on https://graph.microsoft.com (application permission)')
    const consent = formOf(html)
    const back = await postForm(consent.action, { flow: consent.flow, decision: 'accept' })
    expect(back.status).toBe(302)
    const location = new URL(back.headers.get('location')!)
    expect(`${location.origin}${location.pathname}`).toBe(REDIRECT)
    expect(Object.fromEntries(location.searchParams)).toEqual({
      admin_consent: 'True',
      tenant: CONTOSO_TENANT_ID,
      scope: `${GRAPH}/.default`,
      state: 'admin-state',
    })
    const consents = await hook('GET', 'consents')
    expect(consents.json.admin_consents).toEqual([
      { tenant: CONTOSO_TENANT_ID, client_id: MAIL.clientId, scope: `${GRAPH}/.default` },
    ])
  })

  it('refuses a non-administrator with AADSTS90094 and still admin_consent=True', async () => {
    const location = await completeAtEmulator(adminConsentUrl(CONTOSO_TENANT_ID), {
      username: CONTOSO_USER.username,
    })
    expect(location.searchParams.get('admin_consent')).toBe('True')
    expect(location.searchParams.get('error')).toBe('access_denied')
    expect(location.searchParams.get('error_description')).toMatch(/^AADSTS90094: /)
    expect(location.searchParams.get('state')).toBe('admin-state')
    expect(location.searchParams.get('tenant')).toBeNull()
    expectEntraError(await clientCredentials(CONTOSO_TENANT_ID), 400, 'unauthorized_client', 700016)
  })

  it('a declined admin consent is AADSTS65004 with admin_consent=True', async () => {
    const location = await completeAtEmulator(adminConsentUrl(FABRIKAM_TENANT_ID), {
      username: FABRIKAM_ADMIN.username,
      decision: 'deny',
    })
    expect(Object.fromEntries(location.searchParams)).toEqual({
      admin_consent: 'True',
      error: 'access_denied',
      error_description: 'AADSTS65004: User declined to consent to access the app.',
      state: 'admin-state',
    })
  })

  it('prompt=admin_consent on /authorize grants for the tenant and returns a code', async () => {
    const url = authorizeUrl({ tenant: FABRIKAM_TENANT_ID, extra: { prompt: 'admin_consent' } })
    const refused = await completeAtEmulator(url, { username: FABRIKAM_USER.username })
    expect(refused.searchParams.get('error')).toBe('access_denied')
    expect(refused.searchParams.get('error_description')).toMatch(/^AADSTS90094: /)
    expect(refused.searchParams.get('admin_consent')).toBeNull()

    const form = formOf(await (await fetch(url)).text())
    const page = await postForm(form.action, { flow: form.flow, username: FABRIKAM_ADMIN.username })
    const html = await page.text()
    expect(html).toContain('on behalf of your entire organization')
    const consent = formOf(html)
    const back = await postForm(consent.action, { flow: consent.flow, decision: 'accept' })
    expect(new URL(back.headers.get('location')!).searchParams.get('code')).toBeTruthy()
    expect((await clientCredentials(FABRIKAM_TENANT_ID)).status).toBe(200)
  })

  it('refuses /common, a missing scope and an administrator of another tenant', async () => {
    const common = new URL(
      (await fetch(adminConsentUrl('common'), { redirect: 'manual' })).headers.get('location')!,
    )
    expect(common.searchParams.get('admin_consent')).toBe('True')
    expect(common.searchParams.get('error')).toBe('invalid_request')
    expect(common.searchParams.get('state')).toBe('admin-state')

    const noScope = new URL(
      (await fetch(adminConsentUrl('organizations', { scope: '' }), { redirect: 'manual' })).headers.get(
        'location',
      )!,
    )
    expect(noScope.searchParams.get('error')).toBe('invalid_request')
    expect(noScope.searchParams.get('error_description')).toMatch(/^AADSTS900144: .*'scope'/)
    expect(noScope.searchParams.get('admin_consent')).toBe('True')

    const foreign = await completeAtEmulator(adminConsentUrl(CONTOSO_TENANT_ID), {
      username: FABRIKAM_ADMIN.username,
    })
    expect(foreign.searchParams.get('error_description')).toMatch(/^AADSTS50020: /)
    expect(foreign.searchParams.get('admin_consent')).toBe('True')
  })
})

describe('client credentials', () => {
  it('works only for a tenant that admin-consented, without refresh token', async () => {
    expectEntraError(await clientCredentials(CONTOSO_TENANT_ID), 400, 'unauthorized_client', 700016)
    // A user's own consent does not install the app for client credentials here.
    await signedInTokens({ username: CONTOSO_USER.username })
    expectEntraError(await clientCredentials(CONTOSO_TENANT_ID), 400, 'unauthorized_client', 700016)

    const location = await adminConsent()
    expect(location.searchParams.get('tenant')).toBe(CONTOSO_TENANT_ID)
    const res = await clientCredentials(CONTOSO_TENANT_ID)
    expect(res.status, res.text).toBe(200)
    expect(Object.keys(res.json).sort()).toEqual([
      'access_token',
      'expires_in',
      'ext_expires_in',
      'token_type',
    ])
    expect(res.json.token_type).toBe('Bearer')
    expect(res.json.expires_in).toBe(3600)
    const jwks = createRemoteJWKSet(new URL(`${emu.url}/${CONTOSO_TENANT_ID}/discovery/v2.0/keys`))
    const { payload } = await jwtVerify(res.json.access_token as string, jwks, {
      issuer: `${emu.url}/${CONTOSO_TENANT_ID}/v2.0`,
      audience: GRAPH,
    })
    expect(payload).toMatchObject({
      tid: CONTOSO_TENANT_ID,
      appid: MAIL.clientId,
      idtyp: 'app',
      roles: ['Mail.ReadWrite', 'Mail.Send', 'User.Read.All'],
    })
    expect(payload.scp).toBeUndefined()

    // The same call through the tenant's domain, and a second token that differs.
    const again = await clientCredentials('contoso.example')
    expect(again.status).toBe(200)
    expect(again.json.access_token).not.toBe(res.json.access_token)
    // Fabrikam did not consent.
    expectEntraError(await clientCredentials(FABRIKAM_TENANT_ID), 400, 'unauthorized_client', 700016)
  })

  it('roles: a .default consent grants every configured application permission, explicit scopes only theirs', async () => {
    const defender = findDemoClient('ms-defender-atp')
    const seeded = await hook('POST', `tenants/${FABRIKAM_TENANT_ID}/admin-consent`, {
      clientId: defender.clientId,
    })
    expect(seeded.json.scope).toBe('https://graph.microsoft.com/.default')
    const atp = 'https://securitycenter.onmicrosoft.com/windowsatpservice'
    const res = await token(
      FABRIKAM_TENANT_ID,
      { grant_type: 'client_credentials', scope: `${atp}/.default` },
      defender,
    )
    expect(res.status, res.text).toBe(200)
    const at = decodeJwt(res.json.access_token as string)
    expect(at.aud).toBe(atp)
    expect(at.roles).toEqual(['Alert.ReadWrite.All', 'Machine.Isolate'])

    await hook('POST', `tenants/${CONTOSO_TENANT_ID}/admin-consent`, {
      clientId: MAIL.clientId,
      scope: `${GRAPH}/Mail.Send`,
    })
    const mail = await clientCredentials(CONTOSO_TENANT_ID)
    expect(decodeJwt(mail.json.access_token as string).roles).toEqual(['Mail.Send'])
  })

  it('needs a tenant-specific path and one <resource>/.default scope', async () => {
    await adminConsent()
    expectEntraError(await clientCredentials('organizations'), 400, 'invalid_request', 50059)
    expectEntraError(
      await clientCredentials(CONTOSO_TENANT_ID, `${GRAPH}/Mail.Read`),
      400,
      'invalid_scope',
      1002012,
    )
    expectEntraError(await clientCredentials(CONTOSO_TENANT_ID, 'openid'), 400, 'invalid_scope', 1002012)
    expectEntraError(
      await clientCredentials(CONTOSO_TENANT_ID, `${GRAPH}/.default https://api.loganalytics.io/.default`),
      400,
      'invalid_scope',
      70011,
    )
    const noScope = await token(CONTOSO_TENANT_ID, { grant_type: 'client_credentials' })
    expectEntraError(noScope, 400, 'invalid_request', 900144)
    const badGrant = await token(CONTOSO_TENANT_ID, { grant_type: 'password' })
    expectEntraError(badGrant, 400, 'unsupported_grant_type', 70003)
  })
})

describe('test hooks', () => {
  it("revoke removes a tenant's grants, refresh tokens and admin consent", async () => {
    const contoso = (await signedInTokens()).refresh_token as string
    const fabrikam = (await signedInTokens({ username: FABRIKAM_ADMIN.username })).refresh_token as string
    await adminConsent()
    expect((await clientCredentials(CONTOSO_TENANT_ID)).status).toBe(200)

    const revoked = await hook('POST', `tenants/${CONTOSO_TENANT_ID}/revoke`)
    expect(revoked.status).toBe(200)

    const refresh = (rt: string) => token('organizations', { grant_type: 'refresh_token', refresh_token: rt })
    expectEntraError(await refresh(contoso), 400, 'invalid_grant', 50173)
    expectEntraError(await clientCredentials(CONTOSO_TENANT_ID), 400, 'unauthorized_client', 700016)
    expect((await refresh(fabrikam)).status).toBe(200)
    // Consent is asked again.
    const form = formOf(await (await fetch(authorizeUrl())).text())
    const page = await postForm(form.action, { flow: form.flow, username: CONTOSO_ADMIN.username })
    expect(page.status).toBe(200)
    expect(await page.text()).toContain('value="accept"')

    expect((await hook('POST', 'tenants/00000000-1111-2222-3333-444444444444/revoke')).status).toBe(404)
  })

  it('a delay fault slows the next token requests, which then answer normally', async () => {
    await adminConsent()
    // A delay far above what an undelayed request takes on a busy machine, so "slowed" and "answers
    // normally" can't be confused by late timers (10 ms off for Date.now()'s granularity).
    expect((await hook('POST', 'faults', { count: 1, delayMs: 2000 })).status).toBe(200)
    const started = Date.now()
    const slow = await clientCredentials(CONTOSO_TENANT_ID)
    expect(Date.now() - started).toBeGreaterThanOrEqual(1990)
    expect(slow.status).toBe(200)
    const started2 = Date.now()
    expect((await clientCredentials(CONTOSO_TENANT_ID)).status).toBe(200)
    expect(Date.now() - started2).toBeLessThan(1000)
  })

  it('a 429 fault answers with Retry-After, then requests succeed again', async () => {
    await adminConsent()
    await hook('POST', 'faults', { count: 1, status: 429, retryAfter: 7 })
    const throttled = await clientCredentials(CONTOSO_TENANT_ID)
    expect(throttled.status).toBe(429)
    expect(throttled.headers.get('retry-after')).toBe('7')
    expect(throttled.json.error).toBe('temporarily_unavailable')
    expect(throttled.json.error_codes).toEqual([50196])
    expect((await clientCredentials(CONTOSO_TENANT_ID)).status).toBe(200)
  })

  it('a 503 fault with count 2 fails exactly two requests', async () => {
    await adminConsent()
    await hook('POST', 'faults', { count: 2, status: 503 })
    const statuses = []
    for (let i = 0; i < 3; i++) statuses.push((await clientCredentials(CONTOSO_TENANT_ID)).status)
    expect(statuses).toEqual([503, 503, 200])
  })

  it('an error fault answers with the given OAuth error and AADSTS code', async () => {
    const rt = (await signedInTokens()).refresh_token as string
    await hook('POST', 'faults', { count: 1, error: 'invalid_grant', errorCode: 70008, status: 400 })
    const res = await token('organizations', { grant_type: 'refresh_token', refresh_token: rt })
    expectEntraError(res, 400, 'invalid_grant', 70008)
    expect(res.json.error_description).toMatch(/\r\nTrace ID: /)
    expect((await token('organizations', { grant_type: 'refresh_token', refresh_token: rt })).status).toBe(
      200,
    )
  })

  it('faults can target a grant type or a tenant', async () => {
    const rt = (await signedInTokens()).refresh_token as string
    await adminConsent()
    await adminConsent(FABRIKAM_TENANT_ID, FABRIKAM_ADMIN.username)
    await hook('POST', 'faults', { count: 1, status: 503, grantType: 'client_credentials' })
    await hook('POST', 'faults', { count: 1, status: 500, tenant: FABRIKAM_TENANT_ID })
    expect((await token('organizations', { grant_type: 'refresh_token', refresh_token: rt })).status).toBe(
      200,
    )
    expect((await clientCredentials(FABRIKAM_TENANT_ID)).status).toBe(503)
    const serverError = await clientCredentials(FABRIKAM_TENANT_ID)
    expect(serverError.status).toBe(500)
    expect(serverError.json.error).toBe('server_error')
    expect((await clientCredentials(CONTOSO_TENANT_ID)).status).toBe(200)
    expect((await clientCredentials(FABRIKAM_TENANT_ID)).status).toBe(200)
  })

  it('faults can answer a raw body or drop the connection; DELETE clears them', async () => {
    await adminConsent()
    await hook('POST', 'faults', { count: 1, status: 502, body: '<html>Bad gateway</html>' })
    const gateway = await clientCredentials(CONTOSO_TENANT_ID)
    expect(gateway.status).toBe(502)
    expect(gateway.text).toBe('<html>Bad gateway</html>')

    await hook('POST', 'faults', { count: 1, reset: true })
    await expect(clientCredentials(CONTOSO_TENANT_ID)).rejects.toThrow()

    await hook('POST', 'faults', { count: 5, status: 503 })
    expect((await hook('GET', 'faults')).json.faults).toHaveLength(1)
    expect((await hook('DELETE', 'faults')).status).toBe(200)
    expect((await clientCredentials(CONTOSO_TENANT_ID)).status).toBe(200)

    expect((await hook('POST', 'faults', { count: 1 })).status).toBe(400)
    expect((await hook('POST', 'faults', { count: 0, status: 500 })).status).toBe(400)
    expect((await hook('POST', 'faults', { stauts: 500 })).status).toBe(400)
  })

  it('accessTokenLifetimeSec changes the lifetime of tokens issued from then on', async () => {
    await adminConsent()
    const set = await hook('POST', 'faults', { accessTokenLifetimeSec: 120 })
    expect(set.json).toEqual({ faults: [], accessTokenLifetimeSec: 120 })
    const res = await clientCredentials(CONTOSO_TENANT_ID)
    expect(res.json.expires_in).toBe(120)
    const at = decodeJwt(res.json.access_token as string)
    expect(at.exp! - at.iat!).toBe(120)
    const user = await signedInTokens()
    expect(user.expires_in).toBe(120)
  })

  it('stats count every token request by grant type, tenant path and client, faulted ones included', async () => {
    const rt = (await signedInTokens()).refresh_token as string
    await adminConsent()
    await hook('POST', 'faults', { count: 1, status: 429, retryAfter: 1 })
    await clientCredentials(CONTOSO_TENANT_ID)
    await clientCredentials(CONTOSO_TENANT_ID)
    await clientCredentials(FABRIKAM_TENANT_ID)
    await token('organizations', { grant_type: 'refresh_token', refresh_token: rt })
    const stats = await hook('GET', 'stats')
    expect(stats.json).toEqual({
      token_requests: { authorization_code: 1, refresh_token: 1, client_credentials: 3 },
      by_tenant: {
        organizations: { authorization_code: 1, refresh_token: 1 },
        [CONTOSO_TENANT_ID]: { client_credentials: 2 },
        [FABRIKAM_TENANT_ID]: { client_credentials: 1 },
      },
      by_client: {
        [MAIL.clientId.toLowerCase()]: { authorization_code: 1, refresh_token: 1, client_credentials: 3 },
      },
      // Every request but the faulted one authenticated its client (before any grant check).
      client_auth: { client_secret: 4, private_key_jwt: 0, federated: 0 },
    })
  })

  it('reset returns to the fixed demo data', async () => {
    const rt = (await signedInTokens()).refresh_token as string
    await adminConsent()
    await hook('POST', 'faults', { count: 3, status: 503, accessTokenLifetimeSec: 60 })
    await hook('POST', 'clock', { advanceSec: 30 })
    await hook('POST', 'keys/rotate')

    expect((await hook('POST', 'reset')).json).toEqual({ ok: true })
    expect((await hook('GET', 'stats')).json).toEqual({
      token_requests: { authorization_code: 0, refresh_token: 0, client_credentials: 0 },
      by_tenant: {},
      by_client: {},
      client_auth: { client_secret: 0, private_key_jwt: 0, federated: 0 },
    })
    expect((await hook('GET', 'faults')).json).toEqual({ faults: [], accessTokenLifetimeSec: 3600 })
    expect((await hook('GET', 'consents')).json).toEqual({ admin_consents: [], user_grants: [] })
    expect(emu.state.keys).toHaveLength(1)
    expectEntraError(await clientCredentials(CONTOSO_TENANT_ID), 400, 'unauthorized_client', 700016)
    const refresh = await token('organizations', { grant_type: 'refresh_token', refresh_token: rt })
    expectEntraError(refresh, 400, 'invalid_grant', 9002313)
    const fresh = await signedInTokens()
    expect(fresh.expires_in).toBe(3600)
  })

  it('key rotation publishes the new key next to the old one and signs with it', async () => {
    const before = await signedInTokens()
    const rotated = await hook('POST', 'keys/rotate')
    const kids = rotated.json.kids as string[]
    expect(kids).toHaveLength(2)
    const after = await signedInTokens()
    expect(decodeProtectedHeader(after.id_token as string).kid).toBe(rotated.json.kid)
    const jwks = createRemoteJWKSet(new URL(`${emu.url}/organizations/discovery/v2.0/keys`))
    for (const t of [before, after]) {
      const { payload } = await jwtVerify(t.id_token as string, jwks, { audience: MAIL.clientId })
      expect(payload.tid).toBe(CONTOSO_TENANT_ID)
    }
  })
})
