// What the consent pages promise about secrets and browsers: cookie flags, security headers, the
// one-time result page, no Key in a URL, no secret in clear in Redis or in the logs.
import type { FastifyBaseLogger, LightMyRequestResponse } from 'fastify'
import { Redis } from 'ioredis'
import { describe, expect, inject, it } from 'vitest'
import { CONTOSO_ADMIN, CONTOSO_USER } from '../../emulator/demo-data.js'
import {
  browse,
  CookieJar,
  capturingRefreshTokens,
  consentViaEmulator,
  cookieSigner,
  formCsrf,
  pageTitle,
  parseConsentValues,
  pathOf,
  runConsentViaEmulator,
  startConsentFlow,
  startFormCredentials,
} from '../support/broker.js'
import { useEmulator } from '../support/emulator.js'
import { completeAtEmulator } from '../support/emulator-driver.js'
import { memoryLogger } from '../support/log-capture.js'
import { useBrokerPerTest } from '../support/use-broker.js'

const redisUrl = inject('redisUrl')
const MAIL = 'ms-graph-mail'
const LISTENER = 'ms-graph-mail-listener'

const emulator = useEmulator({ resetEach: true })
const start = useBrokerPerTest(emulator)

interface ParsedCookie {
  name: string
  value: string
  attributes: Map<string, string>
}

function setCookies(response: LightMyRequestResponse): ParsedCookie[] {
  const header = response.headers['set-cookie']
  const lines = header === undefined ? [] : Array.isArray(header) ? header : [String(header)]
  return lines.map((line) => {
    const [pair, ...rest] = line.split(';').map((part) => part.trim())
    const eq = pair!.indexOf('=')
    const attributes = new Map<string, string>()
    for (const attribute of rest) {
      const [key, value = ''] = attribute.split('=')
      attributes.set(key!.toLowerCase(), value)
    }
    return { name: pair!.slice(0, eq), value: pair!.slice(eq + 1), attributes }
  })
}

function expectSecurityHeaders(response: LightMyRequestResponse, what: string): void {
  const csp = String(response.headers['content-security-policy'] ?? '')
  expect(csp, what).toContain("default-src 'none'")
  expect(csp, what).toContain("script-src 'self'")
  expect(csp, what).toContain("style-src 'self'")
  expect(csp, what).toContain("frame-ancestors 'none'")
  expect(csp, what).not.toContain('unsafe-inline')
  expect(response.headers['referrer-policy'], what).toBe('no-referrer')
  expect(response.headers['x-content-type-options'], what).toBe('nosniff')
}

