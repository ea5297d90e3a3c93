// The device code method of a tenant's own app registration, in a real browser: the own-app form
// with the device code method, the broker's page showing the code and the verification link and
// reloading itself (meta refresh, no script of ours), the person entering the code at the
// emulator's /devicelogin in another tab and signing in, and the broker's tab arriving on its own
// at the one-time result page, whose values obtain-token accepts through the independent client.
import { existsSync } from 'node:fs'
import { type Browser, chromium, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CONTOSO_TENANT_ID, CONTOSO_USER } from '../../emulator/demo-data.js'
import { startEmulator } from '../../emulator/server.js'
import { type RunningBroker, startBroker } from '../support/broker.js'
import { findFreePort } from '../support/redis-server.js'
import { XsoarClient } from '../support/xsoar-client.js'

const CHROMIUM = '/usr/bin/chromium'
if (!existsSync(CHROMIUM)) {
  throw new Error(`browser tests need Debian's Chromium at ${CHROMIUM}: apt-get install -y chromium`)
}
const SLUG = 'ms-graph-mail-listener'

let emulator: Awaited<ReturnType<typeof startEmulator>>
let broker: RunningBroker
let baseUrl: string
let browser: Browser

beforeAll(async () => {
  emulator = await startEmulator({ port: 0, deviceCodeIntervalSec: 1 })
  const port = await findFreePort()
  baseUrl = `http://127.0.0.1:${port}`
  broker = await startBroker({ authorityUrl: emulator.url, env: { PUBLIC_URL: baseUrl } })
  await broker.app.listen({ host: '127.0.0.1', port })
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-sync',
    ],
  })
})

afterAll(async () => {
  await browser?.close()
  await broker?.close()
  await emulator?.close()
})

/** CSP violations and page errors: a clean run has none. */
function watchProblems(page: Page): string[] {
  const problems: string[] = []
  page.on('console', (message) => {
    if (/Content Security Policy|Refused to/i.test(message.text())) problems.push(message.text())
  })
  page.on('pageerror', (error) => problems.push(String(error)))
  return problems
}

describe('own app registration, device code method, in a real browser', () => {
  it('shows the code, reloads itself while the person signs in at Microsoft, then the result', async () => {
    const registered = await fetch(`${emulator.url}/_emulator/tenants/${CONTOSO_TENANT_ID}/apps`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ redirectUris: [], allowPublicClient: true }),
    })
    const { clientId } = (await registered.json()) as { clientId: string }
    const context = await browser.newContext()
    const page = await context.newPage()
    const problems = watchProblems(page)
    await page.goto(`${baseUrl}/${SLUG}`)
    await page.click(`a[href="/${SLUG}/own-app"]`)
    await page.fill('input[name="tenant_id"]', CONTOSO_TENANT_ID)
    await page.fill('input[name="client_id"]', clientId)
    await page.check('input[name="method"][value="device_code"]')
    await page.getByRole('button', { name: 'Start Authorization Process' }).click()
    await page.waitForURL((url) => url.pathname.startsWith(`/${SLUG}/own-app/device/`))
    const devicePage = page.url()
    const userCode = (await page.textContent('[data-field="user_code"]'))?.trim() ?? ''
    const verificationUri = (await page.getAttribute('[data-field="verification_uri"]', 'href')) ?? ''
    expect(userCode).toMatch(/^[A-Z]{9}$/)
    expect(verificationUri).toBe(`${emulator.url}/devicelogin`)

    // The person, in another tab: the code, then the usual sign-in and consent.
    const microsoft = await context.newPage()
    await microsoft.goto(verificationUri)
    await microsoft.fill('input[name="user_code"]', userCode)
    await microsoft.getByRole('button', { name: 'Next' }).click()
    await microsoft.waitForSelector('input[name="username"]')
    await microsoft.fill('input[name="username"]', CONTOSO_USER.username)
    await microsoft.locator('form').first().locator('button[type="submit"]').first().click()
    await microsoft.waitForLoadState('domcontentloaded')
    if ((await microsoft.locator('button[name="decision"][value="accept"]').count()) > 0) {
      await microsoft.click('button[name="decision"][value="accept"]')
      await microsoft.waitForLoadState('domcontentloaded')
    }
    expect(await microsoft.textContent('body')).toContain('You may now close this window')

    // The broker's tab gets there by itself (meta refresh), nobody clicks.
    await page.waitForURL(`${baseUrl}/result`, { timeout: 30_000 })
    const id = (await page.textContent('[data-field="id"]'))?.trim() ?? ''
    const token = (await page.textContent('[data-field="token"]'))?.trim() ?? ''
    const key = (await page.textContent('[data-field="key"]'))?.trim() ?? ''
    expect((await page.textContent('[data-field="own_client_id"]'))?.trim()).toBe(clientId)
    expect(token).toBe(CONTOSO_TENANT_ID)
    expect(problems).toEqual([])

    // Another browser with the flow's URL sees neither the code nor a result.
    const strangerContext = await browser.newContext()
    const stranger = await strangerContext.newPage()
    const answer = await stranger.goto(devicePage)
    expect(answer?.status()).toBe(400)
    expect(await stranger.content()).not.toContain(userCode)
    await strangerContext.close()

    const tokenAnswer = await new XsoarClient({ id, token, key, appName: SLUG }).getAccessToken()
    expect(tokenAnswer.status).toBe(200)
    const claims = JSON.parse(
      Buffer.from(tokenAnswer.accessToken.split('.')[1]!, 'base64url').toString(),
    ) as {
      appid: string
    }
    expect(claims.appid).toBe(clientId)
    await context.close()
  })
})
