// The operator console in a real browser at 1280×800, with data as long as real data gets: long
// tenant labels, UPNs, display names and clients, 96-character registration ids, many
// registrations, long revocation reasons and webhook URLs. Every console page must fit the window
// (no horizontal scrolling) and every table its card; times never break across lines; the copy
// buttons work with JavaScript and are absent without it. The console home's screenshot in
// docs/images/ is this run's page.
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type Browser, chromium, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startEmulator } from '../../emulator/server.js'
import type { RegistrationStatus } from '../../src/store/types.js'
import { bearer, operatorToken } from '../support/admin-helpers.js'
import { consentViaEmulator, type RunningBroker, startBroker } from '../support/broker.js'
import { findFreePort } from '../support/redis-server.js'

const IMAGES = fileURLToPath(new URL('../../docs/images/', import.meta.url))
const CHROMIUM = '/usr/bin/chromium'
if (!existsSync(CHROMIUM)) {
  throw new Error(`browser tests need Debian's Chromium at ${CHROMIUM}: apt-get install -y chromium`)
}

const TOKEN = operatorToken('operator-with-a-rather-long-name')
const TENANTS = 24
const REGISTRATIONS = 150
const guid = (n: number) =>
  `${n.toString(16).padStart(8, '0')}-5e1a-4c0d-9b7e-${(n * 7919).toString(16).padStart(12, '0')}`

let emulator: Awaited<ReturnType<typeof startEmulator>>
let broker: RunningBroker
let baseUrl: string
let browser: Browser
let profileDir: string
let longId: string
let longTenant: string

/** Registrations, labels, audit events, failures and a webhook endpoint, all as long as allowed. */
async function seed(): Promise<void> {
  const { store } = broker
  // Real consents first (their who-consented and labels come from the ID token).
  await consentViaEmulator(broker.app, { slug: 'ms-graph-mail', username: 'admin@contoso.example' })
  await consentViaEmulator(broker.app, { slug: 'ms-graph-mail-listener', username: 'user@fabrikam.example' })
  const now = Date.now()
  const apps = broker.config.apps.map((a) => a.slug)
  for (let t = 0; t < TENANTS; t++) {
    await store.tenantLabels.set(
      guid(t + 1),
      `Northwind Traders International Holdings, Research & Development Division Nr. ${t + 1}`.slice(0, 100),
    )
  }
  longTenant = guid(1)
  for (let i = 0; i < REGISTRATIONS; i++) {
    const status: RegistrationStatus = i % 5 === 0 ? 'needs_consent' : i % 7 === 0 ? 'revoked' : 'active'
    const at = new Date(now - i * 3_600_000).toISOString()
    // As long as a path segment may be (the router's 100 characters); real ids are UUIDs.
    const id =
      `${i.toString().padStart(4, '0')}-${'registration-with-a-very-long-identifier'.repeat(3)}`.slice(0, 96)
    if (i === 0) longId = id
    const kind = i % 2 === 0 ? 'delegated' : 'admin'
    const result = await store.registrations.create(
      {
        id,
        app: apps[i % apps.length]!,
        cloud: 'global',
        tenantId: guid((i % TENANTS) + 1),
        kind,
        ...(kind === 'delegated' ? { userOid: guid(10_000 + i) } : {}),
        userName: `firstname.middlename.lastname-${i}@research-and-development.northwind-traders.example`,
        userDisplayName: `Firstname Middlename Lastname-Doubleбарреl the ${i}th`,
        status,
        ...(status === 'active'
          ? {}
          : {
              statusDetail: {
                code: status === 'revoked' ? 'operator_revoked' : 'AADSTS50173',
                at,
                ...(status === 'revoked'
                  ? { by: 'operator-with-a-rather-long-name', reason: 'offboarded: '.repeat(30) }
                  : {
                      message:
                        'The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password.',
                    }),
              },
            }),
        createdAt: at,
        updatedAt: at,
        consentedAt: at,
      },
      {
        key: Buffer.alloc(32, i).toString('base64'),
        ...(kind === 'delegated' ? { refreshToken: `rt-${i}` } : {}),
      },
    )
    if (!result.created) throw new Error(`seed registration ${id} not created`)
    await store.registrations.touch(id, {
      lastIssuedAt: new Date(now - i * 60_000).toISOString(),
      lastClient: `Cortex XSOAR Microsoft Graph Mail Single User integration/${i}.0.0-build-20261130`,
    })
  }
  for (let i = 0; i < 120; i++) {
    await store.audit.append({
      type: i % 3 === 0 ? 'registration.revoked' : 'registration.read',
      actor: 'operator:operator-with-a-rather-long-name',
      tenantId: guid((i % TENANTS) + 1),
      app: apps[i % apps.length]!,
      registrationId: longId,
      detail: {
        reason: `a long reason, word after word, ${'without any pause '.repeat(20)}`,
        via: 'console',
      },
    })
  }
  for (const [app, code, times] of [
    ['ms-graph-mail', 'upstream_unavailable', 40],
    ['ms-graph-mail-listener', 'needs_consent', 3],
    ['ms-graph-user', 'upstream_throttled', 12],
  ] as const) {
    for (let i = 0; i < times; i++) await store.upstreamFailures.record(app, code, now - i * 30_000)
  }
  const added = await broker.app.inject({
    method: 'POST',
    url: '/admin/api/webhooks',
    headers: bearer(TOKEN),
    payload: {
      url: `https://127.0.0.1:9/${'a-very-long-path-segment/'.repeat(12)}receiver?tenant=${'x'.repeat(80)}`,
    },
  })
  if (added.statusCode !== 201) throw new Error(`webhook endpoint: ${added.statusCode} ${added.body}`)
}

