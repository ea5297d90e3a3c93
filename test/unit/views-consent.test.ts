import { describe, expect, it } from 'vitest'
import type { AppConfig } from '../../src/config.js'
import { CONSENT_FAILURE_REASONS, statusOf } from '../../src/errors.js'
import type { ConsentResult } from '../../src/services/consent-flow.js'
import { renderAppListPage } from '../../src/views/app-list.js'
import { renderFailurePage, renderStartPage } from '../../src/views/consent-pages.js'
import { renderResultGonePage, renderResultPage } from '../../src/views/consent-result-pages.js'

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
  clouds: {
    global: {
      clientId: 'c',
      credentials: [{ kind: 'secret', name: 'secret:S', secret: 's', expiresAt: undefined }],
    },
    usgov: {
      clientId: 'c2',
      credentials: [{ kind: 'secret', name: 'secret:S', secret: 's2', expiresAt: undefined }],
    },
  },
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
      csrf: 'c'.repeat(43),
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
    const page = renderStartPage({
      app,
      clouds: ['global'],
      adminRoleIds: [GLOBAL_ADMIN],
      flowMinutes: 10,
      csrf: 'c'.repeat(43),
    })
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

  it('result page of an Azure app: its subscriptions, the "no role yet" steps, or why none could be listed', () => {
    const azure: ConsentResult = {
      ...result,
      kind: 'admin',
      clientId: '0b1e6a52-7c3d-4f8e-9a10-000000000011',
    }
    const listed = renderResultPage({
      ...azure,
      subscriptions: {
        kind: 'listed',
        more: true,
        subscriptions: [
          {
            subscriptionId: '5b1f7c2e-3a4d-4e6f-8a9b-0c1d2e3f4a01',
            displayName: `Prod ${XSS}`,
            state: 'Enabled',
            resourceGroups: ['rg-a', `<b>rg</b>`],
            moreResourceGroups: false,
          },
          {
            subscriptionId: '5b1f7c2e-3a4d-4e6f-8a9b-0c1d2e3f4a02',
            displayName: 'Dev',
            state: 'Warned',
            resourceGroups: undefined,
            moreResourceGroups: false,
          },
        ],
      },
    })
    expectNoActiveContent(listed)
    expect(listed).toContain('<code data-subscription-id="5b1f7c2e-3a4d-4e6f-8a9b-0c1d2e3f4a01">')
    expect(listed).toContain('<code>&lt;b&gt;rg&lt;/b&gt;</code>')
    expect(listed).toContain('could not be listed')
    expect(listed).toContain('More subscriptions exist than are listed here.')
    expect(listed).toContain('<code data-field="key">ab+/cd==</code>')

    const none = renderResultPage({
      ...azure,
      subscriptions: { kind: 'listed', more: false, subscriptions: [] },
    })
    expect(none).toContain('<h2>No Azure role yet</h2>')
    expect(none).toContain(
      'az role assignment create --assignee 0b1e6a52-7c3d-4f8e-9a10-000000000011 --role Reader',
    )
    const noneDelegated = renderResultPage({
      ...result,
      subscriptions: { kind: 'listed', more: false, subscriptions: [] },
    })
    expect(noneDelegated).toContain(
      'your account <strong>&quot;&gt;&lt;img src=x onerror=alert(1)&gt;</strong>',
    )
    expect(noneDelegated).not.toContain('az role assignment')

    const failed = renderResultPage({ ...azure, subscriptions: { kind: 'failed', reason: 'timeout' } })
    expect(failed).toContain('did not answer in time')
    expect(failed).toContain('The ID, Token and Key above are valid all the same.')
    expect(failed).toContain('<code data-field="key">ab+/cd==</code>')
    expect(renderResultPage(result)).not.toContain('id="subscriptions"')
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

  it('a renewed registration: ID and Token, never the Key, nothing to paste, how to replace a lost Key', () => {
    // A result stored before renewals dropped their Key still carries one: the page must not show it.
    const renewed = renderResultPage({ ...result, reused: true })
    expectNoActiveContent(renewed)
    expect(renewed).toContain('<h1>Authorization renewed</h1>')
    expect(renewed).toContain(
      '<code data-field="id">reg-1@https://consent.example.com/obtain-token</code><button type="button" class="secondary" data-copy="id">Copy</button>',
    )
    expect(renewed).toContain(`<code data-field="token">${result.token}</code>`)
    expect(renewed).not.toContain(result.key)
    expect(renewed).not.toContain('data-field="key"')
    expect(renewed).not.toContain('data-copy="key"')
    expect(renewed).toContain('keeps working with\nthe ID and Key it already has')
    expect(renewed).toContain('<strong>Nothing needs pasting:</strong>')
    expect(renewed).toContain('<a href="/ms-graph-mail-listener/manage">')
    expect(renewed).toContain('creates a new\nauthorization with a new ID and Key')
    expect(renewed).not.toContain('Copy these three values')
    expect(renewed).not.toContain('Paste the <strong>Key</strong>')

    const created = renderResultPage(result)
    expect(created).toContain('<h1>Authorization complete</h1>')
    expect(created).not.toContain('Authorization renewed')
    expect(created).toContain('<code data-field="key">ab+/cd==</code>')
  })

  it('a Key another consent replaced: no value to paste, no claim that the integration has a Key', () => {
    const withdrawn = renderResultPage({ ...result, reused: true, keyWithdrawn: true })
    expectNoActiveContent(withdrawn)
    expect(withdrawn).toContain('<h1>This Key was replaced</h1>')
    expect(withdrawn).toContain('Use the values the latest page showed')
    expect(withdrawn).not.toContain(result.key)
    expect(withdrawn).not.toContain('data-field="key"')
    expect(withdrawn).not.toContain('Authorization renewed')
    expect(withdrawn).not.toContain('keeps working')
  })

  it('a renewed Azure registration whose subscriptions could not be listed points at the values the integration has', () => {
    const failed = renderResultPage({
      ...result,
      reused: true,
      subscriptions: { kind: 'failed', reason: 'timeout' },
    })
    expect(failed).toContain('The ID, Token and Key the integration has are valid all the same.')
    expect(failed).not.toContain('data-field="key"')
  })

  it('the already-shown page shows no values', () => {
    const page = renderResultGonePage()
    expect(page).toContain('<h1>No values to show</h1>')
    expect(page).not.toContain('data-field')
    // Consenting again gives a user back no Key: theirs is renewed, so it is revoked first.
    expect(page).toContain('an admin consent gives new values')
    expect(page).toContain('keeping its ID and Key without showing the Key again')
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
      expect(page).toContain('Nothing was created')
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

describe('links to /{app}/manage and re-consent wording per consent kind', () => {
  const start = (consent: 'admin' | 'delegated') =>
    renderStartPage({
      app: { ...app, consent },
      clouds: ['global'],
      adminRoleIds: [GLOBAL_ADMIN],
      flowMinutes: 10,
      csrf: 'c'.repeat(43),
    })

  it('the app page links to its manage page and says what consenting again does', () => {
    expect(start('admin')).toContain('<a href="/ms-graph-mail/manage">')
    expect(start('admin')).toContain('Each admin consent gives a new ID and Key')
    expect(start('delegated')).toContain(
      'keeps the ID, Token and Key it got, without showing the Key again; for a new Key, a tenant administrator (or the operator) revokes the authorization first',
    )
    expect(start('delegated')).not.toContain('new ID and Key')
  })

  it('the result page links to the manage page; delegated keeps the Key, admin makes a new one', () => {
    const delegated = renderResultPage(result)
    expect(delegated).toContain('<a href="/ms-graph-mail-listener/manage">')
    expect(delegated).toContain(
      'renews this access and keeps this ID, Token and Key (the Key is not shown again)',
    )
    expect(delegated).not.toContain('To get a new Key')
    const admin = renderResultPage({ ...result, kind: 'admin' })
    expect(admin).toContain('Authorizing again creates another ID and Key for this tenant')
  })
})
