// POST /obtain-token of the whole app (buildApp) against the memory store and a scripted identity
// provider, over real HTTP with the independent XSOAR test client. The Entra emulator and Redis versions live in
// test/integration/obtain-token*.test.ts.
import { randomBytes, randomUUID } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { buildApp } from '../../src/app.js'
import type { Config, Env, ResolvedApp } from '../../src/config.js'
import { type IdentityProvider, type TokenGrant, UpstreamError } from '../../src/entra/types.js'
import { createMetrics } from '../../src/metrics.js'
import { createMemoryStore } from '../../src/store/memory.js'
import type { Registration, Store } from '../../src/store/types.js'
import { testConfig } from '../support/config.js'
import { memoryLogger } from '../support/log-capture.js'
import { encryptContent, XsoarClient } from '../support/xsoar-client.js'

const CONTOSO = '7c3b1e5a-4d2f-4b8e-9a61-2f0c8d4e6b13'
const FABRIKAM = 'a9e4f7c2-1b3d-4e5f-8a7b-6c5d4e3f2a10'

interface Call {
  grant: 'client_credentials' | 'refresh_token'
  app: string
  tenantId: string
  scope: string
  refreshToken?: string
}

type Step = (call: Call, signal: AbortSignal | undefined) => Promise<TokenGrant>

/** Counts calls; answers with fresh tokens unless a scripted step says otherwise. */
class ScriptedIdp implements IdentityProvider {
  startDeviceAuthorization(): never {
    throw new Error('the device code grant is not used by these tests')
  }
  pollDeviceAuthorization(): never {
    throw new Error('the device code grant is not used by these tests')
  }
  readonly calls: Call[] = []
  readonly steps: Step[] = []
  lifetimeS = 3600
  delayMs = 0
  #n = 0

  async signInUrl(): Promise<string> {
    throw new Error('not used')
  }
  async redeemCode(): Promise<never> {
    throw new Error('not used')
  }
  async adminConsentUrl(): Promise<string> {
    throw new Error('not used')
  }
  clientCredentials(app: ResolvedApp, tenantId: string, scope: string, signal?: AbortSignal) {
    return this.#answer({ grant: 'client_credentials', app: app.app.slug, tenantId, scope }, signal)
  }
  refresh(app: ResolvedApp, tenantId: string, refreshToken: string, scope: string, signal?: AbortSignal) {
    return this.#answer({ grant: 'refresh_token', app: app.app.slug, tenantId, scope, refreshToken }, signal)
  }
  async #answer(call: Call, signal: AbortSignal | undefined): Promise<TokenGrant> {
    this.calls.push(call)
    const step = this.steps.shift()
    if (step !== undefined) return step(call, signal)
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs))
    const n = ++this.#n
    return {
      accessToken: `at-${n}-${randomBytes(12).toString('hex')}`,
      expiresIn: this.lifetimeS,
      scope: call.scope,
      ...(call.grant === 'refresh_token'
        ? { refreshToken: `rt-${n}-${randomBytes(12).toString('hex')}` }
        : {}),
    }
  }
}

const hang: Step = (_call, signal) =>
  new Promise((_resolve, reject) => signal?.addEventListener('abort', () => reject(signal.reason)))
const fail =
  (kind: UpstreamError['kind'], details: ConstructorParameters<typeof UpstreamError>[2] = {}): Step =>
  async () => {
    throw new UpstreamError(kind, `scripted ${kind}`, details)
  }

interface Harness {
  app: FastifyInstance
  config: Config
  store: Store
  idp: ScriptedIdp
  url: string
  logs: string[]
  register(input: {
    app: string
    kind: 'admin' | 'delegated'
    tenantId?: string
    status?: Registration['status']
  }): Promise<{ registration: Registration; key: string; refreshToken?: string; client: XsoarClient }>
}

const harnesses: Harness[] = []
afterEach(async () => {
  for (const h of harnesses.splice(0)) await h.app.close()
})