describe('cookies', () => {
  it('the flow cookie is signed, HttpOnly, SameSite=Lax, 600 s, scoped to /callback, not Secure on http', async () => {
    const b = await start()
    const started = await startConsentFlow(b.app, { slug: MAIL })
    const [cookie, ...others] = setCookies(started.response)
    expect(others).toEqual([])
    expect(cookie?.name).toBe('cb_consent_flow')
    expect(cookie?.attributes.has('httponly')).toBe(true)
    expect(cookie?.attributes.get('samesite')).toBe('Lax')
    expect(cookie?.attributes.get('max-age')).toBe('600')
    expect(cookie?.attributes.get('path')).toBe('/callback')
    expect(cookie?.attributes.has('secure')).toBe(false)
    const unsigned = cookieSigner(b.app).unsign(decodeURIComponent(cookie!.value))
    expect(unsigned.valid).toBe(true)
    expect(unsigned.value).toMatch(/^ms-graph-mail\.[A-Za-z0-9_-]{43}$/)
    // The cookie names the flow, never its state, nonce or PKCE verifier.
    const authorize = new URL(started.location)
    expect(cookie!.value).not.toContain(authorize.searchParams.get('state')!)
    expect(cookie!.value).not.toContain(authorize.searchParams.get('nonce')!)
  })

  it('cookies are Secure when PUBLIC_URL is https, and HSTS is sent', async () => {
    const b = await start({ env: { PUBLIC_URL: 'https://consent.example.com' } })
    const { cookie: formCookie, csrf } = await startFormCredentials(b.app, MAIL)
    // On https the start form's CSRF cookie is a __Host- cookie: Path=/, Secure, no Domain.
    expect(formCookie).toMatch(/^__Host-cb_form=/)
    const response = await b.app.inject({
      method: 'POST',
      url: `/${MAIL}/start`,
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: formCookie },
      payload: `cloud=global&csrf=${csrf}`,
    })
    expect(response.statusCode).toBe(303)
    const [cookie] = setCookies(response)
    expect(cookie?.attributes.has('secure')).toBe(true)
    expect(cookie?.attributes.has('httponly')).toBe(true)
    expect(cookie?.attributes.get('samesite')).toBe('Lax')
    expect(new URL(response.headers.location as string).searchParams.get('redirect_uri')).toBe(
      'https://consent.example.com/callback',
    )
    expect(response.headers['strict-transport-security']).toContain('max-age=')
  })

  it('the admin-consent phase re-issues the flow cookie; the result cookie is scoped to /result', async () => {
    const b = await start()
    const started = await startConsentFlow(b.app, { slug: MAIL })
    const firstCookie = started.jar.get('cb_consent_flow')
    const back = await completeAtEmulator(started.location, { username: CONTOSO_ADMIN.username })
    const phase2 = await browse(b.app, started.jar, { url: pathOf(back) })
    expect(phase2.statusCode).toBe(303)
    const [reissued] = setCookies(phase2)
    expect(reissued?.name).toBe('cb_consent_flow')
    expect(reissued?.value).not.toBe(firstCookie)
    expect(reissued?.attributes.get('max-age')).toBe('600')
    expect(reissued?.attributes.has('httponly')).toBe(true)

    const back2 = await completeAtEmulator(phase2.headers.location as string, {
      username: CONTOSO_ADMIN.username,
    })
    const done = await browse(b.app, started.jar, { url: pathOf(back2) })
    expect(done.statusCode).toBe(303)
    expect(done.headers.location).toBe('/result')
    const cookies = new Map(setCookies(done).map((c) => [c.name, c]))
    // The flow cookie is cleared, the result cookie set.
    expect(cookies.get('cb_consent_flow')?.value).toBe('')
    const result = cookies.get('cb_consent_result')!
    expect(result.attributes.get('path')).toBe('/result')
    expect(result.attributes.has('httponly')).toBe(true)
    expect(result.attributes.get('samesite')).toBe('Lax')
    expect(result.attributes.get('max-age')).toBe('600')
    expect(cookieSigner(b.app).unsign(decodeURIComponent(result.value)).valid).toBe(true)
  })
})

