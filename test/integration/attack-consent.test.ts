// The consent pages tried the way an attacker would, against a real broker (Redis, the emulator):
// a cross-site link that tries to end a victim's flow or to put words in Microsoft's mouth, HEAD
// on the one-time result, Redis and COOKIE_SECRET in the attacker's hands, and a stranger flooding
// the audit trail with failed callbacks.
import { describe, expect, it } from 'vitest'
import { CONTOSO_ADMIN, CONTOSO_USER } from '../../emulator/demo-data.js'
import type { AuditRecord } from '../../src/store/types.js'
import { bearer, consoleSignIn, operatorToken } from '../support/admin-helpers.js'
import {
  browse,
  CookieJar,
  consentViaEmulator,
  cookieSigner,
  formCsrf,
  pageTitle,
  parseConsentValues,
  pathOf,
  type RunningBroker,
  startConsentFlow,
} from '../support/broker.js'
import { useEmulator } from '../support/emulator.js'
import { completeAtEmulator } from '../support/emulator-driver.js'
import { useBrokerPerTest } from '../support/use-broker.js'

const MAIL = 'ms-graph-mail'
const LISTENER = 'ms-graph-mail-listener'
const ATTACKER_TEXT = 'Your account is locked. Call +1 555 0100 now'

const emulator = useEmulator({ resetEach: true })
const start = useBrokerPerTest(emulator)

/** Every Redis key of the broker and its value, as someone who can read Redis sees them. */
async function dumpRedis(b: RunningBroker): Promise<Array<{ key: string; value: string }>> {
  const redis = b.redis!
  const out: Array<{ key: string; value: string }> = []
  for (const key of await redis.keys(`${b.keyPrefix}*`)) {
    const type = await redis.type(key)
    const value =
      type === 'string'
        ? ((await redis.get(key)) ?? '')
        : type === 'hash'
          ? JSON.stringify(await redis.hgetall(key))
          : type
    out.push({ key, value })
  }
  return out
}

describe('a cross-site link to /callback (state first)', () => {
  it('neither ends the victim’s flow nor shows the link’s text; the victim’s own callback completes', async () => {
    const b = await start()
    // The victim started a consent and is at Microsoft's sign-in, flow in progress.
    const victim = await startConsentFlow(b.app, { slug: LISTENER })
    const victimBack = await completeAtEmulator(victim.location, { username: CONTOSO_USER.username })
    // The attacker, in their own browser, starts a flow too: a state that is valid — for them.
    const attacker = await startConsentFlow(b.app, { slug: LISTENER, jar: new CookieJar() })
    const attackerState = new URL(attacker.location).searchParams.get('state')!
    const links = [
      new URLSearchParams({ error: 'access_denied', error_description: ATTACKER_TEXT }),
      new URLSearchParams({ error: 'server_error', error_description: ATTACKER_TEXT, state: attackerState }),
      new URLSearchParams({
        error: 'access_denied',
        error_description: ATTACKER_TEXT,
        state: 'x'.repeat(43),
      }),
      new URLSearchParams({ code: 'attacker-code', state: attackerState }),
    ]
    for (const link of links) {
      // The victim's browser follows the link: a top-level GET, so the Lax flow cookie goes along.
      const clicked = await browse(b.app, victim.jar, { url: `/callback?${link}` })
      expect(clicked.statusCode, String(link)).toBe(403)
      expect(pageTitle(clicked.body)).toBe('This response does not belong to your authorization')
      expect(clicked.body).not.toContain('Call +1 555 0100')
      expect(clicked.body).not.toContain('Microsoft said')
      expect(clicked.headers['set-cookie'], 'the flow cookie is left alone').toBeUndefined()
    }
    // The victim's genuine answer from Microsoft still completes their flow.
    const own = await browse(b.app, victim.jar, { url: pathOf(victimBack) })
    expect(own.statusCode).toBe(303)
    expect(own.headers.location).toBe('/result')
    const result = await browse(b.app, victim.jar, { url: '/result' })
    expect(parseConsentValues(result.body)?.key).toMatch(/^[A-Za-z0-9+/]{43}=$/)
    // Nothing the attacker sent reached the audit trail.
    const { items } = await b.store.audit.read({ limit: 100 })
    expect(items.filter((e) => e.type === 'consent.failed')).toEqual([])
  })

  it('shows Microsoft’s text only on the flow’s own callback, under the page’s own explanation', async () => {
    const b = await start()
    const started = await startConsentFlow(b.app, { slug: LISTENER })
    const state = new URL(started.location).searchParams.get('state')!
    const query = new URLSearchParams({
      error: 'access_denied',
      error_description: 'AADSTS65004: declined',
      state,
    })
    const response = await browse(b.app, started.jar, { url: `/callback?${query}` })
    expect(response.statusCode).toBe(400)
    expect(pageTitle(response.body)).toBe('Authorization was not granted')
    expect(response.body).toContain('No access was given.')
    expect(response.body).toContain(
      'Microsoft said: <code class="provider-message">AADSTS65004: declined</code>',
    )
  })
})

