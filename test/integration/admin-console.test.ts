// The admin console (/admin) over HTTP as a browser without JavaScript: sign-in, session cookie,
// CSRF on every form, listing and filtering, revocation with a reason, audit trail, sign-out.
import { beforeAll, describe, expect, it } from 'vitest'
import { CONTOSO_TENANT_ID, FABRIKAM_TENANT_ID } from '../../emulator/demo-data.js'
import {
  bearer,
  consoleSignIn,
  csrfOf,
  freshAdminRegistration,
  obtainToken,
  operatorToken,
  storedSession,
} from '../support/admin-helpers.js'
import {
  browse,
  type ConsentValues,
  CookieJar,
  consentViaEmulator,
  type RunningBroker,
} from '../support/broker.js'
import { REFUSED_EXAMPLES } from '../support/one-line-text.js'
import { useBrokerOnRedis } from '../support/use-broker.js'

const ALICE = operatorToken('alice')
const BOB = operatorToken('bob')
const { broker, emulator } = useBrokerOnRedis({ env: { OPERATOR_TOKENS: `alice:${ALICE},bob:${BOB}` } })
let contoso: ConsentValues
let fabrikam: ConsentValues

function form(app: RunningBroker['app'], jar: CookieJar, url: string, fields: Record<string, string>) {
  return browse(app, jar, { method: 'POST', url, form: fields })
}

async function status(id: string) {
  return (await broker.store.registrations.getMeta(id))?.status
}

/**
 * Posts a reason with each refused character (one-line text) to the revocation forms of a fresh
 * registration and its tenant: every one answers its error page, and nothing is revoked. Takes a
 * signed-in jar, since sign-ins are rate-limited per address and this file signs in often.
 */
async function expectRefusedReasons(jar: CookieJar, csrf: string): Promise<void> {
  const { tenantId, registration } = await freshAdminRegistration(broker.store)
  for (const [name, character] of REFUSED_EXAMPLES) {
    for (const url of [
      `/admin/registrations/${registration.id}/revoke`,
      `/admin/tenants/${tenantId}/revoke`,
    ]) {
      const refused = await form(broker.app, jar, url, { csrf, reason: `offboarded${character}now` })
      expect(refused.statusCode, `${name} ${url}`).toBe(400)
      expect(refused.headers['content-type']).toMatch(/text\/html/)
      expect(refused.body).toContain('reason')
    }
  }
  expect(await status(registration.id)).toBe('active')
}

beforeAll(async () => {
  contoso = await consentViaEmulator(broker.app, { slug: 'ms-graph-mail', username: 'admin@contoso.example' })
  fabrikam = await consentViaEmulator(broker.app, {
    slug: 'ms-graph-mail',
    username: 'admin@fabrikam.example',
  })
})