describe('the result page', () => {
  it('is shown once, not cached, with copy buttons and paste steps; a reload shows no values', async () => {
    const b = await start()
    const run = await runConsentViaEmulator(b.app, { slug: MAIL, username: CONTOSO_ADMIN.username })
    const page = run.response
    expect(page.statusCode).toBe(200)
    expect(page.headers['cache-control']).toBe('no-store')
    for (const field of ['id', 'token', 'key']) {
      expect(page.body).toContain(`data-field="${field}"`)
      expect(page.body).toContain(`<button type="button" class="secondary" data-copy="${field}">`)
    }
    expect(page.body).toContain('Use a self-deployed Azure application</strong> unticked')
    expect(page.body).toMatch(/into the <strong>ID<\/strong> field/)
    expect(page.body).toMatch(/into the <strong>Token<\/strong> field/)
    expect(page.body).toMatch(/into the <strong>Key<\/strong> field/)

    const reload = await browse(b.app, run.jar, { url: '/result' })
    expect(reload.statusCode).toBe(410)
    expect(pageTitle(reload.body)).toBe('No values to show')
    expect(parseConsentValues(reload.body)).toBeUndefined()
    // The browser was told to drop the result cookie with the first showing.
    const resultCookie = setCookies(page).find((c) => c.name === 'cb_consent_result')
    expect(resultCookie?.value).toBe('')
  })

  it('a replayed result cookie shows nothing the second time', async () => {
    const b = await start()
    const started = await startConsentFlow(b.app, { slug: LISTENER })
    const back = await completeAtEmulator(started.location, { username: CONTOSO_USER.username })
    const done = await browse(b.app, started.jar, { url: pathOf(back) })
    expect(done.statusCode).toBe(303)
    const cookie = started.jar.header('/result')!
    const first = await b.app.inject({ url: '/result', headers: { cookie } })
    expect(first.statusCode).toBe(200)
    expect(parseConsentValues(first.body)?.token).toBe(CONTOSO_USER.tid)
    const second = await b.app.inject({ url: '/result', headers: { cookie } })
    expect(second.statusCode).toBe(410)
    expect(parseConsentValues(second.body)).toBeUndefined()
  })

  it('the Key never appears in a URL or a Location header', async () => {
    const b = await start()
    // Step by step, keeping every URL the browser visits and every Location the broker sends.
    const started = await startConsentFlow(b.app, { slug: MAIL })
    const urls = [`/${MAIL}/start`, started.location]
    const back = await completeAtEmulator(started.location, { username: CONTOSO_ADMIN.username })
    urls.push(back.href)
    const phase2 = await browse(b.app, started.jar, { url: pathOf(back) })
    urls.push(String(phase2.headers.location))
    const back2 = await completeAtEmulator(String(phase2.headers.location), {
      username: CONTOSO_ADMIN.username,
    })
    urls.push(back2.href)
    const done = await browse(b.app, started.jar, { url: pathOf(back2) })
    expect(done.headers.location).toBe('/result')
    urls.push(String(done.headers.location))
    const result = await browse(b.app, started.jar, { url: '/result' })
    const { key } = parseConsentValues(result.body)!
    expect(urls).toHaveLength(6)
    for (const url of urls) {
      expect(url).not.toContain(key)
      expect(url).not.toContain(encodeURIComponent(key))
      expect(url).not.toContain(Buffer.from(key, 'base64').toString('base64url'))
    }
  })
})

describe('security headers', () => {
  it('every consent page sends CSP without unsafe-inline, frame-ancestors none, no-referrer and nosniff', async () => {
    const b = await start()
    const jar = new CookieJar()
    const responses: Array<[string, LightMyRequestResponse]> = [
      ['app list', await browse(b.app, jar, { url: '/' })],
      ['start page', await browse(b.app, jar, { url: `/${MAIL}` })],
      ['unknown app', await browse(b.app, jar, { url: '/no-such-app' })],
      ['callback without cookie', await browse(b.app, new CookieJar(), { url: '/callback?code=x&state=y' })],
      ['result already shown', await browse(b.app, jar, { url: '/result' })],
      ['stylesheet', await browse(b.app, jar, { url: '/static/app.css' })],
    ]
    const started = await startConsentFlow(b.app, { slug: MAIL })
    responses.push(['start redirect', started.response])
    const run = await runConsentViaEmulator(b.app, { slug: MAIL, username: CONTOSO_ADMIN.username })
    responses.push(['result page', run.response])
    const denied = await runConsentViaEmulator(b.app, { slug: MAIL, username: CONTOSO_USER.username })
    responses.push(['failure page', denied.response])
    for (const [what, response] of responses) expectSecurityHeaders(response, what)
  })

  it('pages carry no inline script or style', async () => {
    const b = await start()
    const run = await runConsentViaEmulator(b.app, { slug: MAIL, username: CONTOSO_ADMIN.username })
    const pages = [
      (await browse(b.app, new CookieJar(), { url: '/' })).body,
      (await browse(b.app, new CookieJar(), { url: `/${MAIL}` })).body,
      run.response.body,
    ]
    for (const body of pages) {
      expect(body).not.toMatch(/<style/i)
      expect(body).not.toMatch(/\sstyle=/i)
      expect(body).not.toMatch(/\son[a-z]+=/i)
      for (const script of body.match(/<script\b[^>]*>/gi) ?? [])
        expect(script).toMatch(/src="\/static\/app\.js"/)
    }
  })
})

