import { describe, expect, it } from 'vitest'
import type { AppConfig } from '../../src/config.js'
import { CONSENT_FAILURE_REASONS, statusOf } from '../../src/errors.js'
import type { ConsentResult } from '../../src/services/consent-flow.js'
import { renderAppListPage } from '../../src/views/app-list.js'
import {
  renderFailurePage,
  renderResultGonePage,
  renderResultPage,
  renderStartPage,
} from '../../src/views/consent-pages.js'

const GLOBAL_ADMIN = '62e90394-69f5-4237-9190-012177145e10'
const PRIVILEGED_ROLE_ADMIN = 'e8611ab8-c189-46e8-94e1-60213ab1f814'
const XSS = '<script>alert(1)</script>'

const app: AppConfig = {
  slug: 'ms-graph-mail',
  displayName: `Mail ${XSS}`,
  description: 'Reads mail',
  integrations: [`Outlook ${XSS}`],
  group: `Mail ${XSS}`,
  listSubscriptions: false,
  consent: 'admin',
  permissions: [{ name: 'Mail.Read', type: 'Application', description: `read ${XSS}` }],
  defaultScope: '{graph}/.default',
  consentScopes: [],
  allowedScopes: [],
  allowedResources: [],
  clouds: { global: { clientId: 'c', clientSecret: 's' }, usgov: { clientId: 'c2', clientSecret: 's2' } },
}

const result: ConsentResult = {
  app: 'ms-graph-mail-listener',
  appName: 'Mail listener',
  kind: 'delegated',
  cloud: 'global',
  registrationId: 'reg-1',
  id: 'reg-1@https://consent.example.com/obtain-token',
  token: '7c3b1e5a-4d2f-4b8e-9a61-2f0c8d4e6b13',
  key: 'ab+/cd==',
  reused: false,
  userName: `"><img src=x onerror=alert(1)>`,
}

function expectNoActiveContent(page: string): void {
  expect(page).not.toContain('<script>alert')
  expect(page).not.toMatch(/<img/i)
  expect(page).not.toMatch(/<style/i)
  expect(page).not.toMatch(/\sstyle=/i)
  for (const script of page.match(/<script\b[^>]*>/gi) ?? [])
    expect(script).toBe('<script src="/static/app.js" defer>')
}

describe('consent pages', () => {
  it('start page: permissions, cloud chooser when several clouds, the start button, all escaped', () => {
    const page = renderStartPage({
      app,
      clouds: ['global', 'usgov'],
      adminRoleIds: [GLOBAL_ADMIN, PRIVILEGED_ROLE_ADMIN],
      flowMinutes: 10,
    })
    expectNoActiveContent(page)
    expect(page).toContain('Mail &lt;script&gt;alert(1)&lt;/script&gt;')
    expect(page).toContain('<form method="post" action="/ms-graph-mail/start">')
    expect(page).toContain('<select name="cloud" id="cloud">')
    expect(page).toContain('<option value="usgov">US Government GCC High</option>')
    expect(page).toContain('<button type="submit">Start Authorization Process</button>')
    expect(page).toContain('Global Administrator or Privileged Role Administrator')
    expect(page).toContain('within 10 minutes')
  })

  it('start page with one cloud: a hidden field instead of a chooser', () => {
    const page = renderStartPage({ app, clouds: ['global'], adminRoleIds: [GLOBAL_ADMIN], flowMinutes: 10 })
    expect(page).not.toContain('<select')
    expect(page).toContain('<input type="hidden" name="cloud" value="global">')
  })

  it('app list links every app', () => {
    const page = renderAppListPage([app, { ...app, slug: 'other', consent: 'delegated' }])
    expect(page).toContain('href="/ms-graph-mail"')
    expect(page).toContain('href="/other"')
    expect(page).toContain('User consent')
    expectNoActiveContent(page)
  })

  it('result page: the three values in data-field elements with copy buttons, escaped', () => {
    const page = renderResultPage(result)
    expectNoActiveContent(page)
    expect(page).toContain(
      '<code data-field="id">reg-1@https://consent.example.com/obtain-token</code><button type="button" class="secondary" data-copy="id">Copy</button>',
    )
    expect(page).toContain(`<code data-field="token">${result.token}</code>`)
    expect(page).toContain('<code data-field="key">ab+/cd==</code>')
    expect(page).toContain('data-copy="key"')
    expect(page).toContain('&quot;&gt;&lt;img src=x onerror=alert(1)&gt;')
    expect(page).toContain('shown only once')
  })

  it('a renewed registration says its ID and Key are unchanged', () => {
    expect(renderResultPage({ ...result, reused: true })).toContain('existing ID and Key')
    expect(renderResultPage(result)).not.toContain('existing ID and Key')
  })

  it('the already-shown page shows no values', () => {
    const page = renderResultGonePage()
    expect(page).toContain('These values were already shown')
    expect(page).not.toContain('data-field')
  })

  it('every failure has its own title, an escaped provider message and a link back to the app', () => {
    const titles = new Set<string>()
    for (const reason of CONSENT_FAILURE_REASONS) {
      const page = renderFailurePage({
        failure: {
          reason,
          status: statusOf(reason),
          app,
          purpose: 'consent',
          providerMessage: `AADSTS65004: ${XSS}`,
        },
        adminRoleIds: [GLOBAL_ADMIN],
        requestId: 'req-1',
      })
      expectNoActiveContent(page)
      const title = /<h1>([^<]*)<\/h1>/.exec(page)?.[1]
      expect(title, reason).toBeTruthy()
      titles.add(title!)
      expect(page).toContain('AADSTS65004: &lt;script&gt;alert(1)&lt;/script&gt;')
      expect(page).toContain('<a class="button" href="/ms-graph-mail">Try again</a>')
      expect(page).toContain('Nothing was created.')
      expect(page).toContain(`<code>${reason}</code>`)
    }
    expect(titles.size).toBe(CONSENT_FAILURE_REASONS.length)
  })

  it('a failed sign-in to /{app}/manage links back to the manage page and says nothing changed', () => {
    const page = renderFailurePage({
      failure: { reason: 'not_admin', status: statusOf('not_admin'), app, purpose: 'manage' },
      adminRoleIds: [GLOBAL_ADMIN],
      requestId: 'r',
    })
    expect(page).toContain('<a class="button" href="/ms-graph-mail/manage">Try again</a>')
    expect(page).toContain('nothing was changed')
    expect(page).not.toContain('Nothing was created.')
  })

  it('a failure without a known app links to the app list', () => {
    const page = renderFailurePage({
      failure: { reason: 'session_missing', status: 400, app: undefined, purpose: 'consent' },
      adminRoleIds: [],
      requestId: 'r',
    })
    expect(page).toContain('<a class="button" href="/">Start again</a>')
    expect(page).not.toContain('Microsoft said')
  })
})