describe('forms that start a flow (CSRF)', () => {
  for (const [form, page] of [
    ['/ms-graph-mail/start', '/ms-graph-mail'],
    ['/ms-graph-mail/manage/sign-in', '/ms-graph-mail/manage'],
  ] as const) {
    it(`${form}: Origin null without Sec-Fetch-Site needs the page's token; a stranger's token is refused`, async () => {
      const b = await start()
      const victim = new CookieJar()
      const victimToken = await formCsrf(b.app, victim, page)
      const attacker = new CookieJar()
      const attackerToken = await formCsrf(b.app, attacker, page)
      expect(attackerToken).not.toBe(victimToken)
      // What an old browser sends for a form an attacker's page auto-submits: Origin null (or none),
      // no Fetch Metadata, the victim's cookies.
      const post = (cookie: string | undefined, payload: string, origin?: string) =>
        b.app.inject({
          method: 'POST',
          url: form,
          headers: {
            'content-type': 'application/x-www-form-urlencoded',
            ...(origin === undefined ? {} : { origin }),
            ...(cookie === undefined ? {} : { cookie }),
          },
          payload,
        })
      const victimCookie = victim.header(form)
      expect(victimCookie).toMatch(/cb_form=/)
      for (const [what, response] of [
        ['no token, Origin null', await post(victimCookie, 'cloud=global', 'null')],
        ['no token, no Origin', await post(victimCookie, 'cloud=global')],
        ['the attacker’s own token', await post(victimCookie, `cloud=global&csrf=${attackerToken}`, 'null')],
        ['a token without its cookie', await post(undefined, `cloud=global&csrf=${victimToken}`, 'null')],
        ['an empty token', await post(victimCookie, 'cloud=global&csrf=', 'null')],
      ] as const) {
        expect(response.statusCode, what).toBe(403)
        expect(pageTitle(response.body), what).not.toBe('')
        expect(response.body, what).toContain('reload the page')
        expect(response.headers.location, what).toBeUndefined()
        expect(response.headers['set-cookie'], what).toBeUndefined()
      }
      // The victim's own form, as their browser posts it: on to Microsoft.
      const own = await post(victimCookie, `cloud=global&csrf=${victimToken}`, 'null')
      expect(own.statusCode).toBe(303)
      expect(String(own.headers.location)).toContain('/oauth2/v2.0/authorize')
    })
  }
})

