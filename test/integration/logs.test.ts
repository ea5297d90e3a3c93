// Logs of a real flow carry no secret. The broker logs at `trace` (everything it would ever log)
// into memory through the production logger (createLogger), while the test drives admin and delegated
// consents, token requests, rejections, an upstream failure, a denied consent, operator calls and
// probes with secret-looking query strings. Every secret seen on the way (the Key, authorization
// codes, access and refresh tokens, cookies, `encrypted_token`s, client secrets, master key,
// cookie secret, operator token) is then searched for in every log line.
import { randomBytes } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import type { LightMyRequestResponse } from 'fastify'
import { beforeAll, describe, expect, it } from 'vitest'
import { findDemoClient } from '../../emulator/demo-data.js'
import type { IdentityProvider } from '../../src/entra/types.js'
import {
  browse,
  type ConsentValues,
  CookieJar,
  pageTitle,
  parseConsentValues,
  pathOf,
} from '../support/broker.js'
import { DEMO_CLIENT_SECRET_ENV, randomMasterKeys } from '../support/config.js'
import { completeAtEmulator } from '../support/emulator-driver.js'
import { memoryLogger } from '../support/log-capture.js'
import { useBrokerOnRedis } from '../support/use-broker.js'
import { XsoarClient } from '../support/xsoar-client.js'

const lines: string[] = []
const secrets = new Map<string, string>()
const remember = (what: string, value: string | undefined) => {
  // Short values could match by chance (and aren't secrets worth the name).
  if (value !== undefined && value.length >= 8) secrets.set(value, what)
}

const OPERATOR_TOKEN = `ops-${randomBytes(16).toString('hex')}`
const MASTER_KEYS = randomMasterKeys()
const COOKIE_SECRET = randomBytes(32).toString('hex')

const { emulator, broker } = useBrokerOnRedis({
  logger: memoryLogger('trace', lines).logger,
  decorateIdp: spyingIdp,
  env: {
    LOG_LEVEL: 'trace',
    OPERATOR_TOKENS: `ops:${OPERATOR_TOKEN}`,
    MASTER_KEYS,
    COOKIE_SECRET,
  },
})
let baseUrl: string

/** Records what the identity provider hands the broker: tokens the logs must never show. */
function spyingIdp(idp: IdentityProvider): IdentityProvider {
  return {
    signInUrl: (app, request) => idp.signInUrl(app, request),
    adminConsentUrl: (app, request) => idp.adminConsentUrl(app, request),
    async redeemCode(app, redemption) {
      remember('authorization code', redemption.code)
      remember('PKCE code verifier', redemption.codeVerifier)
      const redeemed = await idp.redeemCode(app, redemption)
      remember('refresh token (redeemed)', redeemed.refreshToken)
      return redeemed
    },
    async clientCredentials(app, tenantId, scope, signal) {
      const grant = await idp.clientCredentials(app, tenantId, scope, signal)
      remember('access token (client credentials)', grant.accessToken)
      return grant
    },
    async startDeviceAuthorization(app, tenantId, scopes) {
      const started = await idp.startDeviceAuthorization(app, tenantId, scopes)
      remember('device code', started.deviceCode)
      return started
    },
    async pollDeviceAuthorization(app, tenantId, deviceCode) {
      const polled = await idp.pollDeviceAuthorization(app, tenantId, deviceCode)
      if (polled.status === 'granted') remember('refresh token (device code)', polled.tokens.refreshToken)
      return polled
    },
    async refresh(app, tenantId, refreshToken, scope, signal) {
      remember('refresh token (sent)', refreshToken)
      const grant = await idp.refresh(app, tenantId, refreshToken, scope, signal)
      remember('access token (refresh)', grant.accessToken)
      remember('refresh token (rotated)', grant.refreshToken)
      return grant
    },
  }
}

/** browse(), remembering every cookie the broker sets. */
async function browseRecording(
  jar: CookieJar,
  request: Parameters<typeof browse>[2],
): Promise<LightMyRequestResponse> {
  const response = await browse(broker.app, jar, request)
  const header = response.headers['set-cookie']
  for (const line of header === undefined ? [] : Array.isArray(header) ? header : [String(header)]) {
    const pair = line.split(';')[0]!
    remember('cookie value', decodeURIComponent(pair.slice(pair.indexOf('=') + 1)))
    remember('cookie value (raw)', pair.slice(pair.indexOf('=') + 1))
  }
  return response
}

