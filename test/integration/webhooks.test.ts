// Notifications end to end: a real Redis, the emulator, brokers in-process and a real HTTP receiver
// that verifies every signature with the `standardwebhooks` verifier. Short retry settings keep
// the file quick; the schedule itself is the production code's.
import { randomBytes } from 'node:crypto'
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest'
import { CONTOSO_TENANT_ID } from '../../emulator/demo-data.js'
import { type RunningEmulator, startEmulator } from '../../emulator/server.js'
import { bearer, obtainToken, operatorToken } from '../support/admin-helpers.js'
import { consentViaEmulator, type RunningBroker, startBroker } from '../support/broker.js'
import { randomMasterKeys } from '../support/config.js'
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

async function broker(env: Record<string, string>, keyPrefix = `test:${randomBytes(6).toString('hex')}:`) {
  const running = await startBroker({
    authorityUrl: emulator.url,
    redisUrl: inject('redisUrl'),
    keyPrefix,
    env,
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
    let registrationId = ''
    for (const [i, { cause, code, family, words }] of causes.entries()) {
      const values = await consentViaEmulator(b.app, { slug: DELEGATED, username: 'user@contoso.example' })
      registrationId = values.registrationId
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
    await consentViaEmulator(b.app, { slug: DELEGATED, username: 'user@contoso.example' })
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
