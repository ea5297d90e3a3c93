// Notifications end to end: a real Redis, the emulator, brokers in-process and a real HTTP receiver
// that verifies every signature with the `standardwebhooks` verifier. Short retry settings keep
// the file quick; the schedule itself is the production code's.
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Webhook } from 'standardwebhooks'
import { afterAll, afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest'
import { CONTOSO_TENANT_ID } from '../../emulator/demo-data.js'
import { writeAppsFileWithCredentials } from '../../emulator/dev-credentials.js'
import { type RunningEmulator, startEmulator } from '../../emulator/server.js'
import { bearer, consoleSignIn, csrfOf, obtainToken, operatorToken } from '../support/admin-helpers.js'
import {
  browse,
  type ConsentValues,
  consentViaEmulator,
  type RunningBroker,
  renewViaEmulator,
  startBroker,
} from '../support/broker.js'
import { consentOverHttp, productionEnv, spawnBroker } from '../support/broker-process.js'
import { DEMO_APPS_FILE, randomMasterKeys } from '../support/config.js'
import { type ReceivedRequest, startReceiver, type WebhookReceiver } from '../support/webhook-receiver.js'

const OPERATOR = operatorToken('ops')
const DELEGATED = 'ms-graph-mail-listener'
let emulator: RunningEmulator
const receivers: WebhookReceiver[] = []
const brokers: RunningBroker[] = []

function sharedEnv(extra: Record<string, string> = {}) {
  return {
    MASTER_KEYS: randomMasterKeys(),
    COOKIE_SECRET: randomBytes(32).toString('hex'),
    OPERATOR_TOKENS: `ops:${OPERATOR}`,
    UNSAFE_ALLOW_HTTP: 'true',
    WEBHOOK_ALLOW_PRIVATE_ADDRESSES: 'true',
    WEBHOOK_POLL_INTERVAL_MS: '50',
    WEBHOOK_RETRY_BASE_MS: '300',
    WEBHOOK_TIMEOUT_MS: '1000',
    ...extra,
  }
}

async function broker(
  env: Record<string, string>,
  keyPrefix = `test:${randomBytes(6).toString('hex')}:`,
  clock?: () => number,
) {
  const running = await startBroker({
    authorityUrl: emulator.url,
    redisUrl: inject('redisUrl'),
    keyPrefix,
    env,
    ...(clock === undefined ? {} : { clock }),
  })
  brokers.push(running)
  return running
}

async function receiver(mode: Parameters<typeof startReceiver>[0] = 'ok') {
  const started = await startReceiver(mode)
  receivers.push(started)
  return started
}

async function addEndpoint(b: RunningBroker, url: string, events?: string[]) {
  const response = await b.app.inject({
    method: 'POST',
    url: '/admin/api/webhooks',
    headers: { ...bearer(OPERATOR), 'content-type': 'application/json' },
    payload: JSON.stringify({ url, ...(events === undefined ? {} : { events }) }),
  })
  return {
    status: response.statusCode,
    body: response.json() as { id: string; secret: string; message?: string },
  }
}

async function subscribe(b: RunningBroker, r: WebhookReceiver, events?: string[]) {
  const added = await addEndpoint(b, r.url, events)
  expect(added.status).toBe(201)
  expect(added.body.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/)
  r.secret = added.body.secret
  return added.body.id
}

const ofType = (type: string) => (r: ReceivedRequest[]) => r.filter((x) => x.event.type === type)

beforeAll(async () => {
  emulator = await startEmulator({ port: 0 })
})

afterEach(async () => {
  for (const b of brokers.splice(0)) await b.close()
  for (const r of receivers.splice(0)) await r.close()
})

afterAll(async () => {
  await emulator?.close()
})

describe('registration events', () => {
  it('each cause → one registration.needs_consent with its reason and link; created, renewed and revoked too', async () => {
    const b = await broker(sharedEnv())
    const r = await receiver()
    await subscribe(b, r)
    // every obtain-token refreshes (the access token lives shorter than the refresh margin)
    await fetch(`${emulator.url}/_emulator/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ accessTokenLifetimeSec: 60 }),
    })
    const causes = [
      { cause: 'inactivity', code: 'AADSTS700082', family: 'inactivity', words: /inactivity/ },
      {
        cause: 'sign_in_frequency',
        code: 'AADSTS70043',
        family: 'sign_in_frequency',
        words: /sign-in frequency/,
      },
      {
        cause: 'sessions_revoked',
        code: 'AADSTS50173',
        family: 'credentials_changed',
        words: /password was reset/,
      },
      {
        cause: 'consent_removed',
        code: 'AADSTS65001',
        family: 'consent_removed',
        words: /consent was removed/,
      },
    ]
    let first: ConsentValues | undefined
    for (const [i, { cause, code, family, words }] of causes.entries()) {
      // The first consent shows the values; each later one renews that registration (no Key shown)
      // and the integration goes on with the values it has.
      const consent = { slug: DELEGATED, username: 'user@contoso.example' }
      if (first === undefined) first = await consentViaEmulator(b.app, consent)
      else expect((await renewViaEmulator(b.app, consent)).registrationId).toBe(first.registrationId)
      const values = first
      const registrationId = values.registrationId
      expect((await obtainToken(b.app, values, DELEGATED)).status).toBe(200)
      const expired = await fetch(`${emulator.url}/_emulator/users/user@contoso.example/expire`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ cause }),
      })
      expect(expired.status).toBe(200)
      const refused = await obtainToken(b.app, values, DELEGATED)
      expect(refused.status).toBe(401)
      expect(refused.body.error?.code).toBe('consent_required')
      await r.waitFor((all) => ofType('registration.needs_consent')(all).length === i + 1)
      const event = ofType('registration.needs_consent')(r.received)[i] as ReceivedRequest
      expect(event.verified).toBe(true)
      expect(event.headers['webhook-id']).toBe(event.event.id)
      expect(event.event).toMatchObject({
        specversion: '1.0',
        subject: registrationId,
        datacontenttype: 'application/json',
      })
      expect(event.event.data).toMatchObject({
        registrationId,
        app: DELEGATED,
        tenantId: CONTOSO_TENANT_ID,
        code,
        reasonFamily: family,
        consentUrl: `${b.config.publicUrl}/${DELEGATED}`,
      })
      expect(String(event.event.data.reason)).toMatch(words)
      // the integration's error reads the same explanation
      expect(refused.body.error?.message).toContain(String(event.event.data.reason))
      expect(JSON.stringify(event.event)).not.toMatch(/refreshToken|"key"/)
    }
    // first consent created it; each later consent renewed the same registration
    await r.waitFor((all) => ofType('registration.renewed')(all).length === 3)
    expect(ofType('registration.created')(r.received)).toHaveLength(1)
    // a renewal after the last cause, then an operator's revocation: who and why
    const registrationId = first!.registrationId
    await renewViaEmulator(b.app, { slug: DELEGATED, username: 'user@contoso.example' })
    const revoked = await b.app.inject({
      method: 'POST',
      url: `/admin/api/registrations/${registrationId}/revoke`,
      headers: { ...bearer(OPERATOR), 'content-type': 'application/json' },
      payload: JSON.stringify({ reason: 'customer left' }),
    })
    expect(revoked.statusCode).toBe(200)
    await r.waitFor((all) => ofType('registration.revoked')(all).length === 1)
    expect(ofType('registration.revoked')(r.received)[0]?.event.data).toMatchObject({
      registrationId,
      revokedBy: 'ops',
      reason: 'customer left',
    })
    expect(ofType('registration.needs_consent')(r.received)).toHaveLength(4)
    // every delivery is recorded as delivered, once per message id
    const ids = r.received.map((x) => x.event.id)
    expect(new Set(ids).size).toBe(ids.length)
    expect(r.received.every((x) => x.verified === true)).toBe(true)
    await fetch(`${emulator.url}/_emulator/reset`, { method: 'POST' })
  }, 120_000)
})

/** A registration created straight in the store (its registration.created outbox entry with it). */
async function createRegistration(b: RunningBroker) {
  const now = new Date().toISOString()
  const id = randomBytes(16)
    .toString('hex')
    .replace(/(.{8})(.{4})(.{4})(.{4})(.{12})/, '$1-$2-$3-$4-$5')
  const created = await b.store.registrations.create(
    {
      id,
      app: 'ms-graph-mail',
      cloud: 'global',
      tenantId: CONTOSO_TENANT_ID,
      kind: 'admin',
      status: 'active',
      createdAt: now,
      updatedAt: now,
      consentedAt: now,
    },
    { key: randomBytes(32).toString('base64') },
  )
  expect(created.created).toBe(true)
  return id
}

async function deliveries(b: RunningBroker, endpointId: string) {
  const response = await b.app.inject({
    method: 'GET',
    url: `/admin/api/webhooks/${endpointId}/deliveries`,
    headers: bearer(OPERATOR),
  })
  expect(response.statusCode).toBe(200)
  return (response.json() as { deliveries: Array<Record<string, unknown>> }).deliveries
}

describe('upstream events', () => {
  it('Entra throttling an app in a tenant: one upstream.throttled, then one upstream.recovered', async () => {
    const b = await broker(sharedEnv())
    const r = await receiver()
    await subscribe(b, r, ['upstream.throttled', 'upstream.recovered'])
    const values = await consentViaEmulator(b.app, {
      slug: 'ms-graph-mail',
      username: 'admin@contoso.example',
    })
    const fault = (body: Record<string, unknown>) =>
      fetch(`${emulator.url}/_emulator/faults`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      })
    await fault({ accessTokenLifetimeSec: 60 })
    expect((await obtainToken(b.app, values, 'ms-graph-mail')).status).toBe(200)
    await fault({ status: 429, retryAfter: 1, count: 3, grantType: 'client_credentials' })
    await obtainToken(b.app, values, 'ms-graph-mail')
    await obtainToken(b.app, values, 'ms-graph-mail')
    await r.waitFor((all) => all.length === 1)
    await fetch(`${emulator.url}/_emulator/faults`, { method: 'DELETE' })
    await new Promise((resolve) => setTimeout(resolve, 1200))
    expect((await obtainToken(b.app, values, 'ms-graph-mail')).status).toBe(200)
    expect((await obtainToken(b.app, values, 'ms-graph-mail')).status).toBe(200)
    await r.waitFor((all) => all.length === 2)
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(r.received.map((x) => x.event.type)).toEqual(['upstream.throttled', 'upstream.recovered'])
    expect(r.received[0]?.event.data).toMatchObject({
      app: 'ms-graph-mail',
      tenantId: CONTOSO_TENANT_ID,
      retryAfterSeconds: 1,
    })
    await fetch(`${emulator.url}/_emulator/reset`, { method: 'POST' })
  }, 60_000)
})

describe('app credential events', () => {
  it('a client secret crossing the warning, urgent and expiry thresholds: one app_credential.expiring per state from three instances', async () => {
    const DAY = 86_400_000
    const directory = mkdtempSync(join(tmpdir(), 'credential-expiry-'))
    try {
      let now = Date.now()
      const clock = () => now
      const expiresAt = now + 40 * DAY
      const appsFile = join(directory, 'apps.json')
      writeAppsFileWithCredentials(DEMO_APPS_FILE, appsFile, (slug, cloud) =>
        slug === 'ms-graph-user' && cloud === 'global'
          ? [{ clientSecretEnv: 'USER_SECRET', expiresAt: new Date(expiresAt).toISOString() }]
          : undefined,
      )
      const env = sharedEnv({
        APPS_FILE: appsFile,
        USER_SECRET: 'demo-secret-ms-graph-user',
        CREDENTIAL_EXPIRY_CHECK_SECONDS: '1',
        CREDENTIAL_EXPIRY_WARNING_DAYS: '30',
        CREDENTIAL_EXPIRY_URGENT_DAYS: '7',
      })
      const keyPrefix = `test:${randomBytes(6).toString('hex')}:`
      const instances = [
        await broker(env, keyPrefix, clock),
        await broker(env, keyPrefix, clock),
        await broker(env, keyPrefix, clock),
      ]
      const r = await receiver()
      await subscribe(instances[0] as RunningBroker, r, ['app_credential.expiring'])
      const expiring = ofType('app_credential.expiring')
      const states = () => new Map(expiring(r.received).map((x) => [x.event.id, x.event.data.state]))
      const checks = () => new Promise((resolve) => setTimeout(resolve, 2_500)) // a few checks on each

      // 40 days left: outside the window, nothing to say
      await checks()
      expect(expiring(r.received)).toEqual([])

      // 29 days left: the warning window
      now += 11 * DAY
      await r.waitFor((all) => expiring(all).length >= 1)
      await checks()
      expect([...states().values()]).toEqual(['expiring'])
      const first = expiring(r.received)[0]!
      expect(first.event.subject).toBe('ms-graph-user/global/secret:USER_SECRET')
      expect(first.event.data).toMatchObject({
        app: 'ms-graph-user',
        cloud: 'global',
        credential: 'secret:USER_SECRET', // the variable's name, never its value
        credentialKind: 'secret',
        thumbprint: null,
        expiresAt: new Date(expiresAt).toISOString(),
        daysLeft: 29,
        state: 'expiring',
        warningDays: 30,
        urgentDays: 7,
      })
      expect(String(first.event.data.action)).toMatch(/Add a new client secret/)

      // 6 days left: urgent; then past the expiry: expired
      now += 23 * DAY
      await r.waitFor((all) => new Set(expiring(all).map((x) => x.event.data.state)).has('urgent'))
      now += 7 * DAY
      await r.waitFor((all) => new Set(expiring(all).map((x) => x.event.data.state)).has('expired'))
      await checks()
      // one message per state (a redelivery would carry the same id), every one signed
      expect([...states().values()].sort()).toEqual(['expired', 'expiring', 'urgent'])
      // Signed: the verifier's own signing with the endpoint's secret over the same id, timestamp
      // and body gives the header's signature (its verify() would also compare the timestamp
      // with the receiver's real clock, which the broker's injected clock is days ahead of).
      for (const x of expiring(r.received)) {
        const id = String(x.headers['webhook-id'])
        const at = new Date(Number(x.headers['webhook-timestamp']) * 1000)
        expect(String(x.headers['webhook-signature']).split(' ')).toContain(
          new Webhook(r.secret!).sign(id, at, x.body),
        )
        expect(at.getTime()).toBeGreaterThan(Date.now() + 10 * DAY) // the broker's clock
      }
      expect(r.received.some((x) => x.body.includes('demo-secret-ms-graph-user'))).toBe(false)
      const expired = expiring(r.received).find((x) => x.event.data.state === 'expired')!
      expect(expired.event.data.daysLeft).toBeLessThan(0)
      expect(String(expired.event.data.action)).toMatch(/Microsoft refuses this client secret now/)
    } finally {
      rmSync(directory, { recursive: true, force: true })
    }
  }, 90_000)
})

describe('delivery', () => {
  it('a receiver answering 500, then timing out, gets the message once it is back: same id, backoff between attempts', async () => {
    const b = await broker(sharedEnv({ WEBHOOK_TIMEOUT_MS: '400' }))
    const r = await receiver('error')
    const endpointId = await subscribe(b, r, ['registration.created'])
    await createRegistration(b)
    await r.waitFor((all) => all.length >= 2)
    r.mode = 'hang'
    await r.waitFor((all) => all.length >= 3)
    r.mode = 'ok'
    await r.waitFor(() => r.delivered().length === 1, 20_000)
    const ids = new Set(r.received.map((x) => x.headers['webhook-id']))
    expect(ids.size).toBe(1)
    expect(r.received.every((x) => x.verified === true)).toBe(true)
    // the gaps grow: base 300 ms doubled per attempt, jitter keeping at least half of it
    const gaps = r.received.slice(1).map((x, i) => x.at - (r.received[i] as ReceivedRequest).at)
    expect(gaps[0]).toBeGreaterThanOrEqual(140)
    expect(gaps[1]).toBeGreaterThanOrEqual(290)
    expect(r.received.length).toBeLessThan(8)
    const [delivery] = await deliveries(b, endpointId)
    expect(delivery).toMatchObject({ status: 'delivered', attempts: r.received.length })
    // a redelivery carries the same id again
    const redeliver = await b.app.inject({
      method: 'POST',
      url: `/admin/api/webhooks/${endpointId}/deliveries/${delivery?.messageId}/redeliver`,
      headers: bearer(OPERATOR),
    })
    expect(redeliver.statusCode).toBe(202)
    await r.waitFor(() => r.delivered().length === 2)
    expect(r.delivered()[1]?.headers['webhook-id']).toBe(delivery?.messageId)
    // the console shows the delivery and redelivers it through a CSRF-checked form
    const { jar } = await consoleSignIn(b.app, OPERATOR)
    const pageResponse = await browse(b.app, jar, { url: '/admin/webhooks' })
    expect(pageResponse.statusCode).toBe(200)
    expect(pageResponse.body).toContain(String(delivery?.messageId))
    expect(pageResponse.body).toContain(endpointId)
    const action = `/admin/webhooks/${endpointId}/deliveries/${delivery?.messageId}/redeliver`
    const forged = await browse(b.app, jar, { method: 'POST', url: action, form: { csrf: 'forged' } })
    expect(forged.statusCode).toBe(403)
    const sent = await browse(b.app, jar, {
      method: 'POST',
      url: action,
      form: { csrf: csrfOf(pageResponse.body) },
    })
    expect(sent.statusCode).toBe(303)
    await r.waitFor(() => r.delivered().length === 3)
    expect(r.delivered()[2]?.headers['webhook-id']).toBe(delivery?.messageId)
    // the audit trail has the endpoint's addition and both redeliveries
    const audit = await b.app.inject({
      method: 'GET',
      url: '/admin/api/audit?limit=500',
      headers: bearer(OPERATOR),
    })
    const types = (audit.json() as { items: Array<{ type: string }> }).items.map((e) => e.type)
    expect(types.filter((t) => t === 'webhook.added')).toHaveLength(1)
    expect(types.filter((t) => t === 'webhook.redelivered')).toHaveLength(2)
  }, 60_000)

  it('three instances: each message is delivered once', async () => {
    const keyPrefix = `test:${randomBytes(6).toString('hex')}:`
    const env = sharedEnv()
    const [first] = [await broker(env, keyPrefix), await broker(env, keyPrefix), await broker(env, keyPrefix)]
    const r = await receiver()
    await subscribe(first as RunningBroker, r, ['registration.created'])
    const ids: string[] = []
    for (let i = 0; i < 12; i++) ids.push(await createRegistration(first as RunningBroker))
    await r.waitFor((all) => all.length >= 12)
    await new Promise((resolve) => setTimeout(resolve, 500))
    const subjects = r.received.map((x) => x.event.subject).sort()
    expect(subjects).toEqual([...ids].sort())
  }, 60_000)

  it('a master-key rotation re-seals the endpoint secrets: deliveries still sign once the old key is retired', async () => {
    const keyPrefix = `test:${randomBytes(6).toString('hex')}:`
    const oldKey = `old:${randomBytes(32).toString('base64')}`
    const newKey = `new:${randomBytes(32).toString('base64')}`
    const r = await receiver()
    const before = await broker(sharedEnv({ MASTER_KEYS: oldKey }), keyPrefix)
    await subscribe(before, r, ['registration.created'])
    const first = await createRegistration(before)
    await r.waitFor((all) => all.some((x) => x.event.subject === first))
    await before.close()
    brokers.splice(brokers.indexOf(before), 1)

    // every instance restarts with the new key first, and a pass re-seals everything
    const rotating = await broker(sharedEnv({ MASTER_KEYS: `${newKey},${oldKey}` }), keyPrefix)
    const start = await rotating.app.inject({
      method: 'POST',
      url: '/admin/api/keys/rotate',
      headers: bearer(OPERATOR),
    })
    expect(start.statusCode).toBe(202)
    let status: { state: string; failed: number; webhookSecretsResealed: number } | undefined
    const deadline = Date.now() + 30_000
    while (status?.state !== 'completed' && status?.state !== 'failed' && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50))
      status = (
        await rotating.app.inject({ url: '/admin/api/keys/rotation', headers: bearer(OPERATOR) })
      ).json().rotation
    }
    expect(status).toMatchObject({ state: 'completed', failed: 0, webhookSecretsResealed: 1 })
    await rotating.close()
    brokers.splice(brokers.indexOf(rotating), 1)

    // the old key retired: an instance with the new key alone still signs with the endpoint's secret
    const after = await broker(sharedEnv({ MASTER_KEYS: newKey }), keyPrefix)
    const second = await createRegistration(after)
    await r.waitFor((all) => all.some((x) => x.event.subject === second))
    const delivered = r.received.filter((x) => x.event.subject === second)
    expect(delivered.length).toBeGreaterThan(0)
    expect(delivered.every((x) => x.verified === true)).toBe(true)
    expect(r.received.every((x) => x.verified === true)).toBe(true)
  }, 90_000)

  it('the broker SIGKILLed between the state change and the delivery: another instance delivers it', async () => {
    const r = await receiver()
    const doomed = await spawnBroker({
      env: (port) =>
        productionEnv({
          port,
          redisUrl: inject('redisUrl'),
          authorityUrl: emulator.url,
          env: {
            OPERATOR_TOKENS: `ops:${OPERATOR}`,
            UNSAFE_ALLOW_HTTP: 'true',
            WEBHOOK_ALLOW_PRIVATE_ADDRESSES: 'true',
            // after its start-up poll, this instance's dispatcher would not look again for a minute
            WEBHOOK_POLL_INTERVAL_MS: '60000',
            LOG_LEVEL: 'warn',
          },
        }),
    })
    const { env } = doomed
    try {
      const added = await fetch(`${doomed.url}/admin/api/webhooks`, {
        method: 'POST',
        headers: { ...bearer(OPERATOR), 'content-type': 'application/json' },
        body: JSON.stringify({ url: r.url, events: ['registration.created'] }),
      })
      expect(added.status).toBe(201)
      r.secret = ((await added.json()) as { secret: string }).secret
      const values = await consentOverHttp(doomed.url, {
        slug: 'ms-graph-mail',
        username: 'admin@contoso.example',
      })
      doomed.signal('SIGKILL')
      expect((await doomed.exited).signal).toBe('SIGKILL')
      expect(r.received).toHaveLength(0)
      // another instance on the same Redis and master keys
      await broker(
        sharedEnv({ MASTER_KEYS: env.MASTER_KEYS as string, PUBLIC_URL: env.PUBLIC_URL as string }),
        env.REDIS_KEY_PREFIX as string,
      )
      await r.waitFor((all) => all.length === 1)
      expect(r.received[0]?.event.subject).toBe(values.registrationId)
      expect(r.received[0]?.verified).toBe(true)
    } finally {
      await doomed.stop(1000)
    }
  }, 120_000)

  it('refuses endpoints on private addresses unless allowed, and an http URL off loopback', async () => {
    const b = await broker(sharedEnv({ WEBHOOK_ALLOW_PRIVATE_ADDRESSES: 'false' }))
    for (const url of [
      'http://127.0.0.1:9/hook',
      'https://10.1.2.3/hook',
      'https://[::1]/hook',
      'https://169.254.169.254/latest',
    ]) {
      const added = await addEndpoint(b, url)
      expect(added.status).toBe(400)
      expect(added.body.message ?? JSON.stringify(added.body)).toMatch(/private or loopback|must be https/)
    }
    const plain = await addEndpoint(b, 'http://hooks.example.com/x')
    expect(plain.status).toBe(400)
    expect(JSON.stringify(plain.body)).toMatch(/must be https/)
    const unknownType = await addEndpoint(b, 'https://127.0.0.1/x', ['registration.exploded'])
    expect(unknownType.status).toBe(400)
    // the OpenAPI document covers the endpoint management API, every status it answers
    const doc = (await b.app.inject({ method: 'GET', url: '/openapi.json' })).json() as {
      paths: Record<string, Record<string, { responses: Record<string, unknown> }>>
    }
    const statuses = (path: string, method: string) => Object.keys(doc.paths[path]?.[method]?.responses ?? {})
    expect(statuses('/admin/api/webhooks', 'post')).toEqual(
      expect.arrayContaining(['201', '400', '401', '503']),
    )
    expect(statuses('/admin/api/webhooks', 'get')).toEqual(expect.arrayContaining(['200', '401', '503']))
    expect(statuses('/admin/api/webhooks/{id}', 'delete')).toEqual(
      expect.arrayContaining(['204', '404', '503']),
    )
    expect(statuses('/admin/api/webhooks/{id}/deliveries', 'get')).toEqual(
      expect.arrayContaining(['200', '404', '503']),
    )
    expect(statuses('/admin/api/webhooks/{id}/deliveries/{messageId}/redeliver', 'post')).toEqual(
      expect.arrayContaining(['202', '404', '503']),
    )
  }, 30_000)

  it('does not follow a redirect; a slow or huge answer does not hold up the others', async () => {
    const b = await broker(sharedEnv({ WEBHOOK_TIMEOUT_MS: '3000' }))
    const redirecting = await receiver('redirect')
    const slow = await receiver('slow')
    const huge = await receiver('huge')
    const fine = await receiver('ok')
    const redirectId = await subscribe(b, redirecting, ['registration.created'])
    await subscribe(b, slow, ['registration.created'])
    const hugeId = await subscribe(b, huge, ['registration.created'])
    await subscribe(b, fine, ['registration.created'])
    const started = Date.now()
    await createRegistration(b)
    await fine.waitFor((all) => all.length === 1)
    // the well-behaved endpoint got it while the slow one was still trickling its answer
    expect(fine.received[0]?.at).toBeLessThan(started + 2500)
    await redirecting.waitFor((all) => all.length >= 1)
    expect(redirecting.received.every((x) => x.path === '/')).toBe(true)
    await huge.waitFor(() => huge.received.length === 1)
    // The outcomes are recorded once the broker has read the answers: polled, not slept.
    await vi.waitFor(
      async () => {
        const [redirected] = await deliveries(b, redirectId)
        expect(redirected).toMatchObject({ lastStatusCode: 302, lastError: 'redirect not followed' })
        expect(['pending', 'failed']).toContain(redirected?.status)
        const [cut] = await deliveries(b, hugeId)
        expect(cut).toMatchObject({ status: 'delivered', lastStatusCode: 200 })
      },
      { timeout: 10_000, interval: 50 },
    )
  }, 60_000)
})