async function consent(slug: string, username: string, decision: 'accept' | 'deny' = 'accept') {
  const jar = new CookieJar()
  const page = await browseRecording(jar, { url: `/${slug}` })
  const csrf = /name="csrf" value="([^"]+)"/.exec(page.body)![1]!
  remember('start form csrf', csrf)
  const start = await browseRecording(jar, { method: 'POST', url: `/${slug}/start`, form: { csrf } })
  expect(start.statusCode, pageTitle(start.body)).toBe(303)
  let atMicrosoft = String(start.headers.location)
  for (let step = 0; step < 3; step++) {
    const back = await completeAtEmulator(atMicrosoft, { username, decision })
    for (const name of ['code', 'state', 'session_state', 'client_info']) {
      remember(`callback ${name}`, back.searchParams.get(name) ?? undefined)
    }
    const answer = await browseRecording(jar, { url: pathOf(back) })
    const location = answer.headers.location
    if (answer.statusCode === 303 && location === '/result') {
      const result = await browseRecording(jar, { url: '/result' })
      return parseConsentValues(result.body)
    }
    if (answer.statusCode !== 303 || typeof location !== 'string') return undefined
    atMicrosoft = location
  }
  return undefined
}

async function tokens(values: ConsentValues, appName: string, count: number) {
  const client = new XsoarClient({ ...values, appName, urlOverride: `${baseUrl}/obtain-token` })
  const answers = []
  for (let i = 0; i < count; i++) {
    const body = client.body()
    remember('encrypted_token', (JSON.parse(body) as { encrypted_token: string }).encrypted_token)
    const answer = await client.post(body, { 'x-request-id': `logs-token-${appName}-${i}` })
    if (answer.ok) client.refreshToken = answer.refreshToken
    remember('access token (answer)', answer.accessToken)
    answers.push(answer)
  }
  return answers
}

beforeAll(async () => {
  await broker.app.listen({ host: '127.0.0.1', port: 0 })
  baseUrl = `http://127.0.0.1:${(broker.app.server.address() as AddressInfo).port}`
  remember('operator token', OPERATOR_TOKEN)
  remember('master key', MASTER_KEYS.slice(MASTER_KEYS.indexOf(':') + 1))
  remember('cookie secret', COOKIE_SECRET)
  for (const [name, value] of Object.entries(DEMO_CLIENT_SECRET_ENV)) remember(`client secret ${name}`, value)
})