async function harness(env: Env = {}): Promise<Harness> {
  const config = testConfig({ authorityUrl: 'http://127.0.0.1:9', env })
  const store = createMemoryStore({ keyRing: config.keyRing })
  const idp = new ScriptedIdp()
  const { logger, lines: logs } = memoryLogger('debug')
  const app = await buildApp(config, { store, idp, logger, metrics: createMetrics(), clock: Date.now })
  const address = await app.listen({ port: 0, host: '127.0.0.1' })
  const url = `${address}/obtain-token`
  const h: Harness = {
    app,
    config,
    store,
    idp,
    url,
    logs,
    async register(input) {
      const now = new Date().toISOString()
      const key = randomBytes(32).toString('base64')
      const refreshToken =
        input.kind === 'delegated' ? `rt-initial-${randomBytes(16).toString('hex')}` : undefined
      const tenantId = input.tenantId ?? CONTOSO
      const result = await store.registrations.create(
        {
          id: randomUUID(),
          app: input.app,
          cloud: 'global',
          tenantId,
          kind: input.kind,
          ...(input.kind === 'delegated' ? { userOid: randomUUID(), userName: 'user@contoso.example' } : {}),
          status: input.status ?? 'active',
          createdAt: now,
          updatedAt: now,
          consentedAt: now,
        },
        { key, ...(refreshToken === undefined ? {} : { refreshToken }) },
      )
      if (!result.created) throw new Error('not created')
      const client = new XsoarClient({
        id: `${result.registration.id}@${config.publicUrl}/obtain-token`,
        token: tenantId,
        key,
        appName: input.app,
        urlOverride: url,
      })
      return { registration: result.registration, key, ...(refreshToken ? { refreshToken } : {}), client }
    },
  }
  harnesses.push(h)
  return h
}

function errorOf(body: string): { code: string; message: string; [k: string]: unknown } {
  expect(body.includes('\n')).toBe(false)
  const parsed = JSON.parse(body) as {
    error: { code: string; message: string }
    message: string
    request_id: string
  }
  expect(typeof parsed.request_id).toBe('string')
  expect(parsed.message).toBe(parsed.error.message)
  return parsed.error
}

describe('POST /obtain-token: success', () => {
  it('admin consent: one client-credentials call, then served from the cache', async () => {
    const h = await harness()
    const { registration, client } = await h.register({ app: 'ms-graph-mail', kind: 'admin' })
    const startedAt = Date.now()
    const first = await client.getAccessToken()
    expect(first.status).toBe(200)
    expect(first.headers.get('cache-control')).toBe('no-store')
    const body = JSON.parse(first.body)
    expect(Object.keys(body).sort()).toEqual([
      'access_token',
      'expires_in',
      'refresh_token',
      'scope',
      'token_type',
    ])
    expect(body.token_type).toBe('Bearer')
    expect(typeof body.expires_in).toBe('number')
    expect(Number.isInteger(body.expires_in)).toBe(true)
    expect(body.expires_in).toBeGreaterThan(3590)
    expect(body.expires_in).toBeLessThanOrEqual(3600)
    expect(body.refresh_token).toBe(CONTOSO)
    expect(body.scope).toBe('https://graph.microsoft.com/.default')
    expect(client.refreshToken).toBe(CONTOSO)
    expect(h.idp.calls).toEqual([
      {
        grant: 'client_credentials',
        app: 'ms-graph-mail',
        tenantId: CONTOSO,
        scope: 'https://graph.microsoft.com/.default',
      },
    ])
    const second = await client.getAccessToken()
    expect(second.accessToken).toBe(first.accessToken)
    expect(h.idp.calls).toHaveLength(1)
    const usage = await h.store.registrations.getMeta(registration.id)
    const issuedAt = Date.parse(usage?.lastIssuedAt ?? '')
    expect(issuedAt).toBeGreaterThanOrEqual(startedAt)
    expect(issuedAt).toBeLessThanOrEqual(Date.now())
    expect(usage?.lastClient).toBe('Test Instance/1.2.3')
  })

  it('admin consent: the cache is shared by every registration of the tenant and app', async () => {
    const h = await harness()
    const a = await h.register({ app: 'ms-graph-mail', kind: 'admin' })
    const b = await h.register({ app: 'ms-graph-mail', kind: 'admin' })
    const c = await h.register({ app: 'ms-graph-mail', kind: 'admin', tenantId: FABRIKAM })
    const ta = await a.client.getAccessToken()
    const tb = await b.client.getAccessToken()
    const tc = await c.client.getAccessToken()
    expect(tb.accessToken).toBe(ta.accessToken)
    expect(tc.accessToken).not.toBe(ta.accessToken)
    expect(tc.refreshToken).toBe(FABRIKAM)
    expect(h.idp.calls).toHaveLength(2)
  })

  it('delegated: refresh grant, rotated refresh token stored, the Microsoft one never returned', async () => {
    const h = await harness()
    const { registration, refreshToken, client } = await h.register({
      app: 'ms-graph-mail-listener',
      kind: 'delegated',
    })
    const startedAt = Date.now()
    const answer = await client.getAccessToken()
    expect(answer.status).toBe(200)
    expect(answer.refreshToken).toBe(CONTOSO)
    expect(h.idp.calls[0]).toMatchObject({
      grant: 'refresh_token',
      refreshToken,
      scope: 'https://graph.microsoft.com/.default',
    })
    const stored = await h.store.registrations.get(registration.id)
    expect(stored?.secrets.refreshToken).toMatch(/^rt-1-/)
    const refreshedAt = Date.parse(stored?.usage.lastRefreshAt ?? '')
    expect(refreshedAt).toBeGreaterThanOrEqual(startedAt)
    expect(refreshedAt).toBeLessThanOrEqual(Date.now())
    expect(answer.body).not.toContain('rt-')
  })

  it('scope "graph" and a full scope for Defender; unknown scopes are a clear 400', async () => {
    const h = await harness()
    const { client } = await h.register({ app: 'ms-defender-atp', kind: 'admin' })
    const graph = await client.getAccessToken({ scope: 'graph' })
    expect(JSON.parse(graph.body).scope).toBe('https://graph.microsoft.com/.default')
    const full = 'https://securitycenter.onmicrosoft.com/windowsatpservice/.default'
    expect(JSON.parse((await client.getAccessToken({ scope: full })).body).scope).toBe(full)
    const plain = await client.getAccessToken()
    expect(JSON.parse(plain.body).scope).toBe('https://api.securitycenter.microsoft.com/.default')
    expect(h.idp.calls.map((c) => c.scope)).toEqual([
      'https://graph.microsoft.com/.default',
      full,
      'https://api.securitycenter.microsoft.com/.default',
    ])
    const bad = await client.getAccessToken({ scope: 'https://graph.microsoft.com/Mail.Read' })
    expect(bad.status).toBe(400)
    expect(errorOf(bad.body).code).toBe('invalid_scope')
    expect(bad.errorMessage).toMatch(
      /^invalid_scope: scope "https:\/\/graph.microsoft.com\/Mail.Read" is not allowed/,
    )
  })

  it('multi-resource loop (Log Analytics): each request sends the refresh_token the last one returned', async () => {
    const h = await harness()
    const { client } = await h.register({ app: 'ms-azure-log-analytics', kind: 'delegated' })
    const answers = await client.multiResource([
      'https://management.azure.com',
      'https://api.loganalytics.io',
    ])
    for (const answer of answers.values()) {
      expect(answer.status).toBe(200)
      expect(answer.refreshToken).toBe(CONTOSO)
    }
    expect(h.idp.calls.map((c) => c.scope)).toEqual([
      'https://management.azure.com/.default',
      'https://api.loganalytics.io/.default',
    ])
    // The second refresh used the token the first one rotated.
    expect(h.idp.calls[1]!.refreshToken).toMatch(/^rt-1-/)
  })
})

