// The emulator's single sign-on session, as a browser sees it: a cookie-carrying client signs in
// once, then authorize and adminconsent go on as that user unless the request asks otherwise
// (prompt=login, select_account, a login_hint for someone else, another tenant). Logout, reset,
// the revoke hooks and the session lifetime end it. Cookie-less clients (the test driver) keep the
// old behaviour: that is what emulator.test.ts checks.
import { createHash, randomBytes } from 'node:crypto'
import { decodeJwt } from 'jose'
import { describe, expect, it } from 'vitest'
import {
  CONTOSO_ADMIN,
  CONTOSO_TENANT_ID,
  CONTOSO_USER,
  FABRIKAM_ADMIN,
  FABRIKAM_TENANT_ID,
  findDemoClient,
} from '../../emulator/demo-data.js'
import { SESSION_COOKIE } from '../../emulator/session.js'
import { useEmulator } from '../support/emulator.js'
import { completeAtEmulator } from '../support/emulator-driver.js'

type Json = Record<string, unknown>

const MAIL = findDemoClient('ms-graph-mail')
const GRAPH = 'https://graph.microsoft.com'
const REDIRECT = 'http://127.0.0.1:8765/auth/callback'

const emu = useEmulator({ resetEach: true })

/** A minimal browser: one cookie jar (the emulator is a single host), no redirect following. */
class Browser {
  readonly cookies = new Map<string, string>()
  /** Raw Set-Cookie headers of the last response. */
  lastSetCookie: string[] = []

  async get(url: string): Promise<Response> {
    return this.send(url, { method: 'GET' })
  }

  async post(url: string, fields: Record<string, string>): Promise<Response> {
    return this.send(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields).toString(),
    })
  }

  private async send(url: string, init: RequestInit): Promise<Response> {
    const headers = new Headers(init.headers)
    if (this.cookies.size > 0) {
      headers.set('cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '))
    }
    const res = await fetch(url, { ...init, headers, redirect: 'manual' })
    this.lastSetCookie = res.headers.getSetCookie()
    for (const line of this.lastSetCookie) {
      const [pair, ...attrs] = line.split(';').map((s) => s.trim())
      const eq = pair!.indexOf('=')
      const name = pair!.slice(0, eq)
      const value = pair!.slice(eq + 1)
      const expired = attrs.some(
        (a) => /^max-age=0$/i.test(a) || (/^expires=/i.test(a) && Date.parse(a.slice(8)) <= Date.now()),
      )
      if (expired || value === '') this.cookies.delete(name)
      else this.cookies.set(name, value)
    }
    return res
  }

  get session(): string | undefined {
    return this.cookies.get(SESSION_COOKIE)
  }
}

type Page =
  | { kind: 'sign-in'; html: string; action: string; flow: string; username: string }
  | { kind: 'consent'; html: string; action: string; flow: string }
  | { kind: 'redirect'; location: URL }

/** What the browser sees for one response at the emulator. */
async function pageOf(res: Response): Promise<Page> {
  if (res.status === 302) return { kind: 'redirect', location: new URL(res.headers.get('location')!) }
  const html = await res.text()
  expect(res.status, html).toBe(200)
  const action = /<form method="post" action="([^"]+)">/.exec(html)?.[1]
  const flow = /<input type="hidden" name="flow" value="([^"]+)">/.exec(html)?.[1]
  expect(action, html).toMatch(/^\/[^/]+\/(login|consent)$/)
  expect(flow, html).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)
  const username = /<input type="text" id="username" name="username" value="([^"]*)"/.exec(html)
  if (username) {
    return {
      kind: 'sign-in',
      html,
      action: new URL(action!, emu.url).href,
      flow: flow!,
      username: username[1]!,
    }
  }
  expect(html).toContain('name="decision" value="accept"')
  return { kind: 'consent', html, action: new URL(action!, emu.url).href, flow: flow! }
}

async function open(browser: Browser, url: string): Promise<Page> {
  return pageOf(await browser.get(url))
}

async function signIn(browser: Browser, page: Page, username: string): Promise<Page> {
  expect(page.kind).toBe('sign-in')
  const p = page as Extract<Page, { kind: 'sign-in' }>
  return pageOf(await browser.post(p.action, { flow: p.flow, username }))
}