describe('start and pages', () => {
  it('lists the apps and shows a start page with permissions, consent kind and the start button', async () => {
    const b = await start()
    const list = await browse(b.app, new CookieJar(), { url: '/' })
    expect(list.statusCode).toBe(200)
    for (const app of b.config.apps) expect(list.body).toContain(`href="/${app.slug}"`)
    const page = await browse(b.app, new CookieJar(), { url: `/${MAIL}` })
    expect(page.statusCode).toBe(200)
    expect(page.body).toContain(`<form method="post" action="/${MAIL}/start">`)
    expect(page.body).toContain('<button type="submit">Start Authorization Process</button>')
    expect(page.body).toContain('<code>Mail.ReadWrite</code>')
    expect(page.body).toContain('Admin consent')
    const delegated = await browse(b.app, new CookieJar(), { url: `/${LISTENER}` })
    expect(delegated.body).toContain('User consent')
  })

  it('unknown apps are 404 pages; an unknown or unoffered cloud is refused', async () => {
    const b = await start()
    const unknown = await browse(b.app, new CookieJar(), { url: '/no-such-app' })
    expect(unknown.statusCode).toBe(404)
    expect(unknown.headers['content-type']).toContain('text/html')
    const jar = new CookieJar()
    const csrf = await formCsrf(b.app, jar, `/${MAIL}`)
    const startUnknown = await browse(b.app, jar, {
      method: 'POST',
      url: '/no-such-app/start',
      form: { csrf },
    })
    expect(startUnknown.statusCode).toBe(404)
    const notOffered = await browse(b.app, jar, {
      method: 'POST',
      url: `/${MAIL}/start`,
      form: { cloud: 'china', csrf },
    })
    expect(notOffered.statusCode).toBe(400)
    expect(notOffered.body).toContain('cloud')
    expect(setCookies(notOffered)).toEqual([])
    const invalid = await browse(b.app, jar, {
      method: 'POST',
      url: `/${MAIL}/start`,
      form: { cloud: 'mars', csrf },
    })
    expect(invalid.statusCode).toBe(400)
  })

  it('refuses a start posted from another site', async () => {
    const b = await start()
    const crossSite = await b.app.inject({
      method: 'POST',
      url: `/${MAIL}/start`,
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'cross-site' },
      payload: 'cloud=global',
    })
    expect(crossSite.statusCode).toBe(403)
    expect(setCookies(crossSite)).toEqual([])
    const foreignOrigin = await b.app.inject({
      method: 'POST',
      url: `/${MAIL}/start`,
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://evil.example' },
      payload: 'cloud=global',
    })
    expect(foreignOrigin.statusCode).toBe(403)
    // Our own no-referrer policy makes browsers send `Origin: null` on same-origin posts.
    const { cookie, csrf } = await startFormCredentials(b.app, MAIL)
    const sameSite = await b.app.inject({
      method: 'POST',
      url: `/${MAIL}/start`,
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        origin: 'null',
        'sec-fetch-site': 'same-origin',
        cookie,
      },
      payload: `cloud=global&csrf=${csrf}`,
    })
    expect(sameSite.statusCode).toBe(303)
  })
})

