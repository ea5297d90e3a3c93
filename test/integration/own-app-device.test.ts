// A tenant's own app registration, device code method, over HTTP on real Redis and the emulator:
// two broker instances share Redis and serve the device code page alternately while exactly one of
// them polls Microsoft; the person signs in at the emulator's /devicelogin; the page then leads to
// the one-time result, whose values work with the independent XSOAR client. Every bad input ends
// on a page naming what to fix, with nothing stored; the device code is on no page, in no log line
// and in no Redis value; the flow's page opens only in the browser that started it.
import { randomBytes } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import type { LightMyRequestResponse } from 'fastify'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import {
  CONTOSO_ADMIN,
  CONTOSO_TENANT_ID,
  CONTOSO_USER,
  FABRIKAM_TENANT_ID,
} from '../../emulator/demo-data.js'
import type { IdentityProvider } from '../../src/entra/types.js'
import {
  browse,
  CookieJar,
  formCsrf,
  pageTitle,
  parseConsentValues,
  type RunningBroker,
  startBroker,
} from '../support/broker.js'
import { randomMasterKeys } from '../support/config.js'
import { useEmulator } from '../support/emulator.js'
import { approveDeviceCode } from '../support/emulator-driver.js'
import { assertNoSecretLogged, memoryLogger } from '../support/log-capture.js'
import { XsoarClient } from '../support/xsoar-client.js'

const emulator = useEmulator({ deviceCodeIntervalSec: 1 })
const logs = memoryLogger('debug')
const GRAPH = 'https://graph.microsoft.com'
const DELEGATED = 'ms-graph-mail-listener'

/** Secrets that must appear in no log line, page or Redis value. */
const secrets: string[] = []
/** Device code polls made by each instance. */
const polls = { a: 0, b: 0 }

function spying(name: 'a' | 'b') {
  return (idp: IdentityProvider): IdentityProvider => ({
    ...idp,
    async startDeviceAuthorization(app, tenantId, scopes) {
      const started = await idp.startDeviceAuthorization(app, tenantId, scopes)
      secrets.push(started.deviceCode)
      return started
    },
    async pollDeviceAuthorization(app, tenantId, deviceCode) {
      polls[name] += 1
      const polled = await idp.pollDeviceAuthorization(app, tenantId, deviceCode)
      if (polled.status === 'granted' && polled.tokens.refreshToken !== undefined)
        secrets.push(polled.tokens.refreshToken)
      return polled
    },
  })
}

let a: RunningBroker
let b: RunningBroker
let tokenUrl = ''
const shared = {
  keyPrefix: `test:${randomBytes(6).toString('hex')}:`,
  env: { MASTER_KEYS: randomMasterKeys(), COOKIE_SECRET: randomBytes(32).toString('hex') },
}

async function startInstance(name: 'a' | 'b'): Promise<RunningBroker> {
  return startBroker({
    ...shared,
    authorityUrl: emulator.url,
    redisUrl: inject('redisUrl'),
    logger: logs.logger,
    decorateIdp: spying(name),
  })
}

beforeAll(async () => {
  a = await startInstance('a')
  b = await startInstance('b')
  await a.app.listen({ host: '127.0.0.1', port: 0 })
  tokenUrl = `http://127.0.0.1:${(a.app.server.address() as AddressInfo).port}/obtain-token`
})
afterAll(async () => {
  await a?.close()
  await b?.close()
  assertNoSecretLogged(logs.lines, secrets)
})