describe('logs of a full consent and token flow', () => {
  it('drive: admin and delegated consents, tokens, failures, operator calls', async () => {
    const admin = await consent('ms-graph-mail', 'admin@contoso.example')
    expect(admin?.key).toMatch(/^[A-Za-z0-9+/]{43}=$/)
    remember('registration Key', admin!.key)
    expect((await tokens(admin!, 'ms-graph-mail', 3)).every((a) => a.status === 200)).toBe(true)

    const delegated = await consent('ms-graph-mail-listener', 'user@contoso.example')
    expect(delegated?.key).toMatch(/^[A-Za-z0-9+/]{43}=$/)
    remember('registration Key', delegated!.key)
    const delegatedAnswers = await tokens(delegated!, 'ms-graph-mail-listener', 2)
    expect(delegatedAnswers.map((a) => a.status)).toEqual([200, 200])

    // A wrong Key, an unknown registration, a replayed encrypted_token.
    const wrong = new XsoarClient({
      ...admin!,
      key: randomBytes(32).toString('base64'),
      appName: 'ms-graph-mail',
      urlOverride: `${baseUrl}/obtain-token`,
    })
    const wrongBody = wrong.body()
    remember('encrypted_token', (JSON.parse(wrongBody) as { encrypted_token: string }).encrypted_token)
    expect((await wrong.post(wrongBody)).status).toBe(401)
    const replayClient = new XsoarClient({
      ...admin!,
      appName: 'ms-graph-mail',
      urlOverride: `${baseUrl}/obtain-token`,
    })
    const replayBody = replayClient.body({ scope: 'https://graph.microsoft.com/.default' })
    remember('encrypted_token', (JSON.parse(replayBody) as { encrypted_token: string }).encrypted_token)
    await replayClient.post(replayBody)
    expect((await replayClient.post(replayBody)).status).toBe(401)

    // An upstream failure with a description, for a fresh registration (no cached token).
    const second = await consent('ms-graph-user', 'admin@fabrikam.example')
    remember('registration Key', second!.key)
    await fetch(`${emulator.url}/_emulator/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        grantType: 'client_credentials',
        clientId: findDemoClient('ms-graph-user').clientId,
        status: 400,
        error: 'invalid_client',
        errorCode: 7000222,
        errorDescription: 'AADSTS7000222: The provided client secret keys are expired.',
        count: 1,
      }),
    })
    expect((await tokens(second!, 'ms-graph-user', 1))[0]!.status).toBeGreaterThanOrEqual(400)

    // A denied consent, a forged callback, secret-looking query strings anywhere.
    expect(await consent('ms-graph-mail-listener', 'user@fabrikam.example', 'deny')).toBeUndefined()
    const forged = `forged-code-${randomBytes(12).toString('hex')}`
    remember('forged code', forged)
    await browseRecording(new CookieJar(), { url: `/callback?code=${forged}&state=${forged}` })
    await broker.app.inject({ method: 'GET', url: `/no-such-page?code=${forged}&access_token=${forged}` })
    // Parameters nobody thought of, on every kind of route: pages, the API, the token endpoint.
    const stranger = `stranger-${randomBytes(12).toString('hex')}`
    remember('unknown query parameter', stranger)
    for (const url of [
      `/?bearer=${stranger}`,
      `/ms-graph-mail?bearer=${stranger}`,
      `/callback?error=access_denied&bearer=${stranger}&${stranger}=1`,
      `/result?bearer=${stranger}`,
      `/ms-graph-mail/manage?done=signed_in&bearer=${stranger}`,
      `/admin/api/audit?limit=1&bearer=${stranger}`,
      // refused (an unknown parameter of the operator API), its name must not be in the refusal
      `/admin/api/audit?${stranger}=1`,
      `/admin/tenants?bearer=${stranger}`,
      `/obtain-token?bearer=${stranger}`,
      `/healthz?bearer=${stranger}`,
    ]) {
      await broker.app.inject({
        method: 'GET',
        url,
        headers: { authorization: `Bearer ${OPERATOR_TOKEN}`, 'x-stranger': stranger },
      })
    }
    await broker.app.inject({
      method: 'POST',
      url: `/obtain-token?bearer=${stranger}`,
      headers: { 'content-type': 'application/json', 'x-stranger': stranger },
      payload: '{}',
    })

    // Operator calls with the token in the header.
    for (const url of ['/metrics', '/admin/api/tenants', '/admin/api/audit']) {
      const response = await fetch(`${baseUrl}${url}`, {
        headers: { authorization: `Bearer ${OPERATOR_TOKEN}` },
      })
      expect(response.status, url).toBe(200)
    }
    expect(secrets.size).toBeGreaterThan(20)
  })

  it('no log line contains any of the secrets seen', () => {
    expect(lines.length).toBeGreaterThan(30)
    const leaks: string[] = []
    for (const line of lines) {
      for (const [secret, what] of secrets) {
        if (line.includes(secret)) leaks.push(`${what} in: ${line.slice(0, 300)}`)
      }
    }
    expect(leaks).toEqual([])
  })

  it('every log line is JSON, and every request has exactly one completion line with its request id', async () => {
    for (const line of lines) expect(() => JSON.parse(line), line).not.toThrow()
    const completions = lines
      .map((line) => JSON.parse(line) as { msg?: string; reqId?: string; url?: string; statusCode?: number })
      .filter((entry) => entry.msg === 'request completed')
    for (let i = 0; i < 3; i++) {
      const mine = completions.filter((entry) => entry.reqId === `logs-token-ms-graph-mail-${i}`)
      expect(mine).toHaveLength(1)
      expect(mine[0]).toMatchObject({ url: '/obtain-token', statusCode: 200 })
    }
    // The callback was logged without its code and state: only the allowlisted parameters show.
    const callbacks = completions.filter((entry) => entry.url?.startsWith('/callback?'))
    expect(callbacks.length).toBeGreaterThan(0)
    for (const entry of callbacks) {
      expect(entry.url).not.toMatch(/[?&](code|state|session_state|client_info)=/)
      expect(entry.url).toMatch(/parameters? not logged\)$/)
    }
    expect(callbacks.some((entry) => entry.url!.includes('error=access_denied'))).toBe(true)
  })
})
