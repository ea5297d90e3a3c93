// Error pages on the console's paths lead back into the console (a refused form to its own page),
// not to the public list of apps; the consent pages' error pages keep theirs, and a visitor without
// a console session is still sent to sign in.
import { describe, expect, it } from 'vitest'
import { consoleSignIn, csrfOf, freshAdminRegistration, operatorToken } from '../support/admin-helpers.js'
import { browse, CookieJar } from '../support/broker.js'
import { useBrokerOnRedis } from '../support/use-broker.js'

const ALICE = operatorToken('alice')
const { broker } = useBrokerOnRedis({ env: { OPERATOR_TOKENS: `alice:${ALICE}` } })

const TO_CONSOLE = '<a href="/admin">Back to the console</a>'
const TO_APPS = '<a href="/">Back to the list of apps</a>'

/** The links of the page's error card (the header's link to / is on every page). */
function errorLinks(body: string): string[] {
  const card = /<section class="card error">[\s\S]*?<\/section>/.exec(body)?.[0] ?? ''
  return card.match(/href="[^"]*"/g) ?? []
}

describe('console error pages', () => {
  it('a refused form links back to its page; other console errors to the console, never to /', async () => {
    const { jar } = await consoleSignIn(broker.app, ALICE)
    const { tenantId, registration } = await freshAdminRegistration(broker.store)
    const revoke = `/admin/registrations/${registration.id}/revoke`
    const csrf = csrfOf((await browse(broker.app, jar, { url: revoke })).body)

    const blank = await browse(broker.app, jar, {
      method: 'POST',
      url: revoke,
      form: { csrf, reason: '   ' },
    })
    expect(blank.statusCode).toBe(400)
    expect(blank.body).toContain('reason')
    expect(blank.body).toContain(`<a href="${revoke}">Back to the form</a>`)
    expect(errorLinks(blank.body)).toEqual([`href="${revoke}"`])
    const forged = await browse(broker.app, jar, { method: 'POST', url: revoke, form: { reason: 'x' } })
    expect(forged.statusCode).toBe(403)
    expect(forged.body).toContain(`<a href="${revoke}">Back to the form</a>`)

    // A form whose page is elsewhere (the label form sits on the registrations page): the console.
    const label = await browse(broker.app, jar, {
      method: 'POST',
      url: `/admin/tenants/${tenantId}/label`,
      form: { csrf, label: '  ' },
    })
    expect(label.statusCode).toBe(400)
    expect(label.body).toContain(TO_CONSOLE)

    for (const url of ['/admin/registrations?status=bogus', '/admin/registrations/no-such-id/revoke']) {
      const refused = await browse(broker.app, jar, { url })
      expect(refused.statusCode, url).toBeGreaterThanOrEqual(400)
      expect(errorLinks(refused.body), url).toEqual(['href="/admin"'])
      expect(refused.body, url).toContain(TO_CONSOLE)
    }
    const missing = await browse(broker.app, jar, { url: '/admin/no-such-page' })
    expect(missing.statusCode).toBe(404)
    expect(missing.body).toContain(TO_CONSOLE)
    expect(errorLinks(missing.body)).toEqual(['href="/admin"'])
  })

  it('without a session: pages still redirect to sign-in, a form is still 401, and nothing more is shown', async () => {
    const { registration } = await freshAdminRegistration(broker.store)
    const revoke = `/admin/registrations/${registration.id}/revoke`
    const page = await broker.app.inject({ url: revoke })
    expect(page.statusCode).toBe(303)
    expect(page.headers.location).toBe('/admin/sign-in')
    const posted = await browse(broker.app, new CookieJar(), {
      method: 'POST',
      url: revoke,
      form: { csrf: 'x', reason: 'y' },
    })
    expect(posted.statusCode).toBe(401)
    // Its one link is the address just posted to, whose page sends it to sign in.
    expect(errorLinks(posted.body)).toEqual([`href="${revoke}"`])
    expect(posted.body).not.toContain(registration.tenantId)
  })

  it('the consent pages keep their link to the list of apps', async () => {
    const refused = await browse(broker.app, new CookieJar(), {
      method: 'POST',
      url: '/ms-graph-mail/start',
      form: {},
    })
    expect(refused.statusCode).toBe(403)
    expect(refused.body).toContain(TO_APPS)
    const missing = await browse(broker.app, new CookieJar(), { url: '/no-such-app' })
    expect(missing.statusCode).toBe(404)
    expect(missing.body).toContain('<a href="/">See the list of apps</a>')
    expect(errorLinks(missing.body)).toEqual(['href="/"'])
  })
})
