// A person's path through the demo, in a real browser: the apps page, Start Authorization Process,
// sign-in and consent at the emulator, the result page with ID/Token/Key, and those values working
// at obtain-token; the same with a tenant's own app registration (the own-app page and form).
// A browser catches what HTTP-level tests can't: the CSP blocking a script, a style
// or the form's redirect to the authority.
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startEmulator } from '../../emulator/server.js'
import { type RunningBroker, startBroker } from '../support/broker.js'
import { findFreePort } from '../support/redis-server.js'
import { XsoarClient } from '../support/xsoar-client.js'

const IMAGES = fileURLToPath(new URL('../../docs/images/', import.meta.url))

const CHROMIUM = '/usr/bin/chromium'
if (!existsSync(CHROMIUM)) {
  throw new Error(`browser tests need Debian's Chromium at ${CHROMIUM}: apt-get install -y chromium`)
}

let emulator: Awaited<ReturnType<typeof startEmulator>>
let broker: RunningBroker
let baseUrl: string
let browser: Browser
let profileDir: string

beforeAll(async () => {
  emulator = await startEmulator({ port: 0 })
  const port = await findFreePort()
  baseUrl = `http://127.0.0.1:${port}`
  broker = await startBroker({ authorityUrl: emulator.url, env: { PUBLIC_URL: baseUrl } })
  await broker.app.listen({ host: '127.0.0.1', port })
  profileDir = await mkdtemp(join(tmpdir(), 'cb-chromium-'))
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  })
})

afterAll(async () => {
  await browser?.close()
  await broker?.close()
  await emulator?.close()
  if (profileDir) await rm(profileDir, { recursive: true, force: true })
})

/** Collects CSP violations and page errors: a clean run has none. */
function watchProblems(page: Page): string[] {
  const problems: string[] = []
  page.on('console', (message) => {
    if (/Content Security Policy|Refused to/i.test(message.text())) problems.push(message.text())
  })
  page.on('pageerror', (error) => problems.push(String(error)))
  return problems
}

/** One page at the identity provider: fill the sign-in form, or accept the consent page. */
async function atIdentityProvider(page: Page, username: string): Promise<void> {
  const current = page.url()
  if ((await page.locator('input[name="username"]').count()) > 0) {
    await page.fill('input[name="username"]', username)
    await page.locator('form').first().locator('button[type="submit"], input[type="submit"]').first().click()
  } else if ((await page.locator('button[name="decision"][value="accept"]').count()) > 0) {
    await page.click('button[name="decision"][value="accept"]')
  } else {
    throw new Error(`unexpected page at the identity provider: ${await page.title()}`)
  }
  await page.waitForURL((url) => url.href !== current, { waitUntil: 'domcontentloaded' })
}

async function consentInBrowser(
  context: BrowserContext,
  options: { slug: string; username: string; screenshot?: string; startScreenshot?: string },
): Promise<{ id: string; token: string; key: string; page: Page; problems: string[] }> {
  const page = await context.newPage()
  const problems = watchProblems(page)
  await page.goto(`${baseUrl}/`)
  await page.click(`a[href="/${options.slug}"]`)
  if (options.startScreenshot) await page.screenshot({ path: options.startScreenshot, fullPage: true })
  await page.getByRole('button', { name: 'Start Authorization Process' }).click()
  // At the identity provider: sign in and consent, as often as it asks (admin consent is a
  // sign-in followed by the tenant-wide consent page), until the broker has the browser back.
  await page.waitForURL((url) => url.origin === emulator.url)
  for (let step = 0; step < 6 && new URL(page.url()).origin === emulator.url; step++) {
    await atIdentityProvider(page, options.username)
  }
  await page.waitForURL((url) => url.origin === baseUrl && !url.pathname.startsWith('/callback'))
  const id = (await page.textContent('[data-field="id"]'))?.trim() ?? ''
  const token = (await page.textContent('[data-field="token"]'))?.trim() ?? ''
  const key = (await page.textContent('[data-field="key"]'))?.trim() ?? ''
  if (options.screenshot) await page.screenshot({ path: options.screenshot, fullPage: true })
  return { id, token, key, page, problems }
}