describe('sign-in', () => {
  it('sends a visitor without a session to the sign-in page, served under the strict CSP', async () => {
    for (const url of [
      '/admin',
      '/admin/home',
      '/admin/tenants',
      '/admin/registrations',
      '/admin/audit',
      '/admin/keys',
    ]) {
      const response = await broker.app.inject({ url, headers: { accept: 'text/html' } })
      expect(response.statusCode, url).toBe(303)
      expect(response.headers.location).toBe('/admin/sign-in')
    }
    const page = await broker.app.inject({ url: '/admin/sign-in' })
    expect(page.statusCode).toBe(200)
    const csp = String(page.headers['content-security-policy'])
    expect(csp).toContain("script-src 'self'")
    expect(csp).not.toContain('unsafe-inline')
    expect(page.headers['cache-control']).toBe('no-store')
    // No inline script or style: the page works without JavaScript and under the CSP.
    expect(page.body).not.toMatch(/<script(?![^>]*\bsrc=)/)
    expect(page.body).not.toMatch(/\sstyle=|<style/)
    expect(page.body).toContain('type="password"')
  })

  it('refuses a wrong token without opening a session, and a sign-in form without its csrf token', async () => {
    const jar = new CookieJar()
    const page = await browse(broker.app, jar, { url: '/admin/sign-in' })
    const csrf = csrfOf(page.body)
    const wrong = await form(broker.app, jar, '/admin/sign-in', { token: operatorToken('alice'), csrf })
    expect(wrong.statusCode).toBe(401)
    expect(wrong.body).toContain('not an operator token')
    expect(jar.get('cb_admin')).toBeUndefined()

    const fresh = new CookieJar()
    await browse(broker.app, fresh, { url: '/admin/sign-in' })
    const noCsrf = await form(broker.app, fresh, '/admin/sign-in', { token: ALICE })
    expect(noCsrf.statusCode).toBe(403)
    const badCsrf = await form(broker.app, fresh, '/admin/sign-in', { token: ALICE, csrf: 'x'.repeat(43) })
    expect(badCsrf.statusCode).toBe(403)
    // A form posted from elsewhere has no sign-in cookie of ours at all.
    const foreign = await form(broker.app, new CookieJar(), '/admin/sign-in', { token: ALICE, csrf })
    expect(foreign.statusCode).toBe(403)
    expect(fresh.get('cb_admin')).toBeUndefined()
  })

  it('opens an HttpOnly, SameSite=Strict, signed session cookie scoped to /admin', async () => {
    const { jar, response } = await consoleSignIn(broker.app, ALICE)
    expect(response.statusCode).toBe(303)
    // The first page is the home page: what needs attention.
    expect(response.headers.location).toBe('/admin/home')
    const setCookie = ([] as string[]).concat(response.headers['set-cookie'] as string[] | string)
    const session = setCookie.find((line) => line.startsWith('cb_admin='))!
    expect(session).toMatch(/HttpOnly/i)
    expect(session).toMatch(/SameSite=Strict/i)
    expect(session).toMatch(/Path=\/admin/)
    const value = jar.get('cb_admin')!
    // The cookie carries a random id and a signature, never the operator token.
    expect(value).not.toContain(ALICE)
    const tampered = `${value.slice(0, 10)}${value[10] === 'a' ? 'b' : 'a'}${value.slice(11)}`
    const rejected = await broker.app.inject({
      url: '/admin/tenants',
      headers: { cookie: `cb_admin=${tampered}` },
    })
    expect(rejected.statusCode).toBe(303)
    // Redis holds the session under a hash of its id, sealed: neither the id nor the operator in clear.
    const csrf = csrfOf((await browse(broker.app, jar, { url: '/admin/tenants' })).body)
    const stored = await storedSession(broker, 'admin-session', value)
    expect(stored.keys.some((key) => key.includes(stored.id))).toBe(false)
    // The record is an envelope sealed under the current master key, not the session in JSON.
    const sealed = new RegExp(`^v1\\.${broker.config.keyRing.current.id}\\.[A-Za-z0-9_-]+$`)
    expect(stored.record).toMatch(sealed)
    expect(stored.record).not.toContain('alice')
    for (const stringValue of stored.strings) {
      expect(stringValue).not.toContain(stored.id)
      expect(stringValue).not.toContain(csrf)
      expect(stringValue).not.toContain('"operator"')
    }
  })
})