describe('POST /obtain-token: rejections', () => {
  it('malformed bodies are 400 invalid_request with one-line JSON', async () => {
    const h = await harness()
    const { client } = await h.register({ app: 'ms-graph-mail', kind: 'admin' })
    const cases: Array<[string, RegExp]> = [
      ['{not json', /not valid JSON/],
      [
        JSON.stringify({ app_name: 'ms-graph-mail', registration_id: client.registrationId }),
        /encrypted_token/,
      ],
      [JSON.stringify({ ...JSON.parse(client.body()), scope: 5 }), /scope must be string,null/],
      [JSON.stringify({ ...JSON.parse(client.body()), app_name: 7 }), /app_name must be string/],
      [JSON.stringify([1, 2]), /must be object/],
      [JSON.stringify({ ...JSON.parse(client.body()), encrypted_token: 'abc$' }), /standard padded base64/],
    ]
    for (const [body, message] of cases) {
      const answer = await client.post(body)
      expect(answer.status, body).toBe(400)
      const error = errorOf(answer.body)
      expect(error.code).toBe('invalid_request')
      expect(error.message).toMatch(message)
    }
    const big = await client.post(
      JSON.stringify({ ...JSON.parse(client.body()), padding: 'x'.repeat(17_000) }),
    )
    expect(big.status).toBe(413)
    expect(h.idp.calls).toHaveLength(0)
  })

  it('string bounds of the body count UTF-16 code units: at the bound passes the schema, one past is refused', async () => {
    const h = await harness()
    const { client } = await h.register({ app: 'ms-graph-mail', kind: 'admin' })
    const body = JSON.parse(client.body())
    const post = (app_name: string) => client.post(JSON.stringify({ ...body, app_name }))
    // 64 code units: past the schema, refused as an unknown app
    expect(errorOf((await post('a'.repeat(64))).body).code).toBe('unknown_app')
    const tooLong = errorOf((await post('a'.repeat(65))).body)
    expect(tooLong.code).toBe('invalid_request')
    expect(tooLong.message).toMatch(/app_name must NOT have more than 64 characters/)
    // 33 characters outside the BMP are 66 code units
    expect(errorOf((await post('😀'.repeat(33))).body).message).toMatch(/more than 64 characters/)
    expect(errorOf((await post('😀'.repeat(32))).body).code).toBe('unknown_app')
    expect(h.idp.calls).toHaveLength(0)
  })

  it('unknown fields are ignored', async () => {
    const h = await harness()
    const { client } = await h.register({ app: 'ms-graph-mail', kind: 'admin' })
    const answer = await client.post(JSON.stringify({ ...JSON.parse(client.body()), extra: { a: 1 } }))
    expect(answer.status).toBe(200)
  })

  it('unknown app, unknown registration, registration of another app', async () => {
    const h = await harness()
    const { client, key, registration } = await h.register({ app: 'ms-graph-mail', kind: 'admin' })
    const unknownApp = await client.post(JSON.stringify({ ...JSON.parse(client.body()), app_name: 'nope' }))
    expect(unknownApp.status).toBe(400)
    expect(errorOf(unknownApp.body).code).toBe('unknown_app')
    const other = new XsoarClient({ ...client.instance, id: `${randomUUID()}@x`, urlOverride: h.url })
    const missing = await other.getAccessToken()
    expect(missing.status).toBe(401)
    expect(errorOf(missing.body).code).toBe('unknown_registration')
    const wrongApp = new XsoarClient({
      ...client.instance,
      appName: 'ms-graph-user',
      key,
      id: `${registration.id}@x`,
      urlOverride: h.url,
    })
    // The right values with the wrong integration: the Key proves the caller holds them, so the
    // answer names the app the ID belongs to.
    const answer = await wrongApp.getAccessToken()
    expect(answer.status).toBe(401)
    expect(errorOf(answer.body).code).toBe('unknown_registration')
    expect(errorOf(answer.body).message).toContain('this ID belongs to a ms-graph-mail registration')
    expect(JSON.parse(answer.body).error.registered_app).toBe('ms-graph-mail')
    // Without the Key (someone probing IDs): indistinguishable from a missing registration.
    const probe = new XsoarClient({
      ...client.instance,
      appName: 'ms-graph-user',
      key: randomBytes(32).toString('base64'),
      id: `${registration.id}@x`,
      urlOverride: h.url,
    })
    const probed = await probe.getAccessToken()
    expect(probed.status).toBe(401)
    expect(JSON.parse(probed.body)).toEqual(
      JSON.parse(
        missing.body
          .replaceAll('ms-graph-mail', 'ms-graph-user')
          .replace(/"request_id":"[^"]+"/, `"request_id":"${JSON.parse(probed.body).request_id}"`),
      ),
    )
  })

  it('wrong Key → invalid_key; stale or future timestamp → stale_token; replay → replayed_token; content → token_mismatch', async () => {
    const h = await harness()
    const { client } = await h.register({ app: 'ms-graph-mail', kind: 'admin' })
    const wrongKey = new XsoarClient({ ...client.instance, key: randomBytes(32).toString('base64') })
    const bad = await wrongKey.getAccessToken()
    expect(bad.status).toBe(401)
    expect(errorOf(bad.body).code).toBe('invalid_key')
    expect(bad.errorMessage).toMatch(/^invalid_key: .*Key/)

    const past = new XsoarClient(client.instance)
    past.now = () => Math.floor(Date.now() / 1000) - 301
    const old = await past.getAccessToken()
    expect(old.status).toBe(401)
    expect(errorOf(old.body).code).toBe('stale_token')
    expect(old.errorMessage).toMatch(/behind the broker's clock \(allowed ±300 s\)/)
    past.now = () => Math.floor(Date.now() / 1000) + 310
    expect(errorOf((await past.getAccessToken()).body).code).toBe('stale_token')
    past.now = () => Math.floor(Date.now() / 1000) - 290
    expect((await past.getAccessToken()).status).toBe(200)

    const body = client.body()
    expect((await client.post(body)).status).toBe(200)
    const replay = await client.post(body)
    expect(replay.status).toBe(401)
    expect(errorOf(replay.body).code).toBe('replayed_token')

    const mismatch = await client.post(client.body({ content: FABRIKAM }))
    expect(mismatch.status).toBe(401)
    expect(errorOf(mismatch.body).code).toBe('token_mismatch')
    const empty = await client.post(client.body({ content: '' }))
    expect(errorOf(empty.body).code).toBe('token_mismatch')
  })

  it('junk that does not authenticate does not fill the replay cache', async () => {
    const h = await harness()
    const { client, key } = await h.register({ app: 'ms-graph-mail', kind: 'admin' })
    const forged = JSON.parse(client.body()) as { encrypted_token: string }
    const raw = Buffer.from(forged.encrypted_token, 'base64')
    raw[raw.length - 1] = raw[raw.length - 1]! ^ 1
    const tampered = await client.post(JSON.stringify({ ...forged, encrypted_token: raw.toString('base64') }))
    expect(errorOf(tampered.body).code).toBe('invalid_key')
    raw[raw.length - 1] = raw[raw.length - 1]! ^ 1
    const genuine = await client.post(JSON.stringify({ ...forged, encrypted_token: raw.toString('base64') }))
    expect(genuine.status).toBe(200)
    expect(key).toMatch(/^[A-Za-z0-9+/]{43}=$/) // the registration's own 32-byte Key
  })

  it('a registration served before is re-checked on every request: a new Key, needs_consent, re-activation and revocation apply at once', async () => {
    const h = await harness()
    const { registration, client } = await h.register({ app: 'ms-graph-mail', kind: 'admin' })
    const id = registration.id
    expect((await client.getAccessToken()).status).toBe(200)
    expect((await client.getAccessToken()).status).toBe(200)

    // junk still never reaches the replay cache of a registration served before
    const body = JSON.parse(client.body()) as { encrypted_token: string }
    const raw = Buffer.from(body.encrypted_token, 'base64')
    raw[raw.length - 1] = raw[raw.length - 1]! ^ 1
    const tampered = await client.post(JSON.stringify({ ...body, encrypted_token: raw.toString('base64') }))
    expect(errorOf(tampered.body).code).toBe('invalid_key')
    raw[raw.length - 1] = raw[raw.length - 1]! ^ 1
    expect(
      (await client.post(JSON.stringify({ ...body, encrypted_token: raw.toString('base64') }))).status,
    ).toBe(200)

    const newKey = randomBytes(32).toString('base64')
    expect(await h.store.registrations.update(id, 1, {}, { key: newKey })).not.toBeNull()
    expect(errorOf((await client.getAccessToken()).body).code).toBe('invalid_key')
    const rekeyed = new XsoarClient({ ...client.instance, key: newKey })
    expect((await rekeyed.getAccessToken()).status).toBe(200)

    await h.store.registrations.update(id, 2, {
      status: 'needs_consent',
      statusDetail: { code: 'invalid_grant', at: new Date().toISOString() },
    })
    expect(errorOf((await rekeyed.getAccessToken()).body).code).toBe('consent_required')
    await h.store.registrations.update(id, 3, { status: 'active', statusDetail: null })
    expect((await rekeyed.getAccessToken()).status).toBe(200)
    await h.store.registrations.update(id, 4, { status: 'revoked' })
    expect(errorOf((await rekeyed.getAccessToken()).body).code).toBe('revoked')
  })

  it('revoked → 401 revoked with date, reason and page; needs_consent → 401 consent_required', async () => {
    const h = await harness()
    const revoked = await h.register({ app: 'ms-graph-mail', kind: 'admin' })
    await h.store.registrations.update(revoked.registration.id, revoked.registration.version, {
      status: 'revoked',
      statusDetail: {
        code: 'operator_revoked',
        at: '2025-01-02T03:04:05.000Z',
        by: 'alice',
        reason: 'offboarding',
      },
    })
    const answer = await revoked.client.getAccessToken()
    expect(answer.status).toBe(401)
    const error = errorOf(answer.body)
    expect(error).toMatchObject({
      code: 'revoked',
      revoked_at: '2025-01-02T03:04:05.000Z',
      reason: 'offboarding',
      consent_url: `${h.config.publicUrl}/ms-graph-mail`,
    })
    expect(error.message).toContain('2025-01-02T03:04:05.000Z')
    expect(error.message).toContain('offboarding')

    const stuck = await h.register({
      app: 'ms-graph-mail-listener',
      kind: 'delegated',
      status: 'needs_consent',
    })
    const consent = await stuck.client.getAccessToken()
    expect(consent.status).toBe(401)
    expect(errorOf(consent.body)).toMatchObject({
      code: 'consent_required',
      consent_url: `${h.config.publicUrl}/ms-graph-mail-listener`,
    })
    expect(h.idp.calls).toHaveLength(0)
  })

  it('rate limits per registration and per client IP, with Retry-After', async () => {
    const h = await harness({
      RATE_LIMIT_PER_REGISTRATION: '3',
      RATE_LIMIT_PER_IP: '5',
      RATE_LIMIT_WINDOW_SECONDS: '60',
    })
    const a = await h.register({ app: 'ms-graph-mail', kind: 'admin' })
    const b = await h.register({ app: 'ms-graph-mail', kind: 'admin' })
    for (let i = 0; i < 3; i++) expect((await a.client.getAccessToken()).status).toBe(200)
    const limited = await a.client.getAccessToken()
    expect(limited.status).toBe(429)
    expect(errorOf(limited.body).code).toBe('rate_limited')
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0)
    // the registration stays refused on this instance until its window ends, without a store call
    const admit = h.store.registrations.admit.bind(h.store.registrations)
    let admits = 0
    h.store.registrations.admit = (...args) => {
      admits++
      return admit(...args)
    }
    expect((await a.client.getAccessToken()).status).toBe(429)
    expect(admits).toBe(0)
    expect((await b.client.getAccessToken()).status).toBe(200)
    const ipLimited = await b.client.getAccessToken()
    expect(ipLimited.status).toBe(429)
    expect(errorOf(ipLimited.body).message).toMatch(/from this address/)
  })

  it('counts a request refused before admit against its address: past the limit, 429 beats the error', async () => {
    const h = await harness({ RATE_LIMIT_PER_IP: '3', RATE_LIMIT_WINDOW_SECONDS: '60' })
    const a = await h.register({ app: 'ms-graph-mail', kind: 'admin' })
    expect((await a.client.getAccessToken()).status).toBe(200) // read: hit 1
    const wrongKey = new XsoarClient({ ...a.client.instance, key: randomBytes(32).toString('base64') })
    const refused = await wrongKey.getAccessToken() // known registration, refused before admit: hit 2
    expect(refused.status).toBe(401)
    expect(errorOf(refused.body).code).toBe('invalid_key')
    expect((await a.client.getAccessToken()).status).toBe(200) // admit counts the address: hit 3
    const limited = await wrongKey.getAccessToken() // hit 4
    expect(limited.status).toBe(429)
    expect(errorOf(limited.body).message).toMatch(/from this address/)
    // …and it stays refused here without asking the store again
    const calls: string[] = []
    const hit = h.store.rateLimiter.hit.bind(h.store.rateLimiter)
    h.store.rateLimiter.hit = (...args) => {
      calls.push('hit')
      return hit(...args)
    }
    expect((await a.client.getAccessToken()).status).toBe(429)
    expect(calls).toEqual([])
  })

  it('answers a cache hit of a registration seen before with one store call (admit)', async () => {
    const h = await harness()
    const a = await h.register({ app: 'ms-graph-mail', kind: 'admin' })
    expect((await a.client.getAccessToken()).status).toBe(200)
    // Calls into the store from outside it (the memory store's own inner calls are not counted).
    const calls: string[] = []
    let depth = 0
    const store = h.store as unknown as Record<string, Record<string, (...args: unknown[]) => unknown>>
    for (const part of ['registrations', 'tokens', 'rateLimiter', 'locks', 'ephemeral']) {
      const target = store[part]!
      for (const name of Object.getOwnPropertyNames(Object.getPrototypeOf(target))) {
        const original = target[name]
        if (name === 'constructor' || typeof original !== 'function') continue
        target[name] = (...args: unknown[]) => {
          if (depth === 0) calls.push(`${part}.${name}`)
          depth++
          try {
            return original.apply(target, args)
          } finally {
            depth--
          }
        }
      }
    }
    const answer = await a.client.getAccessToken()
    expect(answer.status).toBe(200)
    // usage is written at most every 30 s, so this request only admits (the address counted there)
    expect(calls).toEqual(['registrations.admit'])
  })
})