describe('the one-time result', () => {
  it('HEAD /result does not take it: the GET after it still shows the Key, once', async () => {
    const b = await start()
    const jar = new CookieJar()
    const started = await startConsentFlow(b.app, { slug: LISTENER, jar })
    const back = await completeAtEmulator(started.location, { username: CONTOSO_USER.username })
    expect((await browse(b.app, jar, { url: pathOf(back) })).headers.location).toBe('/result')
    const cookie = jar.header('/result')!
    for (let i = 0; i < 3; i++) {
      const head = await b.app.inject({ method: 'HEAD', url: '/result', headers: { cookie } })
      expect(head.statusCode).toBe(200)
      expect(head.body).toBe('')
      expect(head.headers['cache-control']).toBe('no-store')
    }
    const shown = await browse(b.app, jar, { url: '/result' })
    expect(shown.statusCode).toBe(200)
    expect(parseConsentValues(shown.body)?.key).toMatch(/^[A-Za-z0-9+/]{43}=$/)
    expect((await b.app.inject({ method: 'HEAD', url: '/result', headers: { cookie } })).statusCode).toBe(410)
    expect((await b.app.inject({ method: 'GET', url: '/result', headers: { cookie } })).statusCode).toBe(410)
  })

  it('HEAD /callback does not end a flow (405, Allow: GET)', async () => {
    const b = await start()
    const started = await startConsentFlow(b.app, { slug: LISTENER })
    const back = await completeAtEmulator(started.location, { username: CONTOSO_USER.username })
    const cookie = started.jar.header('/callback')!
    const head = await b.app.inject({ method: 'HEAD', url: pathOf(back), headers: { cookie } })
    expect(head.statusCode).toBe(405)
    expect(head.headers.allow).toBe('GET')
    expect((await browse(b.app, started.jar, { url: pathOf(back) })).headers.location).toBe('/result')
  })

  it('Redis plus COOKIE_SECRET is not enough to take a Key or a flow', async () => {
    const b = await start()
    const jar = new CookieJar()
    const started = await startConsentFlow(b.app, { slug: LISTENER, jar })
    const back = await completeAtEmulator(started.location, { username: CONTOSO_USER.username })
    // A second flow is in progress while the attacker reads Redis.
    const pending = await startConsentFlow(b.app, { slug: MAIL, jar: new CookieJar() })
    expect((await browse(b.app, jar, { url: pathOf(back) })).headers.location).toBe('/result')

    // Everything Redis holds, and every token-like string in it, becomes a candidate handle.
    const dump = await dumpRedis(b)
    // (a new delegated registration's result, with a Key not shown yet, has its own prefix)
    expect(dump.some(({ key }) => key.includes('consent:result-unshown:'))).toBe(true)
    expect(dump.some(({ key }) => key.includes('consent:flow:'))).toBe(true)
    const candidates = new Set<string>()
    for (const { key, value } of dump) {
      for (const token of `${key} ${value}`.match(/[A-Za-z0-9_-]{20,}/g) ?? []) candidates.add(token)
    }
    expect(candidates.size).toBeGreaterThan(0)
    // With COOKIE_SECRET the attacker signs any value as the broker would.
    for (const candidate of candidates) {
      const asResult = await b.app.inject({
        url: '/result',
        headers: { cookie: `cb_consent_result=${encodeURIComponent(cookieSigner(b.app).sign(candidate))}` },
      })
      expect(asResult.statusCode, candidate).toBe(410)
      expect(asResult.body).not.toContain('data-field="key"')
      const asFlow = await b.app.inject({
        url: `/callback?code=x&state=${candidate}`,
        headers: {
          cookie: `cb_consent_flow=${encodeURIComponent(cookieSigner(b.app).sign(`${MAIL}.${candidate}`))}`,
        },
      })
      expect([400, 403], candidate).toContain(asFlow.statusCode)
      expect(asFlow.headers.location).toBeUndefined()
    }
    // The browser that owns the result still gets its Key, and the pending flow is still usable.
    const shown = await browse(b.app, jar, { url: '/result' })
    expect(parseConsentValues(shown.body)?.key).toMatch(/^[A-Za-z0-9+/]{43}=$/)
    const pendingBack = await completeAtEmulator(pending.location, { username: CONTOSO_ADMIN.username })
    const phase2 = await browse(b.app, pending.jar, { url: pathOf(pendingBack) })
    expect(phase2.statusCode).toBe(303)
  })
})

