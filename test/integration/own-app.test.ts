// A tenant's own app registration, browser method, over HTTP on real Redis and the emulator: an
// admin-consent family and a delegated one end to end and through obtain-token (the independent
// XSOAR client); every bad input ends on a page naming what to fix, with nothing stored; the
// client secret sealed in Redis and in no log line.
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  CONTOSO_ADMIN,
  CONTOSO_TENANT_ID,
  CONTOSO_USER,
  FABRIKAM_TENANT_ID,
} from '../../emulator/demo-data.js'
import { browse, CookieJar, formCsrf, pageTitle, pathOf, runConsentViaEmulator } from '../support/broker.js'
import { completeAtEmulator } from '../support/emulator-driver.js'
import { assertNoSecretLogged, memoryLogger } from '../support/log-capture.js'
import { useBrokerOnRedis } from '../support/use-broker.js'
import { XsoarClient } from '../support/xsoar-client.js'

const logs = memoryLogger('debug')
const { emulator, broker } = useBrokerOnRedis({ logger: logs.logger })
const GRAPH = 'https://graph.microsoft.com'
let tokenUrl = ''

beforeAll(async () => {
  await broker.app.listen({ host: '127.0.0.1', port: 0 })
  tokenUrl = `http://127.0.0.1:${(broker.app.server.address() as AddressInfo).port}/obtain-token`
})
afterAll(() => {
  // The emulator's and the broker's secrets must appear in no log line.
  assertNoSecretLogged(logs.lines, secrets)
})

const secrets: string[] = []