describe('POST /obtain-token: upstream failures', () => {
  it('invalid_grant → registration needs_consent (CAS, audit), 401 consent_required naming the page', async () => {
    const h = await harness()
    const { registration, client } = await h.register({ app: 'ms-graph-mail-listener', kind: 'delegated' })
    h.idp.steps.push(fail('oauth', { error: 'invalid_grant', errorCodes: [50173], status: 400 }))
    const startedAt = Date.now()
    const answer = await client.getAccessToken()
    expect(answer.status).toBe(401)
    const error = errorOf(answer.body)
    expect(error.code).toBe('consent_required')
    expect(error.consent_url).toBe(`${h.config.publicUrl}/ms-graph-mail-listener`)
    expect(answer.errorMessage).toMatch(
      /^consent_required: .*AADSTS50173.*http:\/\/127.0.0.1:3000\/ms-graph-mail-listener/,
    )
    const meta = await h.store.registrations.getMeta(registration.id)
    expect(meta?.status).toBe('needs_consent')
    expect(meta?.statusDetail?.code).toBe('AADSTS50173')
    const markedAt = Date.parse(meta?.statusDetail?.at ?? '')
    expect(markedAt).toBeGreaterThanOrEqual(startedAt)
    expect(markedAt).toBeLessThanOrEqual(Date.now())
    const audit = await h.store.audit.read({})
    expect(audit.items.map((e) => [e.type, e.registrationId, e.detail?.to])).toContainEqual([
      'registration.status_changed',
      registration.id,
      'needs_consent',
    ])
    // Next request: no upstream call, same answer.
    const again = await client.getAccessToken()
    expect(errorOf(again.body).code).toBe('consent_required')
    expect(h.idp.calls).toHaveLength(1)
  })

  it('consent-missing codes on client credentials also need consent', async () => {
    for (const details of [
      { error: 'unauthorized_client', errorCodes: [700016] },
      { error: 'invalid_request', errorCodes: [65001] },
      { error: 'interaction_required', errorCodes: [] },
    ]) {
      const h = await harness()
      const { client, registration } = await h.register({ app: 'ms-graph-mail', kind: 'admin' })
      h.idp.steps.push(fail('oauth', details))
      expect(errorOf((await client.getAccessToken()).body).code).toBe('consent_required')
      expect((await h.store.registrations.getMeta(registration.id))?.status).toBe('needs_consent')
    }
  })

  it('invalid_client → 502 broker_misconfigured and an operator error log', async () => {
    const h = await harness()
    const { client, registration } = await h.register({ app: 'ms-graph-mail', kind: 'admin' })
    h.idp.steps.push(fail('oauth', { error: 'invalid_client', errorCodes: [7000215], status: 401 }))
    const answer = await client.getAccessToken()
    expect(answer.status).toBe(502)
    expect(errorOf(answer.body).code).toBe('broker_misconfigured')
    expect(h.logs.some((l) => l.includes('"level":50') && l.includes('AADSTS7000215'))).toBe(true)
    expect((await h.store.registrations.getMeta(registration.id))?.status).toBe('active')
  })

  it('429 → 503 with Retry-After and no upstream call before it; a still-valid cached token is served', async () => {
    const h = await harness({ TOKEN_REFRESH_MARGIN_SECONDS: '300' })
    const { client } = await h.register({ app: 'ms-graph-mail', kind: 'admin' })
    h.idp.steps.push(fail('throttled', { status: 429, retryAfterSeconds: 7 }))
    const first = await client.getAccessToken()
    expect(first.status).toBe(503)
    expect(errorOf(first.body).code).toBe('upstream_throttled')
    expect(first.headers.get('retry-after')).toBe('7')
    const second = await client.getAccessToken()
    expect(second.status).toBe(503)
    expect(Number(second.headers.get('retry-after'))).toBeGreaterThanOrEqual(6)
    expect(h.idp.calls).toHaveLength(1)

    // A cached token still served (outside the refresh margin) keeps being served while its
    // refresh-ahead is throttled, and the throttle holds further attempts back. Refresh-ahead at
    // 0.01 % of an hour: due after ~0.36 s.
    const h2 = await harness({ TOKEN_REFRESH_MARGIN_SECONDS: '300', TOKEN_REFRESH_AHEAD_FRACTION: '0.0001' })
    const other = await h2.register({ app: 'ms-graph-mail', kind: 'admin' })
    const fresh = await other.client.getAccessToken()
    expect(fresh.status).toBe(200)
    h2.idp.steps.push(fail('throttled', { status: 429, retryAfterSeconds: 30 }))
    await new Promise((r) => setTimeout(r, 450))
    for (let i = 0; i < 5; i++) {
      const served = await other.client.getAccessToken()
      expect(served.status).toBe(200)
      expect(served.accessToken).toBe(fresh.accessToken)
      await new Promise((r) => setTimeout(r, 50))
    }
    expect(h2.idp.calls).toHaveLength(2)
    // A token inside the refresh margin is never served, throttled or not: the caller gets the 503.
    const h3 = await harness({ TOKEN_REFRESH_MARGIN_SECONDS: '300' })
    const third = await h3.register({ app: 'ms-graph-mail', kind: 'admin' })
    h3.idp.lifetimeS = 200 // always inside the margin: every request is a miss
    expect((await third.client.getAccessToken()).status).toBe(200)
    h3.idp.steps.push(fail('throttled', { status: 429, retryAfterSeconds: 30 }))
    const inside = await third.client.getAccessToken()
    expect(inside.status).toBe(503)
    expect(errorOf(inside.body).code).toBe('upstream_throttled')
  })

  it('5xx → one retry with jitter, then 503; success on the retry is a success', async () => {
    const h = await harness()
    const { client } = await h.register({ app: 'ms-graph-mail', kind: 'admin' })
    h.idp.steps.push(fail('unavailable', { status: 503 }), fail('unavailable', { status: 503 }))
    const answer = await client.getAccessToken()
    expect(answer.status).toBe(503)
    expect(errorOf(answer.body).code).toBe('upstream_unavailable')
    expect(h.idp.calls).toHaveLength(2)
    // The token group now backs off (1 s ± 25 %) for every instance; once it is over, the next
    // request calls again, and success on its retry is a success.
    await new Promise((r) => setTimeout(r, 1300))
    h.idp.steps.push(fail('unavailable', { status: 500 }))
    expect((await client.getAccessToken()).status).toBe(200)
    expect(h.idp.calls).toHaveLength(4)
  })

  it('an upstream that never answers → 504 upstream_timeout within the response deadline', async () => {
    // The deadline leaves room for both attempts whatever the jitter (≤ 250 ms) between them:
    // 200 + 250 + 200 ms, plus the answer margins (250 ms of headroom), is inside 3000 ms with ~2 s
    // to spare, so late timers can't leave the retry without time (it is skipped under 100 ms).
    const DEADLINE_MS = 3000
    const h = await harness({ UPSTREAM_TIMEOUT_MS: '200', RESPONSE_DEADLINE_MS: String(DEADLINE_MS) })
    const { client } = await h.register({ app: 'ms-graph-mail', kind: 'admin' })
    h.idp.steps.push(hang, hang, hang)
    const started = Date.now()
    const answer = await client.getAccessToken()
    const elapsed = Date.now() - started
    expect(answer.status).toBe(504)
    expect(errorOf(answer.body).code).toBe('upstream_timeout')
    expect(elapsed).toBeLessThan(DEADLINE_MS + 300)
    expect(h.idp.calls).toHaveLength(2)
  })
})

