// A slow admin-consent proof never keeps the browser on a hanging request: with Microsoft's token
// answer delayed (the emulator's delay fault, as consent propagation does with real Microsoft), the
// callback answers at once with a redirect to a waiting page that reloads itself (meta refresh, no
// script) under the flow cookie, and reloading it ends on the result page, shown once — or on the
// usual failure page. Another broker instance (same Redis) can answer the waiting page.
import { randomBytes } from 'node:crypto'
import { describe, expect, inject, it } from 'vitest'
import { CONTOSO_ADMIN, CONTOSO_TENANT_ID } from '../../emulator/demo-data.js'
import {
  browse,
  isProofWaitingPage,
  pageTitle,
  parseConsentValues,
  pathOf,
  startBroker,
  startConsentFlow,
  waitOutProof,
} from '../support/broker.js'
import { randomMasterKeys } from '../support/config.js'
import { useEmulator } from '../support/emulator.js'
import { completeAtEmulator } from '../support/emulator-driver.js'
import { useBrokerPerTest } from '../support/use-broker.js'

const MAIL = 'ms-graph-mail'
const emulator = useEmulator({ resetEach: true })
const start = useBrokerPerTest(emulator)

async function addFault(fault: Record<string, unknown>): Promise<void> {
  const response = await fetch(`${emulator.url}/_emulator/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(fault),
  })
  expect(response.status).toBe(200)
}

/** Signs the admin in and consents at the emulator; returns the browser and the admin-consent callback. */
async function upToAdminConsentCallback(app: Parameters<typeof startConsentFlow>[0]) {
  const started = await startConsentFlow(app, { slug: MAIL })
  const signedIn = await completeAtEmulator(started.location, {
    username: CONTOSO_ADMIN.username,
    decision: 'accept',
  })
  const toConsent = await browse(app, started.jar, { url: pathOf(signedIn) })
  expect(toConsent.statusCode).toBe(303)
  const consented = await completeAtEmulator(String(toConsent.headers.location), {
    username: CONTOSO_ADMIN.username,
    decision: 'accept',
  })
  return { jar: started.jar, callback: pathOf(consented) }
}

describe('a slow admin-consent proof', () => {
  it('answers the callback at once with the waiting page, which ends on the result page, once', async () => {
    // Microsoft answers the proof after 5 s, within a proof budget of 20 s.
    const b = await start({ env: { CONSENT_PROOF_BUDGET_MS: '20000' } })
    await addFault({ grantType: 'client_credentials', tenant: CONTOSO_TENANT_ID, count: 1, delayMs: 5000 })
    const { jar, callback } = await upToAdminConsentCallback(b.app)

    const answered = await browse(b.app, jar, { url: callback })
    expect(answered.statusCode).toBe(303)
    expect(answered.headers.location).toBe('/callback/status')
    expect(answered.headers['cache-control']).toBe('no-store')

    const waiting = await browse(b.app, jar, { url: '/callback/status' })
    expect(isProofWaitingPage(waiting)).toBe(true)
    expect(waiting.body).toMatch(/<meta http-equiv="refresh" content="\d+">/)
    expect(pageTitle(waiting.body)).toBe('Confirming the consent with Microsoft…')
    expect(await b.store.registrations.list({ tenantId: CONTOSO_TENANT_ID })).toMatchObject({ items: [] })

    const done = await waitOutProof(b.app, jar)
    expect(done.statusCode).toBe(303)
    expect(done.headers.location).toBe('/result')
    const result = await browse(b.app, jar, { url: '/result' })
    const values = parseConsentValues(result.body)
    expect(values?.token).toBe(CONTOSO_TENANT_ID)
    expect((await b.store.registrations.getMeta(values!.registrationId))?.status).toBe('active')

    // Shown once: the flow cookie is gone and the proof with it.
    const again = await browse(b.app, jar, { url: '/callback/status' })
    expect(again.statusCode).toBe(400)
    expect(isProofWaitingPage(again)).toBe(false)
  })

  it('ends on the usual failure page when the consent never takes effect', async () => {
    const b = await start({ env: { CONSENT_PROOF_BUDGET_MS: '3000' } })
    await addFault({
      grantType: 'client_credentials',
      tenant: CONTOSO_TENANT_ID,
      count: 100,
      status: 400,
      error: 'unauthorized_client',
      errorCode: 700016,
    })
    const { jar, callback } = await upToAdminConsentCallback(b.app)
    const answered = await browse(b.app, jar, { url: callback })
    expect(answered.headers.location).toBe('/callback/status')
    const failed = await waitOutProof(b.app, jar)
    expect(failed.statusCode).toBe(503)
    expect(pageTitle(failed.body)).toBe('The consent has not taken effect yet')
    expect(failed.body).toContain(`href="/${MAIL}"`)
  })

  it('a link to the waiting page during the sign-in does not end the flow in progress', async () => {
    const b = await start()
    const started = await startConsentFlow(b.app, { slug: MAIL })
    // What a link from another site does: a top-level GET, which carries the (SameSite=Lax) cookie.
    const linked = await browse(b.app, started.jar, { url: '/callback/status' })
    expect(linked.statusCode).toBe(400)
    expect(isProofWaitingPage(linked)).toBe(false)
    const signedIn = await completeAtEmulator(started.location, {
      username: CONTOSO_ADMIN.username,
      decision: 'accept',
    })
    const toConsent = await browse(b.app, started.jar, { url: pathOf(signedIn) })
    expect(toConsent.statusCode, toConsent.body).toBe(303)
    const consented = await completeAtEmulator(String(toConsent.headers.location), {
      username: CONTOSO_ADMIN.username,
      decision: 'accept',
    })
    let done = await browse(b.app, started.jar, { url: pathOf(consented) })
    if (done.headers.location === '/callback/status') done = await waitOutProof(b.app, started.jar)
    expect(done.headers.location).toBe('/result')
    const values = parseConsentValues((await browse(b.app, started.jar, { url: '/result' })).body)
    expect(values?.token).toBe(CONTOSO_TENANT_ID)
  })

  it('lets another instance answer the waiting page (the state is in the store)', async () => {
    // Two instances of one deployment: the same Redis keys, master keys and cookie secret.
    const shared = {
      keyPrefix: `proof-wait:${randomBytes(4).toString('hex')}:`,
      env: { MASTER_KEYS: randomMasterKeys(), COOKIE_SECRET: randomBytes(32).toString('hex') },
    }
    const b = await start(shared)
    const other = await startBroker({ authorityUrl: emulator.url, redisUrl: inject('redisUrl'), ...shared })
    try {
      await addFault({ grantType: 'client_credentials', tenant: CONTOSO_TENANT_ID, count: 1, delayMs: 4000 })
      const { jar, callback } = await upToAdminConsentCallback(b.app)
      expect((await browse(b.app, jar, { url: callback })).headers.location).toBe('/callback/status')
      expect(isProofWaitingPage(await browse(other.app, jar, { url: '/callback/status' }))).toBe(true)
      const done = await waitOutProof(other.app, jar)
      expect(done.headers.location).toBe('/result')
      expect(parseConsentValues((await browse(other.app, jar, { url: '/result' })).body)?.token).toBe(
        CONTOSO_TENANT_ID,
      )
    } finally {
      await other.close()
    }
  })
})