describe('pages', () => {
  it('lists tenants, filters registrations and shows one, escaping everything', async () => {
    const { jar } = await consoleSignIn(broker.app, ALICE)
    const tenants = await browse(broker.app, jar, { url: '/admin/tenants' })
    expect(tenants.statusCode).toBe(200)
    expect(tenants.body).toContain(CONTOSO_TENANT_ID)
    expect(tenants.body).toContain(FABRIKAM_TENANT_ID)
    expect(tenants.body).toContain('Signed in as <strong>alice</strong>')
    // Each tenant by its label (the consenting user's domain by default) beside its short id.
    expect(tenants.body).toContain(
      `<span class="tenant-label" title="fabrikam.example">fabrikam.example</span> <span class="short-id"><a href="/admin/registrations?tenant=${FABRIKAM_TENANT_ID}" title="${FABRIKAM_TENANT_ID}"><code>${FABRIKAM_TENANT_ID.slice(0, 8)}…</code></a>`,
    )

    const filtered = await browse(broker.app, jar, {
      url: `/admin/registrations?tenant=${FABRIKAM_TENANT_ID}&app=&status=`,
    })
    expect(filtered.statusCode).toBe(200)
    expect(filtered.body).toContain(fabrikam.registrationId)
    expect(filtered.body).not.toContain(contoso.registrationId)
    // Who consented, admin consent included: the UPN from the ID token.
    expect(filtered.body).toContain('<th>Consented by</th>')
    expect(filtered.body).toContain('admin@fabrikam.example')
    // The tenant's revocation is a link to its confirmation page, never a form on this page.
    expect(filtered.body).toContain(`href="/admin/tenants/${FABRIKAM_TENANT_ID}/revoke"`)
    expect(filtered.body).not.toContain(`action="/admin/tenants/${FABRIKAM_TENANT_ID}/revoke"`)
    // Ids shortened to 8 characters, the full value on hover and in a copy button hidden without script.
    expect(filtered.body).toContain(
      `title="${fabrikam.registrationId}"><code>${fabrikam.registrationId.slice(0, 8)}…</code>`,
    )
    expect(filtered.body).toContain(`data-copy-text="${FABRIKAM_TENANT_ID}"`)
    expect(filtered.body).toMatch(/<button type="button" class="copy" data-copy-text="[^"]+"[^>]* hidden>/)
    // Times relative to the server's clock, the exact UTC on hover.
    expect(filtered.body).toMatch(
      /<time datetime="[^"]+" title="\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC">(just now|\d+ (minute|hour)s? ago)<\/time>/,
    )

    const injected = await browse(broker.app, jar, { url: '/admin/registrations?tenant=%3Cscript%3E' })
    expect(injected.statusCode).toBe(400)
    expect(injected.body).not.toContain('<script>')

    const detail = await browse(broker.app, jar, { url: `/admin/registrations/${contoso.registrationId}` })
    expect(detail.statusCode).toBe(200)
    expect(detail.body).toContain(contoso.registrationId)
    expect(detail.body).not.toContain(contoso.key)
    // Revoke is a link to a confirmation page: no one-click revocation.
    expect(detail.body).toContain(`href="/admin/registrations/${contoso.registrationId}/revoke"`)
    expect(detail.body).not.toContain(`action="/admin/registrations/${contoso.registrationId}/revoke"`)
  })
})

