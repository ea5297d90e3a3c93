// Consent flows end to end over HTTP: the real broker (Redis store, Entra identity provider) and
// the Entra ID emulator, with the emulator driver playing the user at Microsoft.
import { describe, expect, it } from 'vitest'
import {
  CONTOSO_ADMIN,
  CONTOSO_TENANT_ID,
  CONTOSO_USER,
  FABRIKAM_ADMIN,
  FABRIKAM_TENANT_ID,
  findDemoClient,
} from '../../emulator/demo-data.js'
import type { ConsentKind } from '../../src/consent-kinds.js'
import { sha256Hex } from '../../src/crypto/sha256.js'
import { IdTokenError } from '../../src/entra/id-token.js'
import type { AuditRecord, Registration } from '../../src/store/types.js'
import { obtainToken } from '../support/admin-helpers.js'
import {
  browse,
  CookieJar,
  capturingRefreshTokens,
  consentViaEmulator,
  cookieSigner,
  pageTitle,
  parseRenewedValues,
  pathOf,
  type RunningBroker,
  runConsentViaEmulator,
  startConsentFlow,
} from '../support/broker.js'
import { useEmulator } from '../support/emulator.js'
import { completeAtEmulator } from '../support/emulator-driver.js'
import { useBrokerPerTest } from '../support/use-broker.js'

const MAIL = 'ms-graph-mail'
const LISTENER = 'ms-graph-mail-listener'
const ID_FORMAT =
  /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})@http:\/\/127\.0\.0\.1:3000\/obtain-token$/

const emulator = useEmulator({ resetEach: true })
const start = useBrokerPerTest(emulator)