async function registerApp(body: Record<string, unknown>): Promise<string> {
  const res = await fetch(`${emulator.url}/_emulator/tenants/${CONTOSO_TENANT_ID}/apps`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  expect(res.status).toBe(201)
  return ((await res.json()) as { clientId: string }).clientId
}

async function registrationCount(): Promise<number> {
  let count = 0
  for (let cursor: string | undefined; ; ) {
    const page = await a.store.registrations.scanIds(cursor, 100)
    count += page.ids.length
    if (page.nextCursor === undefined) return count
    cursor = page.nextCursor
  }
}

async function redisValues(): Promise<string> {
  const redis = a.redis!
  const values: string[] = []
  for (const key of await redis.keys(`${shared.keyPrefix}*`)) {
    const type = await redis.type(key)
    if (type === 'hash') values.push(JSON.stringify(await redis.hgetall(key)))
    else if (type === 'string') values.push((await redis.get(key)) ?? '')
  }
  return values.join('\n')
}

const field = (body: string, name: string) =>
  new RegExp(`data-field="${name}"[^>]*>([^<]*)<`).exec(body)?.[1]?.trim()

interface Started {
  jar: CookieJar
  /** The device code page's path. */
  page: string
  userCode: string
  verificationUri: string
  first: LightMyRequestResponse
}

/** Opens the own-app page, posts the device code form and opens the page it leads to. */
async function startDevice(
  slug: string,
  clientId: string,
  tenantId = CONTOSO_TENANT_ID,
  via: RunningBroker = a,
): Promise<Started | LightMyRequestResponse> {
  const jar = new CookieJar()
  const csrf = await formCsrf(via.app, jar, `/${slug}/own-app`)
  const posted = await browse(via.app, jar, {
    method: 'POST',
    url: `/${slug}/own-app`,
    form: { csrf, tenant_id: tenantId, client_id: clientId, client_secret: '', method: 'device_code' },
  })
  if (posted.statusCode !== 303) return posted
  const page = posted.headers.location as string
  expect(page).toMatch(new RegExp(`^/${slug}/own-app/device/[A-Za-z0-9_-]{43}$`))
  const first = await browse(via.app, jar, { url: page })
  expect(first.statusCode).toBe(200)
  return {
    jar,
    page,
    userCode: field(first.body, 'user_code')!,
    verificationUri: /data-field="verification_uri" href="([^"]+)"/.exec(first.body)![1]!,
    first,
  }
}

function started(value: Started | LightMyRequestResponse): Started {
  if ('jar' in value) return value
  throw new Error(`device code start answered ${value.statusCode}: ${pageTitle(value.body)}`)
}

/**
 * Reloads the page as its meta refresh does — alternately on both instances — until it stops
 * showing the code; returns that last answer and every page seen.
 */