describe('forms', () => {
  it('refuse a missing, wrong or foreign CSRF token and a missing session; then revoke with a reason', async () => {
    const alice = await consoleSignIn(broker.app, ALICE)
    const bob = await consoleSignIn(broker.app, BOB)
    // The confirmation page: what will be revoked, and a form asking for the reason.
    const page = await browse(broker.app, alice.jar, {
      url: `/admin/registrations/${contoso.registrationId}/revoke`,
    })
    expect(page.statusCode).toBe(200)
    expect(page.body).toContain('<h1>Revoke a registration?</h1>')
    expect(page.body).toContain(`<code class="full-id">${contoso.registrationId}</code>`)
    expect(page.body).toContain(`<code class="full-id">${CONTOSO_TENANT_ID}</code>`)
    expect(page.body).toContain('ms-graph-mail (admin consent)')
    expect(page.body).toContain(`action="/admin/registrations/${contoso.registrationId}/revoke"`)
    expect(page.body).toMatch(/<input type="text" id="reason" name="reason" required/)
    expect(page.body).toContain(`href="/admin/registrations/${contoso.registrationId}">Cancel</a>`)
    // Opening it changes nothing.
    expect(await status(contoso.registrationId)).toBe('active')
    const unknown = await browse(broker.app, alice.jar, { url: '/admin/registrations/no-such-id/revoke' })
    expect(unknown.statusCode).toBe(404)
    const signedOut = await broker.app.inject({
      url: `/admin/registrations/${contoso.registrationId}/revoke`,
    })
    expect(signedOut.statusCode).toBe(303)
    expect(signedOut.headers.location).toBe('/admin/sign-in')
    const csrf = csrfOf(page.body)
    const bobCsrf = csrfOf((await browse(broker.app, bob.jar, { url: '/admin/tenants' })).body)
    const url = `/admin/registrations/${contoso.registrationId}/revoke`

    const missing = await form(broker.app, alice.jar, url, { reason: 'test' })
    expect(missing.statusCode).toBe(403)
    expect(missing.headers['content-type']).toMatch(/text\/html/)
    // The token is checked before the body is validated: a bad form is still a CSRF failure.
    const missingAndInvalid = await form(broker.app, alice.jar, url, {})
    expect(missingAndInvalid.statusCode).toBe(403)
    // One character changed (to a different one: the token may itself end in "A").
    const wrongCsrf = `${csrf.slice(0, -1)}${csrf.endsWith('A') ? 'Q' : 'A'}`
    expect(wrongCsrf).not.toBe(csrf)
    const wrong = await form(broker.app, alice.jar, url, { reason: 'test', csrf: wrongCsrf })
    expect(wrong.statusCode).toBe(403)
    const foreign = await form(broker.app, alice.jar, url, { reason: 'test', csrf: bobCsrf })
    expect(foreign.statusCode).toBe(403)
    const noSession = await form(broker.app, new CookieJar(), url, { reason: 'test', csrf })
    expect(noSession.statusCode).toBe(401)
    expect(await status(contoso.registrationId)).toBe('active')

    const blankReason = await form(broker.app, alice.jar, url, { csrf, reason: '  ' })
    expect(blankReason.statusCode).toBe(400)
    expect(blankReason.body).toContain('reason')
    const noReason = await form(broker.app, alice.jar, url, { csrf })
    expect(noReason.statusCode).toBe(400)
    expect(noReason.body).toContain('reason')
    expect(await status(contoso.registrationId)).toBe('active')

    const done = await form(broker.app, alice.jar, url, {
      csrf,
      reason: 'offboarded <img src=x onerror=alert(1)>',
    })
    expect(done.statusCode).toBe(303)
    expect(done.headers.location).toBe(`/admin/registrations/${contoso.registrationId}?done=revoked`)
    const after = await browse(broker.app, alice.jar, { url: String(done.headers.location) })
    expect(after.body).toContain('The registration is revoked.')
    expect(after.body).toContain('offboarded &lt;img src=x onerror=alert(1)&gt;')
    expect(after.body).not.toContain('<img src=x')
    expect(after.body).toContain('by <strong>alice</strong>')
    const denied = await obtainToken(broker.app, contoso, 'ms-graph-mail')
    expect(denied.body.error?.code).toBe('revoked')
    // The audit trail records the revocation with the operator and the reason given.
    const revocations = (await broker.store.audit.read({ limit: 500 })).items.filter(
      (event) => event.type === 'registration.revoked' && event.registrationId === contoso.registrationId,
    )
    expect(revocations).toEqual([
      expect.objectContaining({
        actor: 'operator:alice',
        detail: expect.objectContaining({ reason: 'offboarded <img src=x onerror=alert(1)>' }),
      }),
    ])
    // Once revoked, its confirmation page says so and offers no form.
    const again = await browse(broker.app, alice.jar, {
      url: `/admin/registrations/${contoso.registrationId}/revoke`,
    })
    expect(again.body).toContain('already revoked')
    expect(again.body).not.toContain(`action="/admin/registrations/${contoso.registrationId}/revoke"`)

    const audit = await browse(broker.app, alice.jar, { url: '/admin/audit' })
    expect(audit.statusCode).toBe(200)
    expect(audit.body).toContain('registration.revoked')
    // the latest first: the revocation just made comes before the consents made earlier
    expect(audit.body).toContain('Newest first.')
    expect(audit.body.indexOf('registration.revoked')).toBeLessThan(audit.body.indexOf('consent.completed'))
    const api = await broker.app.inject({
      url: '/admin/api/audit?order=desc&limit=500',
      headers: bearer(ALICE),
    })
    const newestId = (api.json() as { items: Array<{ id: string }> }).items[1]!.id
    const older = await browse(broker.app, alice.jar, { url: `/admin/audit?before=${newestId}` })
    expect(older.statusCode).toBe(200)
    expect(older.body).toContain('Latest events')
    // before the first possible id: nothing older; a cursor past a stream id's range: 400
    const beforeAll = await browse(broker.app, alice.jar, { url: '/admin/audit?before=0-0' })
    expect(beforeAll.statusCode).toBe(200)
    expect(beforeAll.body).toContain('No older events.')
    for (const query of ['cursor=99999999999999999999-1', 'before=1-18446744073709551616']) {
      const refused = await browse(broker.app, alice.jar, { url: `/admin/audit?${query}` })
      expect(refused.statusCode, query).toBe(400)
      expect(refused.body, query).toContain('audit cursor is out of range')
    }
    const recent = await browse(broker.app, alice.jar, { url: '/admin/audit?window=1h' })
    expect(recent.statusCode).toBe(200)
    expect(recent.body).toContain('registration.revoked')
    expect(recent.body).toContain('<strong>the last hour</strong>')
    expect(audit.body).toContain('operator:alice')
    expect(audit.body).not.toContain('<img src=x')
  })

  it('revokes a tenant after its confirmation page, with a reason, CSRF-checked', async () => {
    const { jar } = await consoleSignIn(broker.app, BOB)
    const url = `/admin/tenants/${FABRIKAM_TENANT_ID}/revoke`
    const page = await browse(broker.app, jar, { url })
    expect(page.statusCode).toBe(200)
    expect(page.body).toContain('<h1>Revoke a tenant?</h1>')
    expect(page.body).toMatch(/: \d+ registrations? not yet revoked\./)
    expect(page.body).toContain(fabrikam.registrationId.slice(0, 8))
    expect(page.body).toContain(`action="${url}"`)
    const forApp = await browse(broker.app, jar, { url: `${url}?app=ms-graph-mail` })
    expect(forApp.body).toContain('<strong>ms-graph-mail</strong>')
    expect(forApp.body).toContain('<input type="hidden" name="app" value="ms-graph-mail">')
    expect(await status(fabrikam.registrationId)).toBe('active')
    const forged = await form(broker.app, jar, url, { reason: 'forged' })
    expect(forged.statusCode).toBe(403)
    const noReason = await form(broker.app, jar, url, { csrf: csrfOf(page.body) })
    expect(noReason.statusCode).toBe(400)
    await expectRefusedReasons(jar, csrfOf(page.body))
    expect(await status(fabrikam.registrationId)).toBe('active')
    const done = await form(broker.app, jar, url, { reason: 'tenant left', csrf: csrfOf(page.body) })
    expect(done.statusCode).toBe(303)
    expect(String(done.headers.location)).toContain('done=tenant_revoked')
    expect(await status(fabrikam.registrationId)).toBe('revoked')
    const after = await browse(broker.app, jar, { url: String(done.headers.location) })
    expect(after.body).toMatch(/\d+ registrations? revoked\./)
    const tenantEvents = (await broker.store.audit.read({ limit: 500 })).items.filter(
      (event) => event.type === 'tenant.revoked' && event.tenantId === FABRIKAM_TENANT_ID,
    )
    expect(tenantEvents).toEqual([
      expect.objectContaining({
        actor: 'operator:bob',
        detail: expect.objectContaining({ reason: 'tenant left' }),
      }),
    ])
    const nothingLeft = await browse(broker.app, jar, { url })
    expect(nothingLeft.body).toContain('no registration left to revoke')
  })

  it('confirms a big tenant’s revocation from one page of its registrations, saying "at least"', async () => {
    const tenantId = 'b16b16b1-0000-4000-8000-000000000051'
    const iso = new Date().toISOString()
    for (let i = 0; i < 51; i++) {
      const created = await broker.store.registrations.create(
        {
          id: `big-tenant-${i}`,
          app: 'ms-graph-mail',
          cloud: 'global',
          tenantId,
          kind: 'admin',
          status: 'active',
          createdAt: iso,
          updatedAt: iso,
          consentedAt: iso,
        },
        { key: Buffer.alloc(32, i).toString('base64') },
      )
      expect(created.created).toBe(true)
    }
    const { jar } = await consoleSignIn(broker.app, ALICE)
    const page = await browse(broker.app, jar, { url: `/admin/tenants/${tenantId}/revoke` })
    expect(page.statusCode).toBe(200)
    expect(page.body).toContain('more registrations than this page reads; at least 50 not yet revoked')
    expect(page.body).toContain('Revoke all of them')
    expect(page.body).toContain('<h2>The first 20</h2>')
    const done = await form(broker.app, jar, `/admin/tenants/${tenantId}/revoke`, {
      csrf: csrfOf(page.body),
      reason: 'tenant closed',
    })
    expect(done.statusCode).toBe(303)
    expect(String(done.headers.location)).toContain('count=51')
    const revoked = await browse(broker.app, jar, { url: String(done.headers.location) })
    expect(revoked.body).toContain('51 registrations revoked.')

    // The notice counts what its own redirect says; a count that is no decimal number is refused.
    // (This test's session: another console sign-in would spend the address's sign-in budget.)
    const list = '/admin/registrations?done=tenant_revoked'
    for (const [count, notice] of [
      ['3', '3 registrations revoked.'],
      ['1', '1 registration revoked.'],
      ['0', '0 registrations revoked.'],
      ['999999999', '999999999 registrations revoked.'],
    ] as const) {
      const shown = await browse(broker.app, jar, { url: `${list}&count=${count}` })
      expect(shown.statusCode, count).toBe(200)
      expect(shown.body, count).toContain(notice)
    }
    for (const count of ['1e400', '0x10', '1e3', '-1', '1.5', '%201', '01', '1000000000', 'Infinity', '']) {
      const shown = await browse(broker.app, jar, { url: `${list}&count=${count}` })
      expect(shown.statusCode, count).toBe(400)
      expect(shown.body, count).toContain('querystring/count must be a whole number in decimal digits')
      expect(shown.body, count).not.toContain('Infinity registrations')
    }
  })

  it('starts a key rotation from the keys page, CSRF-checked', async () => {
    const { jar } = await consoleSignIn(broker.app, ALICE)
    const page = await browse(broker.app, jar, { url: '/admin/keys' })
    expect(page.statusCode).toBe(200)
    expect(page.body).toContain('Newest key')
    const forged = await form(broker.app, jar, '/admin/keys/rotate', {})
    expect(forged.statusCode).toBe(403)
    const started = await form(broker.app, jar, '/admin/keys/rotate', { csrf: csrfOf(page.body) })
    expect(started.statusCode).toBe(303)
    expect(String(started.headers.location)).toMatch(/^\/admin\/keys\?done=rotation_(started|running)$/)
    const after = await browse(broker.app, jar, { url: String(started.headers.location) })
    expect(after.body).toMatch(/Last pass<\/th><td>(running|completed)/)
  })

  it('signs out (CSRF-checked): the old cookie no longer opens a page', async () => {
    const { jar } = await consoleSignIn(broker.app, ALICE)
    const page = await browse(broker.app, jar, { url: '/admin/tenants' })
    const oldCookie = jar.get('cb_admin')!
    const forged = await form(broker.app, jar, '/admin/sign-out', {})
    expect(forged.statusCode).toBe(403)
    expect((await browse(broker.app, jar, { url: '/admin/tenants' })).statusCode).toBe(200)
    const out = await form(broker.app, jar, '/admin/sign-out', { csrf: csrfOf(page.body) })
    expect(out.statusCode).toBe(303)
    expect(out.headers.location).toBe('/admin/sign-in')
    const replay = await broker.app.inject({
      url: '/admin/tenants',
      headers: { cookie: `cb_admin=${oldCookie}` },
    })
    expect(replay.statusCode).toBe(303)
    expect(replay.headers.location).toBe('/admin/sign-in')
  })
})