describe('consent in a real browser', () => {
  it('admin consent: the result page shows ID/Token/Key that obtain-token accepts', async () => {
    // The README's pictures are this run's pages (1280 px wide), so they show the pages as they are.
    await mkdir(IMAGES, { recursive: true })
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
    const { id, token, key, page, problems } = await consentInBrowser(context, {
      slug: 'ms-graph-mail',
      username: 'admin@contoso.example',
      startScreenshot: join(IMAGES, 'consent-page.png'),
      screenshot: join(IMAGES, 'result-page.png'),
    })
    expect((await stat(join(IMAGES, 'consent-page.png'))).size).toBeGreaterThan(10_000)
    expect((await stat(join(IMAGES, 'result-page.png'))).size).toBeGreaterThan(10_000)
    expect(id).toMatch(new RegExp(`^[0-9a-f-]{36}@${baseUrl.replace(/[.]/g, '\\.')}/obtain-token$`))
    expect(token).toBe('7c3b1e5a-4d2f-4b8e-9a61-2f0c8d4e6b13')
    expect(Buffer.from(key, 'base64')).toHaveLength(32)
    // The Key is in the page, never in the address bar.
    expect(page.url()).not.toContain(encodeURIComponent(key))
    expect(page.url()).not.toContain(key)
    expect(problems).toEqual([])

    const client = new XsoarClient({ id, token, key, appName: 'ms-graph-mail' })
    const answer = await client.getAccessToken()
    expect(answer.status).toBe(200)
    expect(answer.accessToken.split('.')).toHaveLength(3)
    expect(answer.refreshToken).toBe(token)

    // Reloading never shows the values again.
    await page.reload()
    expect(await page.locator('[data-field="key"]').count()).toBe(0)
    expect(await page.textContent('body')).toMatch(/already (been )?shown/i)
    await context.close()
  })

  it('delegated consent works the same way for a user without admin role', async () => {
    const context = await browser.newContext()
    const { id, token, key, problems } = await consentInBrowser(context, {
      slug: 'ms-graph-mail-listener',
      username: 'user@fabrikam.example',
    })
    expect(token).toBe('a9e4f7c2-1b3d-4e5f-8a7b-6c5d4e3f2a10')
    expect(problems).toEqual([])
    const client = new XsoarClient({ id, token, key, appName: 'ms-graph-mail-listener' })
    const answer = await client.getAccessToken()
    expect(answer.status).toBe(200)
    expect(answer.refreshToken).toBe(token)
    await context.close()
  })

  it('the copy button copies the Key to the clipboard', async () => {
    const context = await browser.newContext({ permissions: ['clipboard-read', 'clipboard-write'] })
    const { key, page, problems } = await consentInBrowser(context, {
      slug: 'ms-graph-user',
      username: 'admin@fabrikam.example',
    })
    await page.click('button[data-copy="key"]')
    // The page's own clipboard, read in the browser (the test's Node types have no DOM).
    await expect.poll(() => page.evaluate('navigator.clipboard.readText()')).toBe(key)
    expect(problems).toEqual([])
    await context.close()
  })

  it('a non-admin on an admin-consent app gets a failure page with a way to try again', async () => {
    const context = await browser.newContext()
    const page = await context.newPage()
    const problems = watchProblems(page)
    await page.goto(`${baseUrl}/ms-graph-mail`)
    await page.getByRole('button', { name: 'Start Authorization Process' }).click()
    await page.waitForURL((url) => url.origin === emulator.url)
    for (let step = 0; step < 6 && new URL(page.url()).origin === emulator.url; step++) {
      await atIdentityProvider(page, 'user@contoso.example')
    }
    await page.waitForURL((url) => url.origin === baseUrl)
    expect(await page.title()).toMatch(/admin/i)
    expect(await page.locator('[data-field="key"]').count()).toBe(0)
    expect(await page.locator('a[href="/ms-graph-mail"]').count()).toBeGreaterThan(0)
    expect(problems).toEqual([])
    await context.close()
  })
})

describe('own app registration in a real browser', () => {
  it('browser method: the own-app page, the form, Microsoft at the tenant, a result that obtain-token accepts', async () => {
    const registered = await fetch(
      `${emulator.url}/_emulator/tenants/7c3b1e5a-4d2f-4b8e-9a61-2f0c8d4e6b13/apps`,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ redirectUris: [`${baseUrl}/callback`], allowPublicClient: false }),
      },
    )
    const own = (await registered.json()) as { clientId: string; clientSecret: string }
    const context = await browser.newContext()
    const page = await context.newPage()
    const problems = watchProblems(page)
    await page.goto(`${baseUrl}/ms-graph-mail`)
    await page.click('a[href="/ms-graph-mail/own-app"]')
    expect((await page.textContent('[data-field="redirect_uri"]'))?.trim()).toBe(`${baseUrl}/callback`)
    await page.fill('input[name="tenant_id"]', '7c3b1e5a-4d2f-4b8e-9a61-2f0c8d4e6b13')
    await page.fill('input[name="client_id"]', own.clientId)
    await page.fill('input[name="client_secret"]', own.clientSecret)
    await page.getByRole('button', { name: 'Start Authorization Process' }).click()
    await page.waitForURL((url) => url.origin === emulator.url)
    // The tenant's own app signs in at the tenant, not at `organizations`.
    expect(page.url()).not.toContain('/organizations/')
    for (let step = 0; step < 6 && new URL(page.url()).origin === emulator.url; step++) {
      await atIdentityProvider(page, 'admin@contoso.example')
    }
    await page.waitForURL((url) => url.origin === baseUrl && !url.pathname.startsWith('/callback'))
    const id = (await page.textContent('[data-field="id"]'))?.trim() ?? ''
    const token = (await page.textContent('[data-field="token"]'))?.trim() ?? ''
    const key = (await page.textContent('[data-field="key"]'))?.trim() ?? ''
    expect((await page.textContent('[data-field="own_client_id"]'))?.trim()).toBe(own.clientId)
    expect(await page.content()).not.toContain(own.clientSecret)
    expect(problems).toEqual([])
    const answer = await new XsoarClient({ id, token, key, appName: 'ms-graph-mail' }).getAccessToken()
    expect(answer.status).toBe(200)
    const claims = JSON.parse(Buffer.from(answer.accessToken.split('.')[1]!, 'base64url').toString()) as {
      appid: string
    }
    expect(claims.appid).toBe(own.clientId)
    await context.close()
  })
})