async function refreshUntilDone(
  flow: Started,
  instances: RunningBroker[] = [a, b],
): Promise<{ last: LightMyRequestResponse; pages: string[] }> {
  const pages: string[] = [flow.first.body]
  for (let i = 0; i < 600; i++) {
    const response = await browse(instances[i % instances.length]!.app, flow.jar, { url: flow.page })
    pages.push(response.body)
    if (response.statusCode !== 200 || !response.body.includes('data-field="user_code"'))
      return { last: response, pages }
    expect(response.body).toMatch(/<meta http-equiv="refresh" content="\d+">/)
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  throw new Error('the device code page never finished')
}

describe('own app registration, device code method', () => {
  it('offers the method for delegated families, with the public client setting to turn on', async () => {
    const page = await browse(a.app, new CookieJar(), { url: `/${DELEGATED}/own-app` })
    expect(page.body).toContain('value="device_code"')
    expect(page.body).toContain('Allow public client flows')
    const admin = await browse(a.app, new CookieJar(), { url: '/ms-graph-mail/own-app' })
    expect(admin.body).not.toContain('value="device_code"')
  })

  it('delegated family: two instances serve the page alternately, one polls, the values work', async () => {
    const clientId = await registerApp({ redirectUris: [], allowPublicClient: true })
    const before = await registrationCount()
    polls.a = 0
    polls.b = 0
    const flow = started(await startDevice(DELEGATED, clientId))
    expect(flow.userCode).toMatch(/^[A-Z]{9}$/)
    expect(flow.verificationUri).toBe(`${emulator.url}/devicelogin`)
    expect(flow.first.body).toMatch(/<meta http-equiv="refresh" content="1">/)
    // Both instances show the same code while the person has not signed in yet.
    const onB = await browse(b.app, flow.jar, { url: flow.page })
    expect(field(onB.body, 'user_code')).toBe(flow.userCode)

    const approved = await approveDeviceCode(flow.verificationUri, flow.userCode, {
      username: CONTOSO_USER.username,
    })
    expect(approved.text).toContain('You may now close this window')
    const { last, pages } = await refreshUntilDone(flow)
    expect(last.statusCode).toBe(303)
    expect(last.headers.location).toBe('/result')
    const result = await browse(b.app, flow.jar, { url: '/result' })
    expect(result.statusCode).toBe(200)
    expect(result.body).toContain(`data-field="own_client_id">${clientId}<`)
    expect(result.body).toContain('public client (device code method)')
    const values = parseConsentValues(result.body)!
    expect(values.token).toBe(CONTOSO_TENANT_ID)
    // Shown once: the result and the flow's page are gone afterwards.
    expect((await browse(a.app, flow.jar, { url: '/result' })).statusCode).toBe(410)
    expect((await browse(a.app, flow.jar, { url: flow.page })).statusCode).toBe(400)

    // Exactly one instance polled Microsoft: the one that started the flow.
    expect(polls.a).toBeGreaterThan(0)
    expect(polls.b).toBe(0)

    const stored = await a.store.registrations.get(values.registrationId)
    expect(stored?.registration.ownClientId).toBe(clientId)
    expect(stored?.registration.kind).toBe('delegated')
    expect(stored?.registration.userName).toBe(CONTOSO_USER.username)
    expect(stored?.secrets.clientSecret).toBeUndefined()
    expect(await registrationCount()).toBe(before + 1)

    // obtain-token with the shown values: a token of the tenant's own app, refreshed as a public client.
    const client = new XsoarClient({ ...values, appName: DELEGATED, urlOverride: tokenUrl })
    const answer = await client.getAccessToken()
    expect(answer.status).toBe(200)
    const claims = JSON.parse(Buffer.from(answer.accessToken.split('.')[1]!, 'base64url').toString()) as {
      appid: string
      tid: string
      scp?: string
    }
    expect(claims.appid).toBe(clientId)
    expect(claims.tid).toBe(CONTOSO_TENANT_ID)

    // Audited like any consent, naming the tenant's app.
    const audit = await a.store.audit.read({ order: 'desc', limit: 50 })
    const completed = audit.items.find(
      (e) => e.type === 'consent.completed' && e.registrationId === values.registrationId,
    )
    expect(completed?.detail?.own_client_id).toBe(clientId)
    expect(completed?.actor).toMatch(new RegExp(`^user:${CONTOSO_TENANT_ID}/`))

    // The device code is on no page and in no Redis value; the refresh token is sealed.
    const deviceCodes = secrets.filter((s) => s.startsWith('DAQABAAEAAAD'))
    expect(deviceCodes.length).toBeGreaterThan(0)
    const redis = await redisValues()
    for (const secret of secrets) {
      for (const page of [...pages, result.body]) expect(page).not.toContain(secret)
      expect(redis).not.toContain(secret)
    }
  })

  it('revokes a device code registration like any other: obtain-token answers revoked on every instance', async () => {
    const clientId = await registerApp({ redirectUris: [], allowPublicClient: true })
    const flow = started(await startDevice(DELEGATED, clientId))
    await approveDeviceCode(flow.verificationUri, flow.userCode, { username: CONTOSO_ADMIN.username })
    await refreshUntilDone(flow)
    const values = parseConsentValues((await browse(a.app, flow.jar, { url: '/result' })).body)!
    const client = new XsoarClient({ ...values, appName: DELEGATED, urlOverride: tokenUrl })
    expect((await client.getAccessToken()).status).toBe(200)
    const revoked = await b.app.services.revocation.registration(
      values.registrationId,
      { actor: { kind: 'operator', name: 'device-code-test' }, reason: 'test revocation' },
      b.app.log,
    )
    expect(revoked.registration.status).toBe('revoked')
    expect((await a.store.registrations.getMeta(values.registrationId))?.status).toBe('revoked')
    const refused = await client.getAccessToken()
    expect(refused.ok).toBe(false)
    expect(refused.body).toContain('"revoked"')
  })

  it('goes on polling from the other instance when the polling one stops', async () => {
    const clientId = await registerApp({ redirectUris: [], allowPublicClient: true })
    const c = await startInstance('a')
    let closed = false
    try {
      polls.b = 0
      const flow = started(await startDevice(DELEGATED, clientId, CONTOSO_TENANT_ID, c))
      await c.close()
      closed = true
      await approveDeviceCode(flow.verificationUri, flow.userCode, { username: CONTOSO_USER.username })
      const { last } = await refreshUntilDone(flow, [b])
      expect(last.headers.location).toBe('/result')
      expect(polls.b).toBeGreaterThan(0)
      const result = await browse(b.app, flow.jar, { url: '/result' })
      expect(parseConsentValues(result.body)?.token).toBe(CONTOSO_TENANT_ID)
    } finally {
      if (!closed) await c.close()
    }
  })

  it('opens the flow only in the browser that started it', async () => {
    const clientId = await registerApp({ redirectUris: [], allowPublicClient: true })
    const flow = started(await startDevice(DELEGATED, clientId))
    for (const jar of [new CookieJar(), await otherBrowserWithItsOwnFlow(clientId)]) {
      const stranger = await browse(b.app, jar, { url: flow.page })
      expect(stranger.statusCode).toBe(400)
      expect(stranger.body).toContain('session_missing')
      expect(stranger.body).not.toContain(flow.userCode)
    }
    // The starting browser still sees its flow.
    const mine = await browse(a.app, flow.jar, { url: flow.page })
    expect(field(mine.body, 'user_code')).toBe(flow.userCode)
  })

  async function otherBrowserWithItsOwnFlow(clientId: string): Promise<CookieJar> {
    return started(await startDevice(DELEGATED, clientId)).jar
  }

  describe('bad input: a page naming what to fix, nothing stored', () => {
    async function expectFailure(
      response: LightMyRequestResponse,
      reason: string,
      mentions: string,
      before: number,
    ): Promise<void> {
      expect(response.statusCode).toBe(400)
      expect(response.body).toContain(`<code>${reason}</code>`)
      expect(response.body).toContain(mentions)
      expect(await registrationCount()).toBe(before)
    }

    it('an admin-consent family: application permissions need the browser method', async () => {
      const clientId = await registerApp({ redirectUris: [], allowPublicClient: true })
      const before = await registrationCount()
      const answer = await startDevice('ms-graph-mail', clientId)
      expect('jar' in answer).toBe(false)
      await expectFailure(answer as LightMyRequestResponse, 'own_app_needs_secret', 'browser method', before)
    })

    it('public client flows turned off (AADSTS7000218)', async () => {
      const clientId = await registerApp({ redirectUris: [], allowPublicClient: false })
      const before = await registrationCount()
      const { last } = await refreshUntilDone(started(await startDevice(DELEGATED, clientId)))
      await expectFailure(last, 'own_app_public_client_disabled', 'Allow public client flows', before)
      expect(last.body).toContain('AADSTS7000218')
    })

    it('the wrong tenant (AADSTS700016)', async () => {
      const clientId = await registerApp({ redirectUris: [], allowPublicClient: true })
      const before = await registrationCount()
      const answer = await startDevice(DELEGATED, clientId, FABRIKAM_TENANT_ID)
      await expectFailure(
        answer as LightMyRequestResponse,
        'own_app_not_in_tenant',
        'Directory (tenant) ID',
        before,
      )
    })

    it('permissions missing on the app (AADSTS65001)', async () => {
      const clientId = await registerApp({
        redirectUris: [],
        allowPublicClient: true,
        permissions: [{ resource: GRAPH, delegated: ['User.Read'] }],
      })
      const before = await registrationCount()
      const flow = started(await startDevice(DELEGATED, clientId))
      const shown = await approveDeviceCode(flow.verificationUri, flow.userCode, {
        username: CONTOSO_USER.username,
      })
      expect(shown.text).toContain('AADSTS65001')
      const { last } = await refreshUntilDone(flow)
      await expectFailure(last, 'own_app_missing_permissions', 'API permissions', before)
    })

    it('declined at Microsoft', async () => {
      const clientId = await registerApp({ redirectUris: [], allowPublicClient: true })
      const before = await registrationCount()
      const flow = started(await startDevice(DELEGATED, clientId))
      await approveDeviceCode(flow.verificationUri, flow.userCode, {
        username: CONTOSO_ADMIN.username,
        decision: 'deny',
      })
      const { last } = await refreshUntilDone(flow)
      await expectFailure(last, 'cancelled', 'declined', before)
    })

    it('an expired device code', async () => {
      const clientId = await registerApp({ redirectUris: [], allowPublicClient: true })
      const before = await registrationCount()
      const flow = started(await startDevice(DELEGATED, clientId))
      const advanced = await fetch(`${emulator.url}/_emulator/clock`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ advanceSec: 901 }),
      })
      expect(advanced.status).toBe(200)
      try {
        const { last } = await refreshUntilDone(flow)
        await expectFailure(last, 'device_code_expired', '15 minutes', before)
      } finally {
        await fetch(`${emulator.url}/_emulator/clock`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ advanceSec: -901 }),
        })
      }
    })
  })
})