describe('POST /obtain-token: concurrency and logs', () => {
  it('100 simultaneous requests on a cold cache make one upstream call and get one token', async () => {
    const h = await harness()
    h.idp.delayMs = 100
    const { client } = await h.register({ app: 'ms-graph-mail', kind: 'admin' })
    const answers = await Promise.all(Array.from({ length: 100 }, () => client.getAccessToken()))
    expect(answers.every((a) => a.status === 200)).toBe(true)
    expect(new Set(answers.map((a) => a.accessToken)).size).toBe(1)
    expect(h.idp.calls).toHaveLength(1)
  })

  it('no log line holds the Key, a token or an encrypted_token', async () => {
    const h = await harness()
    const admin = await h.register({ app: 'ms-graph-mail', kind: 'admin' })
    const delegated = await h.register({ app: 'ms-graph-mail-listener', kind: 'delegated' })
    const secrets: string[] = [admin.key, delegated.key, delegated.refreshToken!]
    const bodies: string[] = []
    for (const c of [admin.client, delegated.client]) {
      const body = c.body()
      bodies.push(JSON.parse(body).encrypted_token)
      const answer = await c.post(body)
      secrets.push(answer.accessToken)
      await c.post(body) // replay
    }
    const forged = encryptContent(CONTOSO, randomBytes(32).toString('base64'))
    bodies.push(forged)
    await admin.client.post(JSON.stringify({ ...JSON.parse(admin.client.body()), encrypted_token: forged }))
    h.idp.steps.push(fail('oauth', { error: 'invalid_grant', errorCodes: [70008] }))
    await h.store.tokens.deleteGroup(`reg:${delegated.registration.id}`)
    await delegated.client.getAccessToken()
    const stored = await h.store.registrations.get(delegated.registration.id)
    secrets.push(stored!.secrets.refreshToken!)
    expect(h.logs.length).toBeGreaterThan(5)
    for (const line of h.logs) {
      for (const secret of [...secrets, ...bodies]) expect(line).not.toContain(secret)
    }
  })
})