beforeAll(async () => {
  emulator = await startEmulator({ port: 0 })
  const port = await findFreePort()
  baseUrl = `http://127.0.0.1:${port}`
  broker = await startBroker({
    authorityUrl: emulator.url,
    env: {
      PUBLIC_URL: baseUrl,
      OPERATOR_TOKENS: `operator-with-a-rather-long-name:${TOKEN}`,
      WEBHOOK_ALLOW_PRIVATE_ADDRESSES: 'true',
    },
  })
  await broker.app.listen({ host: '127.0.0.1', port })
  await seed()
  profileDir = await mkdtemp(join(tmpdir(), 'cb-chromium-'))
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
  if (profileDir) await rm(profileDir, { recursive: true, force: true })
})

/** CSP violations and page errors: a clean page has none. */
function watchProblems(page: Page): string[] {
  const problems: string[] = []
  page.on('console', (message) => {
    if (/Content Security Policy|Refused to/i.test(message.text())) problems.push(message.text())
  })
  page.on('pageerror', (error) => problems.push(String(error)))
  return problems
}

async function signIn(page: Page): Promise<void> {
  await page.goto(`${baseUrl}/admin/sign-in`)
  await page.fill('input[name="token"]', TOKEN)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.waitForURL(`${baseUrl}/admin/home`)
}

interface Layout {
  scrollWidth: number
  clientWidth: number
  tables: Array<{ index: number; scrollWidth: number; cardWidth: number }>
  /** `<time>` elements laid out on more than one line. */
  splitTimes: string[]
  rows: number
}

/** Measures the page as the browser laid it out (a string: the test's types have no DOM). */
const MEASURE = `(() => {
  const root = document.documentElement
  const tables = [...document.querySelectorAll('table')].map((table, index) => {
    const card = table.closest('.card') || table.parentElement
    return { index, scrollWidth: table.scrollWidth, cardWidth: card.clientWidth }
  })
  const splitTimes = [...document.querySelectorAll('time')]
    .filter((time) => time.getClientRects().length > 1)
    .map((time) => time.textContent)
  return {
    scrollWidth: root.scrollWidth,
    clientWidth: root.clientWidth,
    tables,
    splitTimes,
    rows: document.querySelectorAll('tbody tr').length,
  }
})()`