async function accept(browser: Browser, page: Page): Promise<URL> {
  expect(page.kind).toBe('consent')
  const p = page as Extract<Page, { kind: 'consent' }>
  const next = await pageOf(await browser.post(p.action, { flow: p.flow, decision: 'accept' }))
  expect(next.kind).toBe('redirect')
  return (next as Extract<Page, { kind: 'redirect' }>).location
}

function redirected(page: Page): URL {
  expect(page.kind, page.kind === 'redirect' ? '' : page.html).toBe('redirect')
  const location = (page as Extract<Page, { kind: 'redirect' }>).location
  expect(`${location.origin}${location.pathname}`).toBe(REDIRECT)
  return location
}

function authorizeUrl(extra: Record<string, string> = {}, tenant = 'organizations'): string {
  const url = new URL(`${emu.url}/${tenant}/oauth2/v2.0/authorize`)
  url.search = new URLSearchParams({
    client_id: MAIL.clientId,
    redirect_uri: REDIRECT,
    response_type: 'code',
    scope: 'openid profile',
    state: 'st-sso',
    ...extra,
  }).toString()
  return url.href
}

function adminConsentUrl(tenant: string, extra: Record<string, string> = {}): string {
  const url = new URL(`${emu.url}/${tenant}/v2.0/adminconsent`)
  url.search = new URLSearchParams({
    client_id: MAIL.clientId,
    redirect_uri: REDIRECT,
    scope: `${GRAPH}/.default`,
    state: 'admin-state',
    ...extra,
  }).toString()
  return url.href
}

/** The broker's first leg: OIDC sign-in at /organizations with prompt=select_account, consented. */
async function brokerSignIn(browser: Browser, username: string): Promise<URL> {
  const form = await open(browser, authorizeUrl({ prompt: 'select_account' }))
  const page = await signIn(browser, form, username)
  if (page.kind === 'consent') return redirected({ kind: 'redirect', location: await accept(browser, page) })
  return redirected(page)
}

async function hook(method: string, path: string): Promise<Json> {
  const res = await fetch(`${emu.url}/_emulator/${path}`, { method })
  expect(res.status).toBe(200)
  return (await res.json()) as Json
}

const sessionUsers = async () =>
  ((await hook('GET', 'sessions')).sessions as { username: string }[]).map((s) => s.username).sort()