async function registerApp(
  body: Record<string, unknown>,
  tid = CONTOSO_TENANT_ID,
): Promise<{ clientId: string; clientSecret: string }> {
  const res = await fetch(`${emulator.url}/_emulator/tenants/${tid}/apps`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  expect(res.status).toBe(201)
  const app = (await res.json()) as { clientId: string; clientSecret: string }
  secrets.push(app.clientSecret)
  return app
}

const callback = () => `${broker.config.publicUrl}/callback`

function form(app: { clientId: string; clientSecret?: string }, tenantId = CONTOSO_TENANT_ID) {
  return {
    tenant_id: tenantId,
    client_id: app.clientId,
    client_secret: app.clientSecret ?? '',
    method: 'authorization_code',
  }
}

async function registrationCount(): Promise<number> {
  let count = 0
  for (let cursor: string | undefined; ; ) {
    const page = await broker.store.registrations.scanIds(cursor, 100)
    count += page.ids.length
    if (page.nextCursor === undefined) return count
    cursor = page.nextCursor
  }
}

async function redisValues(): Promise<string> {
  const redis = broker.redis!
  const keys = await redis.keys(`${broker.keyPrefix}*`)
  const values: string[] = []
  for (const key of keys) {
    const type = await redis.type(key)
    if (type === 'hash') values.push(JSON.stringify(await redis.hgetall(key)))
    else if (type === 'string') values.push((await redis.get(key)) ?? '')
  }
  return values.join('\n')
}

describe('own app registration, browser method', () => {
  it('offers the own-app path on every app page and says what to configure', async () => {
    const start = await browse(broker.app, new CookieJar(), { url: '/ms-graph-mail' })
    expect(start.body).toContain('href="/ms-graph-mail/own-app"')
    const page = await browse(broker.app, new CookieJar(), { url: '/ms-graph-mail/own-app' })
    expect(page.statusCode).toBe(200)
    expect(page.body).toContain(`data-field="redirect_uri">${callback()}<`)
    for (const field of ['tenant_id', 'client_id', 'client_secret', 'method', 'cloud'])
      expect(page.body).toContain(`name="${field}"`)
    expect(page.body).toContain('application permissions')
    const delegated = await browse(broker.app, new CookieJar(), { url: '/ms-graph-mail-listener/own-app' })
    expect(delegated.body).toContain('delegated permissions')
  })

  it('admin-consent family: consent with the tenant’s app, then obtain-token uses that app', async () => {
    const own = await registerApp({ redirectUris: [callback()], allowPublicClient: false })
    const run = await runConsentViaEmulator(broker.app, {
      slug: 'ms-graph-mail',
      username: CONTOSO_ADMIN.username,
      ownApp: form(own),
    })
    expect(run.response.statusCode).toBe(200)
    expect(run.response.body).toContain(`data-field="own_client_id">${own.clientId}<`)
    const values = run.values!
    const stored = await broker.store.registrations.get(values.registrationId)
    expect(stored?.registration.ownClientId).toBe(own.clientId)
    expect(stored?.secrets.clientSecret).toBe(own.clientSecret)

    const client = new XsoarClient({ ...values, appName: 'ms-graph-mail', urlOverride: tokenUrl })
    const answer = await client.getAccessToken()
    expect(answer.status).toBe(200)
    const claims = JSON.parse(Buffer.from(answer.accessToken.split('.')[1]!, 'base64url').toString()) as {
      appid: string
      tid: string
      roles?: string[]
    }
    expect(claims.appid).toBe(own.clientId)
    expect(claims.tid).toBe(CONTOSO_TENANT_ID)
    expect(claims.roles).toContain('Mail.ReadWrite')

    // Sealed at rest: the secret appears in no Redis value.
    expect(await redisValues()).not.toContain(own.clientSecret)
  })

  it('delegated family: the user’s grant to the tenant’s app, refreshed with its secret', async () => {
    const own = await registerApp({ redirectUris: [callback()], allowPublicClient: false })
    const run = await runConsentViaEmulator(broker.app, {
      slug: 'ms-graph-mail-listener',
      username: CONTOSO_USER.username,
      ownApp: form(own),
    })
    expect(run.response.statusCode).toBe(200)
    const values = run.values!
    const client = new XsoarClient({ ...values, appName: 'ms-graph-mail-listener', urlOverride: tokenUrl })
    const answer = await client.getAccessToken()
    expect(answer.status).toBe(200)
    const claims = JSON.parse(Buffer.from(answer.accessToken.split('.')[1]!, 'base64url').toString()) as {
      appid: string
      oid: string
      scp: string
    }
    expect(claims.appid).toBe(own.clientId)
    expect(claims.oid).toBe(CONTOSO_USER.oid)
    expect(claims.scp).toContain('Mail.ReadWrite')
    expect(await redisValues()).not.toContain(own.clientSecret)
  })

  it('the tenant administrator replaces the secret from /{app}/manage: checked first, same Key', async () => {
    const own = await registerApp({ redirectUris: [callback()], allowPublicClient: false })
    const run = await runConsentViaEmulator(broker.app, {
      slug: 'ms-graph-mail',
      username: CONTOSO_ADMIN.username,
      ownApp: form(own),
    })
    const values = run.values!
    // Sign in to the manage pages (the hosted app's sign-in, admin role checked).
    const jar = new CookieJar()
    const signInPage = await browse(broker.app, jar, { url: '/ms-graph-mail/manage' })
    const signInCsrf = /name="csrf" value="([^"]+)"/.exec(signInPage.body)![1]!
    const started = await browse(broker.app, jar, {
      method: 'POST',
      url: '/ms-graph-mail/manage/sign-in',
      form: { csrf: signInCsrf },
    })
    const back = await completeAtEmulator(String(started.headers.location), {
      username: CONTOSO_ADMIN.username,
    })
    await browse(broker.app, jar, { url: pathOf(back) })
    const managePage = await browse(broker.app, jar, { url: '/ms-graph-mail/manage' })
    expect(managePage.body).toContain(`/manage/registrations/${values.registrationId}/client-secret`)
    const csrf = /name="csrf" value="([^"]+)"/.exec(managePage.body)![1]!
    const replace = (secret: string) =>
      browse(broker.app, jar, {
        method: 'POST',
        url: `/ms-graph-mail/manage/registrations/${values.registrationId}/client-secret`,
        form: { csrf, client_secret: secret },
      })
    const refused = await replace('not-a-secret-of-this-app')
    expect(refused.headers.location).toBe('/ms-graph-mail/manage?done=secret_rejected')
    expect((await broker.store.registrations.get(values.registrationId))?.secrets.clientSecret).toBe(
      own.clientSecret,
    )
    // A second secret of the app (the emulator keeps one: the same value stands in for a new one).
    const accepted = await replace(own.clientSecret)
    expect(accepted.headers.location).toBe('/ms-graph-mail/manage?done=secret_replaced')
    const after = await broker.store.registrations.get(values.registrationId)
    expect(after?.registration.version).toBeGreaterThan(1)
    // The Key shown on the result page still opens the registration: no new Key was needed.
    expect(after?.secrets.key).toBe(values.key)
    const answer = await new XsoarClient({
      ...values,
      appName: 'ms-graph-mail',
      urlOverride: tokenUrl,
    }).getAccessToken()
    expect(answer.status).toBe(200)
  })

  describe('bad input: a page naming what to fix, nothing stored', () => {
    async function refused(
      slug: string,
      fields: Record<string, string>,
      username = CONTOSO_ADMIN.username,
    ): Promise<{ status: number; body: string }> {
      const before = await registrationCount()
      const run = await runConsentViaEmulator(broker.app, { slug, username, ownApp: fields }).catch(
        (error: unknown) => ({ error }),
      )
      expect(await registrationCount()).toBe(before)
      if ('error' in run) throw run.error
      return { status: run.response.statusCode, body: run.response.body }
    }

    async function postOwnApp(slug: string, fields: Record<string, string>) {
      const jar = new CookieJar()
      const csrf = await formCsrf(broker.app, jar, `/${slug}/own-app`)
      return browse(broker.app, jar, { method: 'POST', url: `/${slug}/own-app`, form: { csrf, ...fields } })
    }

    async function startRefused(slug: string, fields: Record<string, string>) {
      const before = await registrationCount()
      const response = await postOwnApp(slug, fields)
      expect(await registrationCount()).toBe(before)
      return response
    }

    it('a post without the form’s token (CSRF) starts nothing', async () => {
      const own = await registerApp({ redirectUris: [callback()], allowPublicClient: false })
      const response = await browse(broker.app, new CookieJar(), {
        method: 'POST',
        url: '/ms-graph-mail/own-app',
        form: form(own),
      })
      expect(response.statusCode).toBe(403)
      expect(response.headers.location).toBeUndefined()
    })

    it('a wrong client secret: refused before Microsoft sign-in, Certificates & secrets named', async () => {
      const own = await registerApp({ redirectUris: [callback()], allowPublicClient: false })
      const response = await startRefused('ms-graph-mail', { ...form(own), client_secret: 'not-the-secret' })
      expect(response.statusCode).toBe(400)
      expect(pageTitle(response.body)).toBe('Microsoft refused the client secret')
      expect(response.body).toContain('Certificates &amp; secrets')
      expect(response.body).toContain('own_app_secret_rejected')
    })

    it('the wrong tenant (the app lives elsewhere), and malformed ids', async () => {
      const own = await registerApp({ redirectUris: [callback()], allowPublicClient: false })
      const elsewhere = await startRefused('ms-graph-mail', form(own, FABRIKAM_TENANT_ID))
      expect(elsewhere.statusCode).toBe(400)
      expect(pageTitle(elsewhere.body)).toBe('The app registration is not in that tenant')
      const malformed = await startRefused('ms-graph-mail', { ...form(own), tenant_id: 'contoso' })
      expect(malformed.statusCode).toBe(400)
      expect(pageTitle(malformed.body)).toBe('The app registration details are incomplete')
      const noSecret = await startRefused('ms-graph-mail', { ...form(own), client_secret: '' })
      expect(noSecret.statusCode).toBe(400)
    })

    it('an app without the broker’s redirect URI: Microsoft shows AADSTS50011 and the flow stops there', async () => {
      const own = await registerApp({ redirectUris: ['https://localhost'], allowPublicClient: false })
      const before = await registrationCount()
      const started = await postOwnApp('ms-graph-mail', form(own))
      expect(started.statusCode).toBe(303)
      await expect(
        completeAtEmulator(started.headers.location as string, { username: CONTOSO_ADMIN.username }),
      ).rejects.toThrow(/AADSTS50011/)
      expect(await registrationCount()).toBe(before)
      // The own-app page names the exact redirect URI to add beforehand.
      const page = await browse(broker.app, new CookieJar(), { url: '/ms-graph-mail/own-app' })
      expect(page.body).toContain(callback())
    })

    it('missing permissions: delegated (65001 at Microsoft) and admin (no application permission)', async () => {
      const delegatedApp = await registerApp({
        redirectUris: [callback()],
        allowPublicClient: false,
        permissions: [{ resource: GRAPH, delegated: ['User.Read'] }],
      })
      const delegated = await refused('ms-graph-mail-listener', form(delegatedApp), CONTOSO_USER.username)
      expect(delegated.status).toBe(400)
      expect(pageTitle(delegated.body)).toBe('The app registration lacks permissions')
      expect(delegated.body).toContain('API permissions')

      const adminApp = await registerApp({
        redirectUris: [callback()],
        allowPublicClient: false,
        permissions: [{ resource: GRAPH, delegated: ['User.Read'] }],
      })
      const admin = await refused('ms-graph-mail', form(adminApp))
      expect(admin.status).toBe(400)
      expect(pageTitle(admin.body)).toBe('The app registration lacks permissions')
    })
  })
})