describe('the audit trail against a stranger', () => {
  it('1,000 failed callbacks from one address leave every operator and tenant event readable', async () => {
    const token = operatorToken('alice')
    const b = await start({
      env: {
        OPERATOR_TOKENS: `alice:${token}`,
        AUDIT_MAX_EVENTS: '100',
        CONSENT_RATE_LIMIT_PER_IP: '100000',
      },
    })
    // Events of the day worth keeping: a consent, an operator's revoke, an operator's sign-in.
    const values = await consentViaEmulator(b.app, { slug: LISTENER, username: CONTOSO_USER.username })
    const revoked = await b.app.inject({
      method: 'POST',
      url: `/admin/api/registrations/${values.registrationId}/revoke`,
      headers: { ...bearer(token), 'content-type': 'application/json' },
      payload: { reason: 'attack drill' },
    })
    expect(revoked.statusCode).toBe(200)
    expect((await consoleSignIn(b.app, token)).response.statusCode).toBe(303)
    const readAll = async (): Promise<AuditRecord[]> => {
      const response = await b.app.inject({ url: '/admin/api/audit?limit=500', headers: bearer(token) })
      expect(response.statusCode).toBe(200)
      return (response.json() as { items: AuditRecord[] }).items
    }
    const before = await readAll()
    const kept = before
    expect(kept.map((e) => e.type)).toEqual(
      expect.arrayContaining(['consent.completed', 'registration.revoked', 'operator.signed_in']),
    )

    // The stranger: 1,000 failed callbacks from one address, every kind an anonymous caller can make.
    const stranger = new CookieJar()
    const csrf = await formCsrf(b.app, stranger, `/${MAIL}`)
    const statuses = new Map<number, number>()
    const count = (status: number) => statuses.set(status, (statuses.get(status) ?? 0) + 1)
    for (let i = 0; i < 1000; i++) {
      const kind = i % 4
      if (kind === 0) {
        count((await b.app.inject({ url: `/callback?error=access_denied&state=s${i}` })).statusCode)
      } else if (kind === 1) {
        const forged = encodeURIComponent(
          cookieSigner(b.app)
            .sign(`${MAIL}.${'A'.repeat(43)}`)
            .slice(0, -1),
        )
        count(
          (await b.app.inject({ url: '/callback?code=x', headers: { cookie: `cb_consent_flow=${forged}` } }))
            .statusCode,
        )
      } else {
        // A real flow of the stranger's own: its callback with a wrong state, or with its state and
        // an error (the stranger "cancels" at Microsoft without ever signing in).
        const started = await browse(b.app, stranger, {
          method: 'POST',
          url: `/${MAIL}/start`,
          form: { csrf },
        })
        const authorize = new URL(String(started.headers.location))
        const state = kind === 2 ? 'wrong' : authorize.searchParams.get('state')!
        const query = new URLSearchParams({ error: 'access_denied', error_description: 'flood', state })
        count((await browse(b.app, stranger, { url: `/callback?${query}` })).statusCode)
      }
    }
    // No cookie and a forged cookie: 400; the own flow's wrong state: 403; its "cancel": 400.
    expect(Object.fromEntries(statuses)).toEqual({ 400: 750, 403: 250 })

    const after = await readAll()
    for (const event of kept) expect(after, event.type).toContainEqual(event)
    expect(after.filter((e) => e.type === 'consent.failed')).toEqual([])
    // Counted, though: the failures are in the metrics.
    const failed = (await b.app.metrics.consents.get()).values
      .filter((v) => v.labels.stage === 'failed')
      .reduce((sum, v) => sum + v.value, 0)
    expect(failed).toBe(1000)
  }, 300_000)
})