async function redeem(code: string, verifier: string): Promise<Json> {
  const res = await fetch(`${emu.url}/organizations/oauth2/v2.0/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      redirect_uri: REDIRECT,
      code_verifier: verifier,
      client_id: MAIL.clientId,
      client_secret: MAIL.clientSecret,
    }),
  })
  const json = (await res.json()) as Json
  expect(res.status, JSON.stringify(json)).toBe(200)
  return json
}

describe('single sign-on session', () => {
  it('a sign-in sets an HttpOnly, SameSite=Lax, Path=/ session cookie with a fresh random id', async () => {
    const browser = new Browser()
    browser.cookies.set(SESSION_COOKIE, 'planted-by-someone-else')
    const form = await open(browser, authorizeUrl())
    expect(form.kind).toBe('sign-in')
    // An unknown session id is cleared, never adopted.
    expect(browser.session).toBeUndefined()
    browser.cookies.set(SESSION_COOKIE, 'planted-by-someone-else')
    await signIn(browser, form, CONTOSO_ADMIN.username)
    const line = browser.lastSetCookie.find((l) => l.startsWith(`${SESSION_COOKIE}=`))
    expect(line).toMatch(new RegExp(`^${SESSION_COOKIE}=[\\w-]{43};`))
    const attrs = (line ?? '').split(';').map((a) => a.trim().toLowerCase())
    expect(attrs).toContain('httponly')
    expect(attrs).toContain('samesite=lax')
    expect(attrs).toContain('path=/')
    expect(attrs).not.toContain('secure')
    expect(browser.session).not.toBe('planted-by-someone-else')
    expect(browser.session).toMatch(/^[\w-]{43}$/)
    expect(await sessionUsers()).toEqual([CONTOSO_ADMIN.username])

    // A second browser signing in as the same user gets its own session.
    const other = new Browser()
    await signIn(other, await open(other, authorizeUrl()), CONTOSO_ADMIN.username)
    expect(other.session).toMatch(/^[\w-]{43}$/)
    expect(other.session).not.toBe(browser.session)
    expect(await sessionUsers()).toEqual([CONTOSO_ADMIN.username, CONTOSO_ADMIN.username])
  })

  it("the broker's admin-consent flow: one sign-in, then adminconsent shows the consent page directly", async () => {
    const browser = new Browser()
    const signedIn = await brokerSignIn(browser, CONTOSO_ADMIN.username)
    expect(signedIn.searchParams.get('code')).toBeTruthy()

    const consent = await open(browser, adminConsentUrl(CONTOSO_TENANT_ID))
    expect(consent.kind).toBe('consent')
    const html = (consent as Extract<Page, { kind: 'consent' }>).html
    expect(html).toContain('Accept for your organization')
    expect(html).toContain(`Signed in as <code>${CONTOSO_ADMIN.username}</code>`)
    const back = await accept(browser, consent)
    expect(back.searchParams.get('admin_consent')).toBe('True')
    expect(back.searchParams.get('tenant')).toBe(CONTOSO_TENANT_ID)
    expect(back.searchParams.get('state')).toBe('admin-state')

    // /organizations works the same; a browser without the cookie still gets the sign-in form.
    expect((await open(browser, adminConsentUrl('organizations'))).kind).toBe('consent')
    expect((await open(new Browser(), adminConsentUrl(CONTOSO_TENANT_ID))).kind).toBe('sign-in')
    // And the cookie-less test driver is unaffected.
    const driven = await completeAtEmulator(adminConsentUrl(CONTOSO_TENANT_ID), {
      username: CONTOSO_ADMIN.username,
    })
    expect(driven.searchParams.get('admin_consent')).toBe('True')
  })

  it('adminconsent with a session: another tenant, a non-administrator, login_hint and prompt', async () => {
    const browser = new Browser()
    await brokerSignIn(browser, CONTOSO_ADMIN.username)
    // The session user can't sign in at Fabrikam: the sign-in form, not prefilled.
    const elsewhere = await open(browser, adminConsentUrl(FABRIKAM_TENANT_ID))
    expect(elsewhere.kind).toBe('sign-in')
    expect((elsewhere as Extract<Page, { kind: 'sign-in' }>).username).toBe('')
    // Signing in there as Fabrikam's administrator switches the session.
    const before = browser.session
    const consent = await signIn(browser, elsewhere, FABRIKAM_ADMIN.username)
    expect(consent.kind).toBe('consent')
    expect(browser.session).not.toBe(before)
    expect(await sessionUsers()).toEqual([FABRIKAM_ADMIN.username])

    const hinted = await open(
      browser,
      adminConsentUrl('organizations', { login_hint: CONTOSO_ADMIN.username }),
    )
    expect(hinted.kind).toBe('sign-in')
    expect((hinted as Extract<Page, { kind: 'sign-in' }>).username).toBe(CONTOSO_ADMIN.username)
    const forced = await open(browser, adminConsentUrl(FABRIKAM_TENANT_ID, { prompt: 'login' }))
    expect(forced.kind).toBe('sign-in')

    // A non-administrator's session goes straight back with AADSTS90094.
    const user = new Browser()
    await brokerSignIn(user, CONTOSO_USER.username)
    const refused = redirected(await open(user, adminConsentUrl(CONTOSO_TENANT_ID)))
    expect(refused.searchParams.get('admin_consent')).toBe('True')
    expect(refused.searchParams.get('error')).toBe('access_denied')
    expect(refused.searchParams.get('error_description')).toMatch(/^AADSTS90094: /)
  })

  it('authorize with a session: a code straight away once consented, the consent page with prompt=consent', async () => {
    const browser = new Browser()
    await brokerSignIn(browser, CONTOSO_USER.username)
    const again = redirected(await open(browser, authorizeUrl()))
    expect(again.searchParams.get('code')).toBeTruthy()
    expect(again.searchParams.get('state')).toBe('st-sso')

    const consent = await open(browser, authorizeUrl({ prompt: 'consent' }))
    expect(consent.kind).toBe('consent')
    expect((consent as Extract<Page, { kind: 'consent' }>).html).toContain(CONTOSO_USER.username)
    expect((await accept(browser, consent)).searchParams.get('code')).toBeTruthy()

    // New permissions: the consent page, without signing in again.
    const more = await open(browser, authorizeUrl({ scope: `openid ${GRAPH}/Mail.Read` }))
    expect(more.kind).toBe('consent')
    // A tenant path the user belongs to works; another tenant's path asks for a sign-in.
    expect((await open(browser, authorizeUrl({}, CONTOSO_TENANT_ID))).kind).toBe('redirect')
    expect((await open(browser, authorizeUrl({}, FABRIKAM_TENANT_ID))).kind).toBe('sign-in')
    expect((await open(browser, authorizeUrl({}, 'consumers'))).kind).toBe('sign-in')
  })

  it('prompt=login always shows the sign-in form, and signing in replaces the session', async () => {
    const browser = new Browser()
    await brokerSignIn(browser, CONTOSO_ADMIN.username)
    const first = browser.session!
    const form = await open(browser, authorizeUrl({ prompt: 'login' }))
    expect(form.kind).toBe('sign-in')
    expect((form as Extract<Page, { kind: 'sign-in' }>).username).toBe('')
    const next = await signIn(browser, form, CONTOSO_USER.username)
    expect(next.kind).toBe('consent')
    expect(browser.session).not.toBe(first)
    expect(await sessionUsers()).toEqual([CONTOSO_USER.username])
    // The replaced session id is dead.
    const replay = new Browser()
    replay.cookies.set(SESSION_COOKIE, first)
    expect((await open(replay, adminConsentUrl(CONTOSO_TENANT_ID))).kind).toBe('sign-in')
  })

  it('prompt=select_account shows the same form prefilled with the session user; a login_hint wins', async () => {
    const browser = new Browser()
    const fresh = await open(browser, authorizeUrl({ prompt: 'select_account' }))
    expect((fresh as Extract<Page, { kind: 'sign-in' }>).username).toBe('')

    await brokerSignIn(browser, CONTOSO_ADMIN.username)
    const picker = await open(browser, authorizeUrl({ prompt: 'select_account' }))
    expect(picker.kind).toBe('sign-in')
    const html = (picker as Extract<Page, { kind: 'sign-in' }>).html
    expect(html.match(/<form\b/g)).toHaveLength(1)
    expect(html.match(/<input type="text"/g)).toHaveLength(1)
    expect(html.match(/type="submit"/g)).toHaveLength(1)
    expect((picker as Extract<Page, { kind: 'sign-in' }>).username).toBe(CONTOSO_ADMIN.username)
    // Submitting the prefilled name goes on (consent for openid profile is on record).
    expect(
      redirected(await signIn(browser, picker, CONTOSO_ADMIN.username)).searchParams.get('code'),
    ).toBeTruthy()

    const hinted = await open(
      browser,
      authorizeUrl({ prompt: 'select_account', login_hint: CONTOSO_USER.username }),
    )
    expect((hinted as Extract<Page, { kind: 'sign-in' }>).username).toBe(CONTOSO_USER.username)
    // Without prompt, a login_hint for someone else is the sign-in form prefilled with the hint...
    const other = await open(browser, authorizeUrl({ login_hint: CONTOSO_USER.username }))
    expect(other.kind).toBe('sign-in')
    expect((other as Extract<Page, { kind: 'sign-in' }>).username).toBe(CONTOSO_USER.username)
    // ...and one naming the session user (any case) goes on as them.
    const same = await open(browser, authorizeUrl({ login_hint: CONTOSO_ADMIN.username.toUpperCase() }))
    expect(redirected(same).searchParams.get('code')).toBeTruthy()
  })

  it('prompt=none: a silent code with a session and consent, else login_required or consent_required', async () => {
    const browser = new Browser()
    const none = redirected(await open(browser, authorizeUrl({ prompt: 'none' })))
    expect(none.searchParams.get('error')).toBe('login_required')
    expect(none.searchParams.get('error_description')).toMatch(/^AADSTS50058: .*no user is signed in/)

    await brokerSignIn(browser, CONTOSO_ADMIN.username)
    const verifier = randomBytes(32).toString('base64url')
    const silent = redirected(
      await open(
        browser,
        authorizeUrl({
          prompt: 'none',
          nonce: 'silent-nonce',
          code_challenge: createHash('sha256').update(verifier).digest('base64url'),
          code_challenge_method: 'S256',
        }),
      ),
    )
    expect(silent.searchParams.get('state')).toBe('st-sso')
    const tokens = await redeem(silent.searchParams.get('code')!, verifier)
    const id = decodeJwt(tokens.id_token as string)
    expect(id).toMatchObject({ oid: CONTOSO_ADMIN.oid, tid: CONTOSO_TENANT_ID, nonce: 'silent-nonce' })

    const consent = redirected(
      await open(browser, authorizeUrl({ prompt: 'none', scope: `openid ${GRAPH}/Mail.Read` })),
    )
    expect(consent.searchParams.get('error')).toBe('consent_required')
    expect(consent.searchParams.get('error_description')).toMatch(/^AADSTS65001: /)
    expect(consent.searchParams.get('state')).toBe('st-sso')
    expect(consent.searchParams.get('code')).toBeNull()

    const mismatch = redirected(
      await open(browser, authorizeUrl({ prompt: 'none', login_hint: CONTOSO_USER.username })),
    )
    expect(mismatch.searchParams.get('error')).toBe('login_required')
    expect(mismatch.searchParams.get('error_description')).toMatch(/^AADSTS50058: .*login hint/)

    // Once the tenant gave admin consent, new permissions come silently too.
    await open(browser, adminConsentUrl(CONTOSO_TENANT_ID)).then((p) => accept(browser, p))
    const covered = redirected(
      await open(browser, authorizeUrl({ prompt: 'none', scope: `openid ${GRAPH}/Mail.Read` })),
    )
    expect(covered.searchParams.get('code')).toBeTruthy()
  })

  it('logout ends the session and clears the cookie', async () => {
    const browser = new Browser()
    await brokerSignIn(browser, CONTOSO_ADMIN.username)
    const id = browser.session!
    const res = await browser.get(
      `${emu.url}/common/oauth2/v2.0/logout?post_logout_redirect_uri=${encodeURIComponent('http://localhost:3000/bye')}`,
    )
    expect(res.status).toBe(302)
    expect(res.headers.get('location')).toBe('http://localhost:3000/bye')
    expect(browser.session).toBeUndefined()
    expect(await sessionUsers()).toEqual([])
    expect((await open(browser, adminConsentUrl(CONTOSO_TENANT_ID))).kind).toBe('sign-in')
    // A browser that kept the old cookie has no session either.
    const stale = new Browser()
    stale.cookies.set(SESSION_COOKIE, id)
    expect((await open(stale, adminConsentUrl(CONTOSO_TENANT_ID))).kind).toBe('sign-in')
    expect(stale.session).toBeUndefined()
    // Logout without a redirect URI (the sign-out page) ends it too.
    await brokerSignIn(browser, CONTOSO_ADMIN.username)
    expect((await browser.get(`${emu.url}/organizations/oauth2/v2.0/logout`)).status).toBe(200)
    expect(browser.session).toBeUndefined()
    expect(await sessionUsers()).toEqual([])
  })

  it('reset, the revoke hooks and the one-hour lifetime end sessions', async () => {
    const admin = new Browser()
    const user = new Browser()
    const fabrikam = new Browser()
    const signInAll = async () => {
      await brokerSignIn(admin, CONTOSO_ADMIN.username)
      await brokerSignIn(user, CONTOSO_USER.username)
      await brokerSignIn(fabrikam, FABRIKAM_ADMIN.username)
    }
    const hasSession = async (browser: Browser, tenant: string) =>
      (await open(browser, adminConsentUrl(tenant))).kind !== 'sign-in'

    await signInAll()
    await hook('POST', 'reset')
    expect(await sessionUsers()).toEqual([])
    expect(await hasSession(admin, CONTOSO_TENANT_ID)).toBe(false)

    await signInAll()
    await hook('POST', `users/${encodeURIComponent(CONTOSO_USER.username)}/revoke`)
    expect(await sessionUsers()).toEqual([CONTOSO_ADMIN.username, FABRIKAM_ADMIN.username])
    expect(await hasSession(user, CONTOSO_TENANT_ID)).toBe(false)
    expect(await hasSession(admin, CONTOSO_TENANT_ID)).toBe(true)

    await hook('POST', `tenants/${CONTOSO_TENANT_ID}/revoke`)
    expect(await sessionUsers()).toEqual([FABRIKAM_ADMIN.username])
    expect(await hasSession(admin, CONTOSO_TENANT_ID)).toBe(false)
    expect(await hasSession(fabrikam, FABRIKAM_TENANT_ID)).toBe(true)

    await hook('POST', 'reset')
    await signInAll()
    const advance = async (advanceSec: number) => {
      const res = await fetch(`${emu.url}/_emulator/clock`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ advanceSec }),
      })
      expect(res.status).toBe(200)
    }
    await advance(59 * 60)
    expect(await hasSession(admin, CONTOSO_TENANT_ID)).toBe(true)
    await advance(61)
    expect(await hasSession(admin, CONTOSO_TENANT_ID)).toBe(false)
    expect(await sessionUsers()).toEqual([])
  })
})