describe('secrets at rest and in logs', () => {
  async function dumpRedis(prefix: string): Promise<string> {
    const redis = new Redis(redisUrl)
    redis.on('error', () => undefined) // a failed command still rejects; no ioredis stack print
    try {
      const parts: string[] = []
      let cursor = '0'
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500)
        cursor = next
        for (const key of keys) {
          parts.push(key)
          const type = await redis.type(key)
          if (type === 'string') parts.push((await redis.get(key)) ?? '')
          else if (type === 'hash') parts.push(JSON.stringify(await redis.hgetall(key)))
          else if (type === 'set') parts.push(JSON.stringify(await redis.smembers(key)))
          else if (type === 'zset')
            parts.push(JSON.stringify(await redis.zrange(key, '0', '-1', 'WITHSCORES')))
          else if (type === 'list') parts.push(JSON.stringify(await redis.lrange(key, 0, -1)))
          else if (type === 'stream') parts.push(JSON.stringify(await redis.xrange(key, '-', '+')))
          else parts.push(`<${type}>`)
        }
      } while (cursor !== '0')
      return parts.join('\n')
    } finally {
      redis.disconnect()
    }
  }

  function captureLogs(): { logger: FastifyBaseLogger; text(): string } {
    const { logger, lines } = memoryLogger('debug')
    return { logger, text: () => lines.join('\n') }
  }

  it('Redis never holds a Key or a refresh token in clear, before or after the result is shown', async () => {
    const refreshTokens: string[] = []
    const b = await start({
      decorateIdp: capturingRefreshTokens(refreshTokens),
    })
    const started = await startConsentFlow(b.app, { slug: LISTENER })
    // The flow record (state, nonce, PKCE verifier) is sealed too.
    const authorize = new URL(started.location)
    const duringFlow = await dumpRedis(b.keyPrefix)
    expect(duringFlow).toContain('consent:flow:')
    expect(duringFlow).not.toContain(authorize.searchParams.get('state')!)
    expect(duringFlow).not.toContain(authorize.searchParams.get('nonce')!)
    const back = await completeAtEmulator(started.location, { username: CONTOSO_USER.username })
    const done = await browse(b.app, started.jar, { url: pathOf(back) })
    expect(done.statusCode).toBe(303)
    // The one-time result (with the Key) waits in Redis now: sealed (a new delegated registration's
    // result, its Key not shown yet, has its own prefix).
    const beforeShown = await dumpRedis(b.keyPrefix)
    expect(beforeShown).toContain('consent:result-unshown:')
    const result = await browse(b.app, started.jar, { url: '/result' })
    const values = parseConsentValues(result.body)!
    const afterShown = await dumpRedis(b.keyPrefix)

    expect(refreshTokens).toHaveLength(1)
    const refreshToken = refreshTokens[0]!
    const code = new URL(back).searchParams.get('code')!
    const keyHex = Buffer.from(values.key, 'base64').toString('hex')
    const keyUrlSafe = Buffer.from(values.key, 'base64').toString('base64url')
    for (const dump of [beforeShown, afterShown]) {
      expect(dump).toContain(values.registrationId)
      for (const secret of [values.key, keyHex, keyUrlSafe, refreshToken, code])
        expect(dump).not.toContain(secret)
    }
    // The stored secrets still open to the right values through the store.
    const stored = await b.store.registrations.get(values.registrationId)
    expect(stored?.secrets).toEqual({ key: values.key, refreshToken })
  })

  it('the logs never contain the Key, the refresh token, the code, the state or a cookie', async () => {
    const logs = captureLogs()
    const refreshTokens: string[] = []
    const b = await start({
      logger: logs.logger,
      decorateIdp: capturingRefreshTokens(refreshTokens),
    })
    const started = await startConsentFlow(b.app, { slug: LISTENER })
    const state = new URL(started.location).searchParams.get('state')!
    const back = await completeAtEmulator(started.location, { username: CONTOSO_USER.username })
    const flowCookie = started.jar.get('cb_consent_flow')!
    await browse(b.app, started.jar, { url: pathOf(back) })
    const resultCookie = started.jar.get('cb_consent_result')!
    const result = await browse(b.app, started.jar, { url: '/result' })
    const values = parseConsentValues(result.body)!
    // Plus an admin consent and a failure, which log more.
    const admin = await consentViaEmulator(b.app, { slug: MAIL, username: CONTOSO_ADMIN.username })
    await runConsentViaEmulator(b.app, { slug: MAIL, username: CONTOSO_USER.username })

    const text = logs.text()
    expect(text).toContain('consent completed')
    expect(text).toContain('consent failed')
    const code = new URL(back).searchParams.get('code')!
    for (const secret of [values.key, admin.key, refreshTokens[0]!, code, state, flowCookie, resultCookie]) {
      expect(text).not.toContain(secret)
    }
  })
})