async function emulatorHook(path: string, body?: unknown): Promise<unknown> {
  const response = await fetch(`${emulator.url}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    ...(body === undefined
      ? {}
      : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  })
  expect(response.status).toBe(200)
  return response.json()
}

async function addFault(fault: Record<string, unknown>): Promise<void> {
  await emulatorHook('/_emulator/faults', fault)
}

async function tokenRequests(grant: string): Promise<number> {
  const stats = (await emulatorHook('/_emulator/stats')) as { token_requests: Record<string, number> }
  return stats.token_requests[grant] ?? 0
}

async function registrations(b: RunningBroker, tenantId?: string): Promise<Registration[]> {
  const page = await b.store.registrations.list({
    ...(tenantId === undefined ? {} : { tenantId }),
    limit: 500,
  })
  return page.items
}

async function auditOf(b: RunningBroker, type: AuditRecord['type']): Promise<AuditRecord[]> {
  const { items } = await b.store.audit.read({ limit: 500 })
  return items.filter((item) => item.type === type)
}

async function consentMetric(
  b: RunningBroker,
  labels: { app: string; kind: ConsentKind; stage: string; reason?: string },
): Promise<number> {
  const metric = await b.app.metrics.consents.get()
  const found = metric.values.find(
    (v) =>
      v.labels.app === labels.app &&
      v.labels.kind === labels.kind &&
      v.labels.stage === labels.stage &&
      v.labels.reason === (labels.reason ?? ''),
  )
  return found?.value ?? 0
}

function expectValidKey(key: string): void {
  const bytes = Buffer.from(key, 'base64')
  expect(bytes).toHaveLength(32)
  expect(bytes.toString('base64')).toBe(key)
}

describe('admin consent (ms-graph-mail)', () => {
  it('ends with ID, Token and Key and an active admin registration, audited and counted', async () => {
    const b = await start()
    const values = await consentViaEmulator(b.app, { slug: MAIL, username: CONTOSO_ADMIN.username })

    expect(values.id).toMatch(ID_FORMAT)
    expect(values.token).toBe(CONTOSO_TENANT_ID)
    expectValidKey(values.key)

    const stored = await b.store.registrations.get(values.registrationId)
    expect(stored?.registration).toMatchObject({
      id: values.registrationId,
      app: MAIL,
      cloud: 'global',
      tenantId: CONTOSO_TENANT_ID,
      kind: 'admin',
      status: 'active',
    })
    expect(stored?.registration.userOid).toBeUndefined()
    expect(stored?.secrets.key).toBe(values.key)
    expect(stored?.secrets.refreshToken).toBeUndefined()

    const consents = (await emulatorHook('/_emulator/consents')) as {
      admin_consents: Array<{ tenant: string; client_id: string; scope: string }>
    }
    expect(consents.admin_consents).toEqual([
      {
        tenant: CONTOSO_TENANT_ID,
        client_id: findDemoClient(MAIL).clientId,
        scope: 'https://graph.microsoft.com/.default',
      },
    ])
    // The proof: one client-credentials call for the tenant.
    expect(await tokenRequests('client_credentials')).toBe(1)

    const completed = await auditOf(b, 'consent.completed')
    expect(completed).toHaveLength(1)
    expect(completed[0]).toMatchObject({
      actor: `user:${CONTOSO_TENANT_ID}/${CONTOSO_ADMIN.oid}`,
      tenantId: CONTOSO_TENANT_ID,
      app: MAIL,
      registrationId: values.registrationId,
      // who, by name too: the actor names the user by GUIDs only
      detail: { kind: 'admin', cloud: 'global', user: CONTOSO_ADMIN.username },
    })
    expect(await consentMetric(b, { app: MAIL, kind: 'admin', stage: 'started' })).toBe(1)
    expect(await consentMetric(b, { app: MAIL, kind: 'admin', stage: 'completed' })).toBe(1)
  })

  it('signs in at organizations first, then sends the admin to the tenant admin-consent URL', async () => {
    const b = await start()
    const started = await startConsentFlow(b.app, { slug: MAIL })
    const authorize = new URL(started.location)
    expect(authorize.pathname).toBe('/organizations/oauth2/v2.0/authorize')
    expect(authorize.searchParams.get('scope')).toBe('openid profile')
    expect(authorize.searchParams.get('code_challenge_method')).toBe('S256')
    expect(authorize.searchParams.get('prompt')).toBe('select_account')
    expect(authorize.searchParams.get('redirect_uri')).toBe('http://127.0.0.1:3000/callback')
    const back = await completeAtEmulator(started.location, { username: CONTOSO_ADMIN.username })
    const phase2 = await browse(b.app, started.jar, { url: pathOf(back) })
    expect(phase2.statusCode).toBe(303)
    const consentUrl = new URL(phase2.headers.location as string)
    expect(consentUrl.pathname).toBe(`/${CONTOSO_TENANT_ID}/v2.0/adminconsent`)
    expect(consentUrl.searchParams.get('scope')).toBe('https://graph.microsoft.com/.default')
    expect(consentUrl.searchParams.get('client_id')).toBe(findDemoClient(MAIL).clientId)
    // A fresh state for the second phase.
    expect(consentUrl.searchParams.get('state')).not.toBe(authorize.searchParams.get('state'))
  })

  it('offers a cloud choice where the app has several and remembers the chosen cloud', async () => {
    const b = await start()
    const startPage = await browse(b.app, new CookieJar(), { url: `/${MAIL}` })
    expect(startPage.body).toMatch(/<select name="cloud"[^>]*>/)
    expect(startPage.body).toContain('<option value="global">')
    expect(startPage.body).toContain('<option value="usgov">')
    const single = await browse(b.app, new CookieJar(), { url: '/ms-graph-user' })
    expect(single.body).not.toContain('<select')

    const values = await consentViaEmulator(b.app, {
      slug: MAIL,
      cloud: 'usgov',
      username: CONTOSO_ADMIN.username,
    })
    const stored = await b.store.registrations.getMeta(values.registrationId)
    expect(stored?.cloud).toBe('usgov')
    const consents = (await emulatorHook('/_emulator/consents')) as {
      admin_consents: Array<{ client_id: string; scope: string }>
    }
    expect(consents.admin_consents).toEqual([
      expect.objectContaining({
        client_id: findDemoClient(MAIL, 'usgov').clientId,
        scope: 'https://graph.microsoft.us/.default',
      }),
    ])
  })

  it("re-activates the tenant's needs_consent registrations once consent is proven again", async () => {
    const b = await start()
    const first = await consentViaEmulator(b.app, { slug: MAIL, username: CONTOSO_ADMIN.username })
    const second = await consentViaEmulator(b.app, { slug: MAIL, username: CONTOSO_ADMIN.username })
    const at = new Date().toISOString()
    const firstMeta = (await b.store.registrations.getMeta(first.registrationId))!
    expect(
      await b.store.registrations.update(first.registrationId, firstMeta.version, {
        status: 'needs_consent',
        statusDetail: { code: 'AADSTS700016', at },
      }),
    ).not.toBeNull()
    const secondMeta = (await b.store.registrations.getMeta(second.registrationId))!
    expect(
      await b.store.registrations.update(second.registrationId, secondMeta.version, {
        status: 'revoked',
        statusDetail: { code: 'operator_revoked', at },
      }),
    ).not.toBeNull()

    const third = await consentViaEmulator(b.app, { slug: MAIL, username: CONTOSO_ADMIN.username })
    expect(third.registrationId).not.toBe(first.registrationId)
    const reactivated = await b.store.registrations.getMeta(first.registrationId)
    expect(reactivated?.status).toBe('active')
    expect(reactivated?.statusDetail).toBeUndefined()
    // A revocation is never undone by someone consenting again.
    expect((await b.store.registrations.getMeta(second.registrationId))?.status).toBe('revoked')
    const completed = await auditOf(b, 'consent.completed')
    expect(completed.at(-1)?.detail).toMatchObject({ reactivated: 1 })
  })

  it('retries the proof while the consent propagates', async () => {
    const b = await start()
    await addFault({
      grantType: 'client_credentials',
      tenant: CONTOSO_TENANT_ID,
      count: 2,
      status: 400,
      error: 'unauthorized_client',
      errorCode: 700016,
    })
    const values = await consentViaEmulator(b.app, { slug: MAIL, username: CONTOSO_ADMIN.username })
    expect(values.token).toBe(CONTOSO_TENANT_ID)
    expect(await tokenRequests('client_credentials')).toBe(3)
  })

  it('fails with 503 and creates nothing when consent is still not effective after the budget', async () => {
    const b = await start()
    await addFault({
      grantType: 'client_credentials',
      tenant: CONTOSO_TENANT_ID,
      count: 100,
      status: 400,
      error: 'unauthorized_client',
      errorCode: 700016,
    })
    const startedAt = Date.now()
    const run = await runConsentViaEmulator(b.app, { slug: MAIL, username: CONTOSO_ADMIN.username })
    expect(run.response.statusCode).toBe(503)
    expect(pageTitle(run.response.body)).toBe('The consent has not taken effect yet')
    expect(run.response.body).toContain(`href="/${MAIL}"`)
    // CONSENT_PROOF_BUDGET_MS is 5000 in tests: 1 s, 2 s, then the rest of the budget.
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(5000)
    expect(await tokenRequests('client_credentials')).toBeGreaterThanOrEqual(3)
    expect(await registrations(b)).toEqual([])
    const failed = await auditOf(b, 'consent.failed')
    expect(failed).toHaveLength(1)
    expect(failed[0]).toMatchObject({
      actor: `user:${CONTOSO_TENANT_ID}/${CONTOSO_ADMIN.oid}`,
      app: MAIL,
      // (the admin-consent phase knows the user from its flow record)
      detail: {
        reason: 'consent_not_effective',
        kind: 'admin',
        user: CONTOSO_ADMIN.username,
        upstream: 'AADSTS700016',
      },
    })
    expect(
      await consentMetric(b, { app: MAIL, kind: 'admin', stage: 'failed', reason: 'consent_not_effective' }),
    ).toBe(1)
  })

  it('stops proving at once when the broker’s own client secret is refused', async () => {
    const b = await start()
    await addFault({ grantType: 'client_credentials', count: 100, status: 401 })
    const run = await runConsentViaEmulator(b.app, { slug: MAIL, username: CONTOSO_ADMIN.username })
    expect(run.response.statusCode).toBe(502)
    expect(pageTitle(run.response.body)).toBe('Microsoft sign-in failed')
    expect(await tokenRequests('client_credentials')).toBe(1)
    expect(await registrations(b)).toEqual([])
  })

  it('refuses a non-admin, even a member of a tenant that already consented', async () => {
    const b = await start()
    await consentViaEmulator(b.app, { slug: MAIL, username: CONTOSO_ADMIN.username })
    const before = await registrations(b, CONTOSO_TENANT_ID)
    expect(before).toHaveLength(1)

    const run = await runConsentViaEmulator(b.app, { slug: MAIL, username: CONTOSO_USER.username })
    expect(run.response.statusCode).toBe(403)
    expect(pageTitle(run.response.body)).toBe('An administrator must consent')
    expect(run.response.body).toContain('Global Administrator')
    expect(run.values).toBeUndefined()
    // Stopped after sign-in: never sent to the admin-consent page.
    expect(run.callbacks).toHaveLength(1)
    expect(await registrations(b, CONTOSO_TENANT_ID)).toEqual(before)
    const failed = await auditOf(b, 'consent.failed')
    expect(failed[0]).toMatchObject({
      actor: `user:${CONTOSO_TENANT_ID}/${CONTOSO_USER.oid}`,
      detail: { reason: 'not_admin', kind: 'admin', user: CONTOSO_USER.username },
    })
  })

  it('rejects a forged admin-consent callback (own valid state, victim tenant) and creates nothing', async () => {
    const b = await start()
    // The victim tenant has consented: client credentials for it would succeed for anyone.
    await consentViaEmulator(b.app, { slug: MAIL, username: CONTOSO_ADMIN.username })
    const victimBefore = await registrations(b, CONTOSO_TENANT_ID)

    // The attacker, an admin of their own tenant, gets a valid second-phase state…
    const attacker = await startConsentFlow(b.app, { slug: MAIL })
    const back = await completeAtEmulator(attacker.location, { username: FABRIKAM_ADMIN.username })
    const phase2 = await browse(b.app, attacker.jar, { url: pathOf(back) })
    expect(phase2.statusCode).toBe(303)
    const state = new URL(phase2.headers.location as string).searchParams.get('state')!
    // …and instead of consenting, claims the victim's tenant.
    const forged = await browse(b.app, attacker.jar, {
      url: `/callback?admin_consent=True&tenant=${CONTOSO_TENANT_ID}&state=${encodeURIComponent(state)}`,
    })
    expect(forged.statusCode).toBe(403)
    expect(pageTitle(forged.body)).toBe('Consent came back for a different tenant')
    expect(forged.body).not.toContain('data-field="key"')
    expect(await registrations(b, CONTOSO_TENANT_ID)).toEqual(victimBefore)
    expect(await registrations(b, FABRIKAM_TENANT_ID)).toEqual([])
    // No proof was even attempted for the claimed tenant.
    expect(await tokenRequests('client_credentials')).toBe(1)
    const failed = await auditOf(b, 'consent.failed')
    expect(failed[0]).toMatchObject({
      actor: `user:${FABRIKAM_TENANT_ID}/${FABRIKAM_ADMIN.oid}`,
      detail: { reason: 'tenant_mismatch' },
    })
  })

  it('declining at the admin-consent page creates nothing', async () => {
    const b = await start()
    const run = await runConsentViaEmulator(b.app, {
      slug: MAIL,
      username: CONTOSO_ADMIN.username,
      adminConsentDecision: 'deny',
    })
    expect(run.callbacks).toHaveLength(2)
    expect(run.response.statusCode).toBe(400)
    expect(pageTitle(run.response.body)).toBe('Authorization was not granted')
    expect(run.response.body).toContain('AADSTS65004')
    expect(await registrations(b)).toEqual([])
    expect(await tokenRequests('client_credentials')).toBe(0)
  })
})

describe('delegated consent (ms-graph-mail-listener)', () => {
  it('ends with ID, Token and Key and a delegated registration holding the refresh token', async () => {
    const seen: string[] = []
    const b = await start({ decorateIdp: capturingRefreshTokens(seen) })
    const started = await startConsentFlow(b.app, { slug: LISTENER })
    const scope = new URL(started.location).searchParams.get('scope')
    expect(scope).toBe(
      'openid profile offline_access https://graph.microsoft.com/Mail.ReadWrite https://graph.microsoft.com/Mail.Send https://graph.microsoft.com/User.Read',
    )
    const values = await consentViaEmulator(b.app, { slug: LISTENER, username: CONTOSO_USER.username })
    expect(values.id).toMatch(ID_FORMAT)
    expect(values.token).toBe(CONTOSO_TENANT_ID)
    expectValidKey(values.key)
    const stored = await b.store.registrations.get(values.registrationId)
    expect(stored?.registration).toMatchObject({
      app: LISTENER,
      cloud: 'global',
      tenantId: CONTOSO_TENANT_ID,
      kind: 'delegated',
      userOid: CONTOSO_USER.oid,
      userName: CONTOSO_USER.username,
      status: 'active',
    })
    expect(seen).toHaveLength(1)
    expect(stored?.secrets).toEqual({ key: values.key, refreshToken: seen[0] })
    expect(await tokenRequests('client_credentials')).toBe(0)
    expect(await consentMetric(b, { app: LISTENER, kind: 'delegated', stage: 'completed' })).toBe(1)
  })

  it('consenting again renews: same ID and Key, the Key not shown again, new refresh token, re-activated', async () => {
    const seen: string[] = []
    const b = await start({ decorateIdp: capturingRefreshTokens(seen) })
    const first = await consentViaEmulator(b.app, { slug: LISTENER, username: CONTOSO_USER.username })
    const meta = (await b.store.registrations.getMeta(first.registrationId))!
    await b.store.registrations.update(first.registrationId, meta.version, {
      status: 'needs_consent',
      statusDetail: { code: 'AADSTS50173', at: new Date().toISOString() },
    })

    const again = await runConsentViaEmulator(b.app, { slug: LISTENER, username: CONTOSO_USER.username })
    const page = again.response.body
    expect(again.response.statusCode).toBe(200)
    expect(pageTitle(page)).toBe('Authorization renewed')
    // Whoever can sign in as the user does not walk away with the Key the integration uses now.
    expect(page).not.toContain(first.key)
    expect(page).not.toContain('data-field="key"')
    expect(again.values).toBeUndefined()
    expect(parseRenewedValues(page)).toEqual({
      id: first.id,
      token: first.token,
      registrationId: first.registrationId,
    })
    expect(page).toContain('already authorized this integration')
    expect(page).toContain('<strong>Nothing needs pasting:</strong>')
    expect(page).toContain(`<a href="/${LISTENER}/manage">`)
    expect(page).toContain('with a new ID and Key, shown once')
    const stored = await b.store.registrations.get(first.registrationId)
    expect(stored?.secrets.key).toBe(first.key)
    // The integration keeps working with the ID, Token and Key it already has.
    expect((await obtainToken(b.app, first, LISTENER)).status).toBe(200)
    expect(stored?.registration.status).toBe('active')
    expect(stored?.registration.statusDetail).toBeUndefined()
    expect(seen).toHaveLength(2)
    expect(seen[1]).not.toBe(seen[0])
    expect(stored?.secrets.refreshToken).toBe(seen[1])
    expect(await registrations(b, CONTOSO_TENANT_ID)).toHaveLength(1)

    // Another user of the same tenant gets a registration of their own.
    const other = await consentViaEmulator(b.app, { slug: LISTENER, username: CONTOSO_ADMIN.username })
    expect(other.registrationId).not.toBe(first.registrationId)
    expect(other.key).not.toBe(first.key)
  })

  it('a revoked registration is not revived: consenting again makes a new one', async () => {
    const b = await start()
    const first = await consentViaEmulator(b.app, { slug: LISTENER, username: CONTOSO_USER.username })
    const meta = (await b.store.registrations.getMeta(first.registrationId))!
    await b.store.registrations.update(
      first.registrationId,
      meta.version,
      { status: 'revoked', statusDetail: { code: 'operator_revoked', at: new Date().toISOString() } },
      { refreshToken: null },
    )
    const second = await consentViaEmulator(b.app, { slug: LISTENER, username: CONTOSO_USER.username })
    expect(second.registrationId).not.toBe(first.registrationId)
    // A lost Key is replaced so: the new registration's page shows its own, new Key.
    expectValidKey(second.key)
    expect(second.key).not.toBe(first.key)
    expect((await b.store.registrations.getMeta(first.registrationId))?.status).toBe('revoked')
  })

  it('declining creates nothing', async () => {
    const b = await start()
    const run = await runConsentViaEmulator(b.app, {
      slug: LISTENER,
      username: CONTOSO_USER.username,
      decision: 'deny',
    })
    expect(run.response.statusCode).toBe(400)
    expect(pageTitle(run.response.body)).toBe('Authorization was not granted')
    expect(run.response.body).toContain(`href="/${LISTENER}"`)
    expect(await registrations(b)).toEqual([])
    expect(await tokenRequests('authorization_code')).toBe(0)
    // Nobody signed in: counted and logged, kept out of the audit trail (strangers can't flood it).
    expect(await auditOf(b, 'consent.failed')).toEqual([])
    expect(
      await consentMetric(b, { app: LISTENER, kind: 'delegated', stage: 'failed', reason: 'cancelled' }),
    ).toBe(1)
  })

  it('an answer without a refresh token is a failure and creates nothing', async () => {
    const b = await start({
      decorateIdp: (idp) => ({
        ...idp,
        async redeemCode(app, redemption) {
          const { idToken } = await idp.redeemCode(app, redemption)
          return { idToken }
        },
      }),
    })
    const run = await runConsentViaEmulator(b.app, { slug: LISTENER, username: CONTOSO_USER.username })
    expect(run.response.statusCode).toBe(502)
    expect(pageTitle(run.response.body)).toBe('Microsoft did not grant lasting access')
    expect(await registrations(b)).toEqual([])
  })

  it('an ID token signed by a key the broker does not trust is rejected', async () => {
    const b = await start()
    // The first sign-in loads the emulator's keys into the broker's cache.
    await consentViaEmulator(b.app, { slug: LISTENER, username: CONTOSO_USER.username })
    await emulatorHook('/_emulator/keys/rotate', { keepOld: false })
    const run = await runConsentViaEmulator(b.app, { slug: LISTENER, username: CONTOSO_ADMIN.username })
    expect(run.response.statusCode).toBe(502)
    expect(pageTitle(run.response.body)).toBe('The sign-in could not be verified')
    expect(await registrations(b)).toHaveLength(1)
    // The ID token was refused, so nobody is signed in: a metric, not an audit event.
    expect(await auditOf(b, 'consent.failed')).toEqual([])
    expect(
      await consentMetric(b, {
        app: LISTENER,
        kind: 'delegated',
        stage: 'failed',
        reason: 'invalid_id_token',
      }),
    ).toBe(1)
  })

  it('an ID-token validation error thrown by the identity provider renders as a failure', async () => {
    const b = await start({
      decorateIdp: (idp) => ({
        ...idp,
        async redeemCode() {
          throw new IdTokenError('issuer', 'id token rejected (issuer does not match its tenant)')
        },
      }),
    })
    const run = await runConsentViaEmulator(b.app, { slug: LISTENER, username: CONTOSO_USER.username })
    expect(run.response.statusCode).toBe(502)
    expect(await registrations(b)).toEqual([])
  })

  it('Microsoft failing at code redemption: 503 when unavailable, 502 on an OAuth error', async () => {
    const b = await start()
    await addFault({ grantType: 'authorization_code', count: 1, status: 503 })
    const unavailable = await runConsentViaEmulator(b.app, {
      slug: LISTENER,
      username: CONTOSO_USER.username,
    })
    expect(unavailable.response.statusCode).toBe(503)
    expect(pageTitle(unavailable.response.body)).toBe('Microsoft could not be reached')

    await addFault({ grantType: 'authorization_code', count: 1, reset: true })
    const reset = await runConsentViaEmulator(b.app, { slug: LISTENER, username: CONTOSO_USER.username })
    expect(reset.response.statusCode).toBe(503)

    await addFault({
      grantType: 'authorization_code',
      count: 1,
      status: 400,
      error: 'invalid_grant',
      errorCode: 70008,
    })
    const oauth = await runConsentViaEmulator(b.app, { slug: LISTENER, username: CONTOSO_USER.username })
    expect(oauth.response.statusCode).toBe(502)
    expect(pageTitle(oauth.response.body)).toBe('Microsoft sign-in failed')
    expect(await registrations(b)).toEqual([])
    expect(await auditOf(b, 'consent.failed')).toEqual([])
    const failures = (reason: string) =>
      consentMetric(b, { app: LISTENER, kind: 'delegated', stage: 'failed', reason })
    expect([await failures('idp_unavailable'), await failures('idp_error')]).toEqual([2, 1])
  })
})

describe('callback protection', () => {
  async function signedInCallback(b: RunningBroker, slug = LISTENER) {
    const started = await startConsentFlow(b.app, { slug })
    const back = await completeAtEmulator(started.location, { username: CONTOSO_USER.username })
    return { ...started, callback: pathOf(back), state: new URL(started.location).searchParams.get('state')! }
  }

  it('without the flow cookie: 400, and the flow is left intact for its own browser', async () => {
    const b = await start()
    const { jar, callback } = await signedInCallback(b)
    const elsewhere = await browse(b.app, new CookieJar(), { url: callback })
    expect(elsewhere.statusCode).toBe(400)
    expect(pageTitle(elsewhere.body)).toBe('No authorization in progress')
    expect(elsewhere.body).toContain('href="/"')
    expect(await registrations(b)).toEqual([])

    const own = await browse(b.app, jar, { url: callback })
    expect(own.statusCode).toBe(303)
    expect(own.headers.location).toBe('/result')
  })

  it('with a tampered cookie: 400', async () => {
    const b = await start()
    const { jar, callback } = await signedInCallback(b)
    const signed = jar.get('cb_consent_flow')!
    const tampered = `${signed.slice(0, -2)}xx`
    const response = await b.app.inject({ url: callback, headers: { cookie: `cb_consent_flow=${tampered}` } })
    expect(response.statusCode).toBe(400)
    expect(pageTitle(response.body)).toBe('No authorization in progress')
  })

  it('a state that is not the flow’s: 403, nothing created, the flow goes on for its own browser', async () => {
    const b = await start()
    const { jar, callback } = await signedInCallback(b)
    const forged = new URL(callback, 'http://x')
    forged.searchParams.set('state', 'attacker-state')
    const cookie = jar.header('/callback')!
    const response = await b.app.inject({ url: pathOf(forged), headers: { cookie } })
    expect(response.statusCode).toBe(403)
    expect(pageTitle(response.body)).toBe('This response does not belong to your authorization')
    // The flow cookie is left as it was, and the genuine callback still completes the flow.
    expect(response.headers['set-cookie']).toBeUndefined()
    expect(await registrations(b)).toEqual([])
    expect(await tokenRequests('authorization_code')).toBe(0)
    const own = await b.app.inject({ url: callback, headers: { cookie } })
    expect(own.statusCode).toBe(303)
    expect(own.headers.location).toBe('/result')
  })

  it('a replayed callback: 409, nothing more created', async () => {
    const b = await start()
    const { jar, callback } = await signedInCallback(b)
    const cookie = jar.header('/callback')!
    const first = await b.app.inject({ url: callback, headers: { cookie } })
    expect(first.statusCode).toBe(303)
    const replay = await b.app.inject({ url: callback, headers: { cookie } })
    expect(replay.statusCode).toBe(409)
    expect(pageTitle(replay.body)).toBe('This authorization was already used')
    expect(replay.body).toContain(`href="/${LISTENER}"`)
    expect(await registrations(b)).toHaveLength(1)
    expect(await tokenRequests('authorization_code')).toBe(1)
  })

  it('the same browser reopening a used callback: 400, saying a used link lands there and the values were shown once', async () => {
    const b = await start()
    const { jar, callback } = await signedInCallback(b)
    const first = await browse(b.app, jar, { url: callback })
    expect(first.statusCode).toBe(303)
    // The browser dropped the flow cookie with the first answer: nothing names the flow any more.
    const reopened = await browse(b.app, jar, { url: callback })
    expect(reopened.statusCode).toBe(400)
    expect(pageTitle(reopened.body)).toBe('No authorization in progress')
    expect(reopened.body).toContain('A link already used lands here too')
    expect(reopened.body).toContain('were shown once, on the page that followed')
    expect(reopened.body).toContain('Nothing was created by this page.')
    expect(await registrations(b)).toHaveLength(1)
  })

  it('concurrent deliveries of one callback complete it once', async () => {
    const b = await start()
    const { jar, callback } = await signedInCallback(b)
    const cookie = jar.header('/callback')!
    const answers = await Promise.all(
      Array.from({ length: 5 }, () => b.app.inject({ url: callback, headers: { cookie } })),
    )
    expect(answers.map((a) => a.statusCode).sort()).toEqual([303, 409, 409, 409, 409])
    expect(await registrations(b)).toHaveLength(1)
  })

  it('an expired flow: 400, nothing created', async () => {
    const b = await start()
    const { jar, callback } = await signedInCallback(b)
    const unsigned = cookieSigner(b.app).unsign(jar.get('cb_consent_flow')!)
    expect(unsigned.valid).toBe(true)
    const flowId = unsigned.value!.split('.')[1]!
    // What the TTL does after 10 minutes.
    await b.store.ephemeral.delete(`consent:flow:${sha256Hex(flowId)}`)
    const response = await browse(b.app, jar, { url: callback })
    expect(response.statusCode).toBe(400)
    expect(pageTitle(response.body)).toBe('Your authorization expired')
    expect(await registrations(b)).toEqual([])
  })

  it('escapes an XSS payload in error_description (and in error)', async () => {
    const b = await start()
    const started = await startConsentFlow(b.app, { slug: LISTENER })
    const state = new URL(started.location).searchParams.get('state')!
    const payload = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    const query = new URLSearchParams({ error: 'access_denied', error_description: payload, state })
    const cookie = started.jar.header('/callback')!
    const response = await b.app.inject({ url: `/callback?${query}`, headers: { cookie } })
    expect(response.statusCode).toBe(400)
    expect(response.body).not.toContain('<script>alert(1)')
    expect(response.body).not.toContain('<img src=x')
    expect(response.body).toContain(
      '&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=&quot;alert(2)&quot;&gt;',
    )

    const again = await startConsentFlow(b.app, { slug: LISTENER })
    const errorOnly = new URLSearchParams({
      error: '<svg onload=alert(3)>',
      state: new URL(again.location).searchParams.get('state')!,
    })
    const second = await b.app.inject({
      url: `/callback?${errorOnly}`,
      headers: { cookie: again.jar.header('/callback')! },
    })
    // no OAuth error code: a malformed callback, whose text is not shown at all
    expect(second.statusCode).toBe(400)
    expect(pageTitle(second.body)).toBe('Incomplete response from Microsoft')
    expect(second.body).not.toContain('<svg')
    expect(second.body).not.toContain('svg onload')
    expect(await registrations(b)).toEqual([])
  })

  it('shows at most 400 characters of what Microsoft said', async () => {
    const b = await start()
    const started = await startConsentFlow(b.app, { slug: LISTENER })
    const state = new URL(started.location).searchParams.get('state')!
    const long = `AADSTS65004: ${'x'.repeat(3000)}`
    const query = new URLSearchParams({ error: 'access_denied', error_description: long, state })
    const response = await b.app.inject({
      url: `/callback?${query}`,
      headers: { cookie: started.jar.header('/callback')! },
    })
    const shown = /<code class="provider-message">([^<]*)<\/code>/.exec(response.body)?.[1]
    expect(shown?.startsWith('AADSTS65004: xxx')).toBe(true)
    expect(shown?.length).toBe(400)
  })

  it('a callback with neither code nor error: 400', async () => {
    const b = await start()
    const started = await startConsentFlow(b.app, { slug: LISTENER })
    const state = new URL(started.location).searchParams.get('state')!
    const response = await b.app.inject({
      url: `/callback?state=${encodeURIComponent(state)}`,
      headers: { cookie: started.jar.header('/callback')! },
    })
    expect(response.statusCode).toBe(400)
    expect(pageTitle(response.body)).toBe('Incomplete response from Microsoft')
  })

  it('the callback URL alone never completes an admin consent without the signed-in phase', async () => {
    const b = await start()
    // A sign-in-phase flow answered with admin-consent parameters: the phase decides, not the query.
    const started = await startConsentFlow(b.app, { slug: MAIL })
    const state = new URL(started.location).searchParams.get('state')!
    await emulatorHook(`/_emulator/tenants/${CONTOSO_TENANT_ID}/admin-consent`, {
      clientId: findDemoClient(MAIL).clientId,
    })
    const response = await b.app.inject({
      url: `/callback?admin_consent=True&tenant=${CONTOSO_TENANT_ID}&state=${encodeURIComponent(state)}`,
      headers: { cookie: started.jar.header('/callback')! },
    })
    expect(response.statusCode).toBe(400)
    expect(pageTitle(response.body)).toBe('Incomplete response from Microsoft')
    expect(await registrations(b)).toEqual([])
    expect(await tokenRequests('client_credentials')).toBe(0)
  })
})
