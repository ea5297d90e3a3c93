// Tenant self-service `/{app}/manage` against real Redis and the emulator: a tenant administrator
// signs in through Microsoft (the consent flow's `manage` purpose, back through /callback) and sees
// and revokes only their own tenant's registrations.
import { beforeAll, describe, expect, inject, it } from 'vitest'
import { CONTOSO_TENANT_ID, FABRIKAM_TENANT_ID } from '../../emulator/demo-data.js'
import { createAdminRegistration } from '../../src/services/registrations.js'
import { bearer, csrfOf, obtainToken, operatorToken, storedSession } from '../support/admin-helpers.js'
import {
  browse,
  type ConsentValues,
  CookieJar,
  consentViaEmulator,
  formCsrf,
  pageTitle,
  pathOf,
  startBroker,
} from '../support/broker.js'
import { completeAtEmulator } from '../support/emulator-driver.js'
import { REFUSED_EXAMPLES } from '../support/one-line-text.js'
import { useBrokerOnRedis } from '../support/use-broker.js'

const OPERATOR = operatorToken('ops')
const { emulator, broker } = useBrokerOnRedis({ env: { OPERATOR_TOKENS: `ops:${OPERATOR}` } })
let contosoMail: ConsentValues
let contosoMail2: ConsentValues
let fabrikamMail: ConsentValues
let fabrikamMail2: ConsentValues

/** Signs in at `/{slug}/manage` as `username`; returns the browser and the page it lands on. */
async function manageSignIn(slug: string, username: string) {
  const jar = new CookieJar()
  const signInPage = await browse(broker.app, jar, { url: `/${slug}/manage` })
  expect(signInPage.statusCode).toBe(200)
  expect(signInPage.body).toContain(`action="/${slug}/manage/sign-in"`)
  const csrf = /name="csrf" value="([^"]+)"/.exec(signInPage.body)![1]!
  const started = await browse(broker.app, jar, {
    method: 'POST',
    url: `/${slug}/manage/sign-in`,
    form: { csrf },
  })
  expect(started.statusCode).toBe(303)
  const back = await completeAtEmulator(String(started.headers.location), { username })
  const callback = await browse(broker.app, jar, { url: pathOf(back) })
  if (callback.statusCode !== 303) return { jar, page: callback }
  expect(callback.headers.location).toBe(`/${slug}/manage?done=signed_in`)
  const page = await browse(broker.app, jar, { url: String(callback.headers.location) })
  return { jar, page }
}

async function status(id: string) {
  return (await broker.store.registrations.getMeta(id))?.status
}

beforeAll(async () => {
  contosoMail = await consentViaEmulator(broker.app, {
    slug: 'ms-graph-mail',
    username: 'admin@contoso.example',
  })
  contosoMail2 = await consentViaEmulator(broker.app, {
    slug: 'ms-graph-mail',
    username: 'admin@contoso.example',
  })
  fabrikamMail = await consentViaEmulator(broker.app, {
    slug: 'ms-graph-mail',
    username: 'admin@fabrikam.example',
  })
  fabrikamMail2 = await consentViaEmulator(broker.app, {
    slug: 'ms-graph-mail',
    username: 'admin@fabrikam.example',
  })
})