async function emulatorPost(path: string, body?: unknown): Promise<void> {
  const response = await fetch(`${emulator.url}${path}`, {
    method: 'POST',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`)
}

describe('home page', () => {
  it('shows what needs attention: registrations needing consent, upstream failures in the last hour, counts by status', async () => {
    const { jar } = await consoleSignIn(broker.app, ALICE)
    const quiet = await browse(broker.app, jar, { url: '/admin/home' })
    expect(quiet.statusCode).toBe(200)
    expect(quiet.body).toContain('<h1>What needs attention</h1>')
    expect(quiet.body).toContain('No registration needs consent.')
    expect(quiet.body).toContain('No token request to Entra ID failed in the last hour.')

    // A user's refresh tokens end at Entra: the next token request is refused, the registration
    // needs consent, and the refusal counts as an upstream failure.
    const listener = await consentViaEmulator(broker.app, {
      slug: 'ms-graph-mail-listener',
      username: 'user@fabrikam.example',
    })
    await emulatorPost(`/_emulator/users/${encodeURIComponent('user@fabrikam.example')}/revoke`)
    await broker.store.tokens.deleteGroup(`reg:${listener.registrationId}`)
    const refused = await obtainToken(broker.app, listener, 'ms-graph-mail-listener')
    expect(refused.body.error?.code).toBe('consent_required')
    expect(await status(listener.registrationId)).toBe('needs_consent')

    // Entra answers 503 to the client-credentials grant of an admin-consent app.
    const user = await consentViaEmulator(broker.app, {
      slug: 'ms-graph-user',
      username: 'admin@contoso.example',
    })
    await broker.store.tokens.deleteGroup(`tenant:ms-graph-user:global:${CONTOSO_TENANT_ID}`)
    await emulatorPost('/_emulator/faults', { status: 503, grantType: 'client_credentials', count: 50 })
    try {
      const failed = await obtainToken(broker.app, user, 'ms-graph-user')
      expect(failed.body.error?.code).toBe('upstream_unavailable')
    } finally {
      await fetch(`${emulator.url}/_emulator/faults`, { method: 'DELETE' })
    }

    const home = await browse(broker.app, jar, { url: '/admin/home' })
    expect(home.statusCode).toBe(200)
    const counts = await broker.store.registrations.countByStatus()
    expect(counts.needs_consent).toBe(1)
    expect(home.body).toContain('Needs consent: 1 registration')
    expect(home.body).toContain(`title="${listener.registrationId}"`)
    expect(home.body).toContain('href="/admin/registrations?status=needs_consent"')
    expect(home.body).toMatch(
      /<tr><td>ms-graph-mail-listener<\/td><td><code>needs_consent<\/code><\/td><td>[^<]+<\/td><td class="number">1<\/td><\/tr>/,
    )
    expect(home.body).toMatch(
      /<tr><td>ms-graph-user<\/td><td><code>upstream_unavailable<\/code><\/td><td>[^<]+<\/td><td class="number">1<\/td><\/tr>/,
    )
    expect(home.body).toContain('Upstream failures in the last hour: 2')
    // The counts by status are the store's maintained counts, each linked to its list.
    for (const [name, label] of [
      ['active', 'active'],
      ['needs_consent', 'needs consent'],
      ['revoked', 'revoked'],
    ] as const) {
      expect(home.body).toContain(
        `<a href="/admin/registrations?status=${name}"><span class="count">${counts[name]}</span>${label}</a>`,
      )
    }
    expect(home.body).toContain('<strong>Home</strong>')
  })
})