describe('the console at 1280 px', () => {
  it('every page fits the window and every table its card, with long real-world values', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
    const page = await context.newPage()
    const problems = watchProblems(page)
    await signIn(page)
    const pages = [
      '/admin/home',
      '/admin/tenants',
      '/admin/registrations',
      `/admin/registrations?tenant=${longTenant}`,
      '/admin/registrations?status=revoked',
      `/admin/registrations/${longId}`,
      `/admin/registrations/${longId}/revoke`,
      `/admin/tenants/${longTenant}/revoke`,
      '/admin/audit',
      '/admin/audit?window=24h',
      '/admin/keys',
      '/admin/webhooks',
      '/admin/credentials',
    ]
    for (const path of pages) {
      const response = await page.goto(`${baseUrl}${path}`)
      expect(response?.status(), path).toBe(200)
      const layout = (await page.evaluate(MEASURE)) as Layout
      expect(layout.scrollWidth, `${path}: page wider than the window`).toBeLessThanOrEqual(
        layout.clientWidth,
      )
      for (const table of layout.tables) {
        expect(table.scrollWidth, `${path}: table ${table.index} wider than its card`).toBeLessThanOrEqual(
          table.cardWidth,
        )
      }
      expect(layout.splitTimes, `${path}: a time split across lines`).toEqual([])
    }
    // The lists were full: the check measured real pages, not empty ones.
    await page.goto(`${baseUrl}/admin/registrations`)
    expect(((await page.evaluate(MEASURE)) as Layout).rows).toBe(50)
    await page.goto(`${baseUrl}/admin/audit`)
    expect(((await page.evaluate(MEASURE)) as Layout).rows).toBe(100)
    expect(problems).toEqual([])
    await context.close()
  })

  it('the home page tells what needs attention; its screenshot goes to the docs', async () => {
    await mkdir(IMAGES, { recursive: true })
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
    const page = await context.newPage()
    const problems = watchProblems(page)
    await signIn(page)
    const text = (await page.textContent('main')) ?? ''
    expect(text).toContain('Needs consent: 30 registrations')
    expect(text).toContain('Upstream failures in the last hour: 55')
    expect(await page.locator('#needs-consent tbody tr').count()).toBe(10)
    // Relative times, the exact UTC on hover.
    const time = page.locator('#needs-consent time').first()
    expect(await time.textContent()).toMatch(/ago$|^just now$/)
    expect(await time.getAttribute('title')).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/)
    await page.screenshot({ path: join(IMAGES, 'console.png') })
    expect((await stat(join(IMAGES, 'console.png'))).size).toBeGreaterThan(10_000)
    expect(problems).toEqual([])
    await context.close()
  })

  it('copy buttons copy the full id with JavaScript and are absent without it', async () => {
    const context = await browser.newContext({
      viewport: { width: 1280, height: 800 },
      permissions: ['clipboard-read', 'clipboard-write'],
    })
    const page = await context.newPage()
    const problems = watchProblems(page)
    await signIn(page)
    await page.goto(`${baseUrl}/admin/registrations?tenant=${longTenant}`)
    const button = page.locator(`button[data-copy-text="${longTenant}"]`).first()
    expect(await button.isVisible()).toBe(true)
    await button.click()
    await expect.poll(() => page.evaluate('navigator.clipboard.readText()')).toBe(longTenant)
    const idButton = page.locator(`button[data-copy-text="${longId}"]`).first()
    await idButton.click()
    await expect.poll(() => page.evaluate('navigator.clipboard.readText()')).toBe(longId)
    // The shortened id shows its full value on hover.
    expect(await page.locator(`a[title="${longId}"]`).count()).toBeGreaterThan(0)
    expect(problems).toEqual([])
    await context.close()

    const noScript = await browser.newContext({
      viewport: { width: 1280, height: 800 },
      javaScriptEnabled: false,
    })
    const plain = await noScript.newPage()
    await signIn(plain)
    await plain.goto(`${baseUrl}/admin/registrations?tenant=${longTenant}`)
    expect(await plain.locator('button[data-copy-text]').count()).toBeGreaterThan(0)
    expect(await plain.locator('button[data-copy-text]:visible').count()).toBe(0)
    // Without JavaScript the revocation still works: confirmation page, reason, revoked.
    await plain.goto(`${baseUrl}/admin/registrations/${longId}`)
    await plain.getByRole('link', { name: 'Revoke this registration…' }).click()
    await plain.fill('input[name="reason"]', 'checked in a browser without JavaScript')
    await plain.getByRole('button', { name: 'Revoke this registration' }).click()
    await plain.waitForURL(`${baseUrl}/admin/registrations/${longId}?done=revoked`)
    expect(await plain.textContent('main')).toContain('The registration is revoked.')
    expect((await broker.store.registrations.getMeta(longId))?.status).toBe('revoked')
    await noScript.close()
  })
})