describe('tenant self-service', () => {
  it('shows a tenant administrator their own registrations only, and how to remove consent at Microsoft', async () => {
    const { jar, page } = await manageSignIn('ms-graph-mail', 'admin@fabrikam.example')
    expect(page.statusCode).toBe(200)
    expect(page.headers['cache-control']).toBe('no-store')
    expect(page.body).toContain(FABRIKAM_TENANT_ID)
    expect(page.body).toContain(fabrikamMail.registrationId)
    expect(page.body).toContain(fabrikamMail2.registrationId)
    expect(page.body).not.toContain(CONTOSO_TENANT_ID)
    expect(page.body).not.toContain(contosoMail.registrationId)
    // How to remove the app's consent on Microsoft's side.
    expect(page.body).toContain('Enterprise applications')
    expect(page.body).toContain('<strong>Properties</strong>, then <strong>Delete</strong>')
    expect(page.body).toContain(
      'https://learn.microsoft.com/en-us/entra/identity-platform/howto-convert-app-to-be-multi-tenant',
    )
    expect(page.body).toContain(
      broker.config.apps.find((a) => a.slug === 'ms-graph-mail')!.clouds.global!.clientId,
    )

    expect(jar.header('/ms-graph-mail/manage')).toContain('cb_manage=')

    // A tenant named in the query string changes nothing.
    const withQuery = await browse(broker.app, jar, {
      url: `/ms-graph-mail/manage?tenant=${CONTOSO_TENANT_ID}`,
    })
    expect(withQuery.body).not.toContain(contosoMail.registrationId)
  })

  it('a new sign-in ends the session the browser had', async () => {
    const { jar } = await manageSignIn('ms-graph-mail', 'admin@fabrikam.example')
    const first = jar.get('cb_manage')!
    const csrf = await formCsrf(broker.app, jar, '/ms-graph-mail')
    const started = await browse(broker.app, jar, {
      method: 'POST',
      url: '/ms-graph-mail/manage/sign-in',
      form: { csrf },
    })
    expect(started.statusCode).toBe(303)
    const back = await completeAtEmulator(String(started.headers.location), {
      username: 'admin@fabrikam.example',
    })
    const callback = await browse(broker.app, jar, { url: pathOf(back) })
    expect(callback.headers.location).toBe('/ms-graph-mail/manage?done=signed_in')
    expect(jar.get('cb_manage')).not.toBe(first)
    expect((await browse(broker.app, jar, { url: '/ms-graph-mail/manage' })).body).not.toContain(
      'Sign in as a tenant administrator',
    )
    // The first session's cookie opens nothing any more.
    const old = await broker.app.inject({
      url: '/ms-graph-mail/manage',
      headers: { cookie: `cb_manage=${first}` },
    })
    expect(old.body).toContain('Sign in as a tenant administrator')
  })

  it('sets a session cookie that is HttpOnly, SameSite=Lax, signed and scoped to the app’s manage pages', async () => {
    const jar = new CookieJar()
    const formToken = await formCsrf(broker.app, jar, '/ms-graph-mail/manage')
    const started = await browse(broker.app, jar, {
      method: 'POST',
      url: '/ms-graph-mail/manage/sign-in',
      form: { csrf: formToken },
    })
    const back = await completeAtEmulator(String(started.headers.location), {
      username: 'admin@fabrikam.example',
    })
    const callback = await browse(broker.app, jar, { url: pathOf(back) })
    const setCookie = ([] as string[]).concat(callback.headers['set-cookie'] as string[] | string)
    const manage = setCookie.find((line) => line.startsWith('cb_manage='))!
    expect(manage).toMatch(/HttpOnly/i)
    expect(manage).toMatch(/SameSite=Lax/i)
    expect(manage).toMatch(/Path=\/ms-graph-mail\/manage/)
    // Signed: tampering with the value makes it worthless.
    const tampered = manage.split(';')[0]!.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'))
    const page = await broker.app.inject({ url: '/ms-graph-mail/manage', headers: { cookie: tampered } })
    expect(page.body).toContain('Sign in as a tenant administrator')
    // Redis holds the session under a hash of its id, sealed: neither the id nor its contents in clear.
    const csrf = csrfOf((await browse(broker.app, jar, { url: '/ms-graph-mail/manage' })).body)
    const stored = await storedSession(broker, 'manage-session', jar.get('cb_manage')!)
    expect(stored.keys.some((key) => key.includes(stored.id))).toBe(false)
    const sealed = new RegExp(`^v1\\.${broker.config.keyRing.current.id}\\.[A-Za-z0-9_-]+$`)
    expect(stored.record).toMatch(sealed)
    expect(stored.record).not.toContain('admin@fabrikam.example')
    for (const stringValue of stored.strings) {
      expect(stringValue).not.toContain(stored.id)
      expect(stringValue).not.toContain(csrf)
      expect(stringValue).not.toContain('"tenantId"')
    }
  })

  it('refuses a non-administrator of the tenant', async () => {
    const { jar, page } = await manageSignIn('ms-graph-mail', 'user@fabrikam.example')
    expect(page.statusCode).toBe(403)
    expect(page.body).toContain('<a class="button" href="/ms-graph-mail/manage">Try again</a>')
    expect(jar.get('cb_manage')).toBeUndefined()
    const again = await browse(broker.app, jar, { url: '/ms-graph-mail/manage' })
    expect(again.body).toContain('Sign in as a tenant administrator')
    expect(again.body).not.toContain(fabrikamMail.registrationId)
  })

  it('a session of one app is not a session of another app', async () => {
    const { jar } = await manageSignIn('ms-graph-mail', 'admin@fabrikam.example')
    const signed = jar.get('cb_manage')!
    const other = await broker.app.inject({
      url: '/ms-graph-user/manage',
      headers: { cookie: `cb_manage=${signed}` },
    })
    expect(other.statusCode).toBe(200)
    expect(other.body).toContain('Sign in as a tenant administrator')
  })

  it('Fabrikam cannot revoke Contoso: not by guessing an id, not by replaying a form, not by naming the tenant', async () => {
    const fabrikam = await manageSignIn('ms-graph-mail', 'admin@fabrikam.example')
    const contoso = await manageSignIn('ms-graph-mail', 'admin@contoso.example')
    const fabrikamCsrf = csrfOf(fabrikam.page.body)
    const contosoCsrf = csrfOf(contoso.page.body)
    expect(contoso.page.body).toContain(contosoMail.registrationId)

    // 1. Guessing (or learning) a Contoso registration id: not found, as if it didn't exist.
    const guessed = await browse(broker.app, fabrikam.jar, {
      method: 'POST',
      url: `/ms-graph-mail/manage/registrations/${contosoMail.registrationId}/revoke`,
      form: { csrf: fabrikamCsrf, reason: 'guess' },
    })
    expect(guessed.statusCode).toBe(404)
    expect(guessed.body).not.toContain(CONTOSO_TENANT_ID)

    // 2. Replaying Contoso's form (its csrf token) from Fabrikam's session: refused.
    const replayed = await browse(broker.app, fabrikam.jar, {
      method: 'POST',
      url: `/ms-graph-mail/manage/registrations/${contosoMail.registrationId}/revoke`,
      form: { csrf: contosoCsrf, reason: 'replay' },
    })
    expect(replayed.statusCode).toBe(403)

    // 3. Naming Contoso's tenant in the form or the query of revoke-all: ignored, Fabrikam's own scope.
    const named = await browse(broker.app, fabrikam.jar, {
      method: 'POST',
      url: `/ms-graph-mail/manage/revoke-all?tenant=${CONTOSO_TENANT_ID}`,
      form: {
        csrf: fabrikamCsrf,
        reason: 'offboarding',
        tenant: CONTOSO_TENANT_ID,
        tenantId: CONTOSO_TENANT_ID,
      },
    })
    expect(named.statusCode).toBe(303)
    expect(await status(contosoMail.registrationId)).toBe('active')
    expect(await status(contosoMail2.registrationId)).toBe('active')
    expect(await status(fabrikamMail.registrationId)).toBe('revoked')
    expect(await status(fabrikamMail2.registrationId)).toBe('revoked')

    // 4. Replaying Contoso's own legitimate form after Contoso signed out: the session is gone.
    const contosoCookie = contoso.jar.get('cb_manage')!
    const signOut = await browse(broker.app, contoso.jar, {
      method: 'POST',
      url: '/ms-graph-mail/manage/sign-out',
      form: { csrf: contosoCsrf },
    })
    expect(signOut.statusCode).toBe(303)
    const audit = await broker.app.inject({ url: '/admin/api/audit?limit=500', headers: bearer(OPERATOR) })
    const signedOut = (audit.json() as { items: Array<Record<string, unknown>> }).items.filter(
      (e) => e.type === 'tenant_admin.signed_out' && e.tenantId === CONTOSO_TENANT_ID,
    )
    expect(signedOut).toHaveLength(1)
    expect(signedOut[0]).toMatchObject({ app: 'ms-graph-mail', detail: { cloud: 'global' } })
    expect(signedOut[0]?.actor).toMatch(new RegExp(`^tenant-admin:${CONTOSO_TENANT_ID}/`))
    const stale = await broker.app.inject({
      method: 'POST',
      url: `/ms-graph-mail/manage/registrations/${contosoMail.registrationId}/revoke`,
      headers: {
        cookie: `cb_manage=${contosoCookie}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      payload: new URLSearchParams({ csrf: contosoCsrf, reason: 'replay' }).toString(),
    })
    expect(stale.statusCode).toBe(401)
    expect(await status(contosoMail.registrationId)).toBe('active')
  })

  it('revokes with the administrator’s name and reason; obtain-token then answers revoked', async () => {
    const mine = await consentViaEmulator(broker.app, {
      slug: 'ms-graph-user',
      username: 'admin@contoso.example',
    })
    expect((await obtainToken(broker.app, mine, 'ms-graph-user')).status).toBe(200)
    const { jar, page } = await manageSignIn('ms-graph-user', 'admin@contoso.example')
    expect(page.body).toContain(mine.registrationId)

    const missingCsrf = await browse(broker.app, jar, {
      method: 'POST',
      url: `/ms-graph-user/manage/registrations/${mine.registrationId}/revoke`,
      form: { reason: 'no csrf' },
    })
    expect(missingCsrf.statusCode).toBe(403)
    const noSession = await broker.app.inject({
      method: 'POST',
      url: `/ms-graph-user/manage/registrations/${mine.registrationId}/revoke`,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ csrf: csrfOf(page.body), reason: 'no session' }).toString(),
    })
    expect(noSession.statusCode).toBe(401)
    expect(await status(mine.registrationId)).toBe('active')

    const revoked = await browse(broker.app, jar, {
      method: 'POST',
      url: `/ms-graph-user/manage/registrations/${mine.registrationId}/revoke`,
      form: { csrf: csrfOf(page.body), reason: 'moving to another SOAR <b>' },
    })
    expect(revoked.statusCode).toBe(303)
    const after = await browse(broker.app, jar, { url: String(revoked.headers.location) })
    expect(after.body).toContain('The registration is revoked')
    expect(after.body).toContain('moving to another SOAR &lt;b&gt;')

    const meta = await broker.store.registrations.getMeta(mine.registrationId)
    expect(meta?.statusDetail).toMatchObject({
      code: 'tenant_admin_revoked',
      by: 'admin@contoso.example',
      reason: 'moving to another SOAR <b>',
    })
    const denied = await obtainToken(broker.app, mine, 'ms-graph-user')
    expect(denied.status).toBe(401)
    expect(denied.body.error?.code).toBe('revoked')
    expect(denied.body.error?.message).toContain('admin@contoso.example')

    const audit = await broker.app.inject({ url: '/admin/api/audit?limit=500', headers: bearer(OPERATOR) })
    const events = (audit.json() as { items: Array<Record<string, unknown>> }).items
    const revocation = events.find(
      (e) => e.type === 'registration.revoked' && e.registrationId === mine.registrationId,
    )
    expect(revocation?.actor).toMatch(new RegExp(`^tenant-admin:${CONTOSO_TENANT_ID}/`))
    expect(events.some((e) => e.type === 'tenant_admin.signed_in' && e.tenantId === CONTOSO_TENANT_ID)).toBe(
      true,
    )
  })

  it('refuses a reason with any control, separator or bidi character on its error page, revoking nothing', async () => {
    const { registration } = await createAdminRegistration(broker.store, {
      app: 'ms-graph-mail',
      cloud: 'global',
      tenantId: FABRIKAM_TENANT_ID,
      now: new Date().toISOString(),
    })
    const { jar, page } = await manageSignIn('ms-graph-mail', 'admin@fabrikam.example')
    const csrf = csrfOf(page.body)
    for (const [name, character] of REFUSED_EXAMPLES) {
      for (const url of [
        `/ms-graph-mail/manage/registrations/${registration.id}/revoke`,
        '/ms-graph-mail/manage/revoke-all',
      ]) {
        const refused = await browse(broker.app, jar, {
          method: 'POST',
          url,
          form: { csrf, reason: `moving${character}on` },
        })
        expect(refused.statusCode, `${name} ${url}`).toBe(400)
        expect(refused.headers['content-type']).toMatch(/text\/html/)
        expect(refused.body).toContain('reason')
      }
    }
    expect(await status(registration.id)).toBe('active')
  })

  it('limits sign-in starts per client address, sharing the consent pages’ budget', async () => {
    const limited = await startBroker({
      authorityUrl: emulator.url,
      redisUrl: inject('redisUrl'),
      env: { CONSENT_RATE_LIMIT_PER_IP: '4' },
    })
    try {
      const consentStart = async () => {
        const jar = new CookieJar()
        const csrf = await formCsrf(limited.app, jar, '/ms-graph-mail')
        return browse(limited.app, jar, { method: 'POST', url: '/ms-graph-mail/start', form: { csrf } })
      }
      const manageSignInStart = async () => {
        const jar = new CookieJar()
        const csrf = await formCsrf(limited.app, jar, '/ms-graph-mail/manage')
        return browse(limited.app, jar, {
          method: 'POST',
          url: '/ms-graph-mail/manage/sign-in',
          form: { csrf },
        })
      }
      // Two of each spend the budget of four; then each page is refused: neither has a budget of its
      // own (each alone has spent only two).
      const statuses: number[] = []
      for (const start of [consentStart, manageSignInStart, consentStart, manageSignInStart]) {
        statuses.push((await start()).statusCode)
      }
      const refusedSignIn = await manageSignInStart()
      const refusedStart = await consentStart()
      statuses.push(refusedSignIn.statusCode, refusedStart.statusCode)
      expect(statuses).toEqual([303, 303, 303, 303, 429, 429])
      expect(Number(refusedSignIn.headers['retry-after'])).toBeGreaterThan(0)
      expect(refusedSignIn.body).toContain('too many sign-in attempts from this address')
      expect(refusedStart.body).toContain('too many authorization attempts from this address')
    } finally {
      await limited.close()
    }
  })

  it('shows the sign-in page, not an error, to a visitor without a session, and 404 for an unknown app', async () => {
    const page = await broker.app.inject({ url: '/ms-graph-mail/manage', headers: { accept: 'text/html' } })
    expect(page.statusCode).toBe(200)
    expect(pageTitle(page.body)).toContain('Manage')
    const unknown = await broker.app.inject({ url: '/no-such-app/manage', headers: { accept: 'text/html' } })
    expect(unknown.statusCode).toBe(404)
  })
})
