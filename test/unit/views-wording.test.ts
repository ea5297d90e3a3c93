// Wording of the consent pages that a usability audit found misleading or awkward: each test names
// the sentence a visitor reads, for every case it must stay true in.
import { describe, expect, it } from 'vitest'
import { CLOUD_NAMES, CLOUDS } from '../../src/clouds.js'
import type { AppConfig } from '../../src/config.js'
import type { ConsentResult } from '../../src/services/consent-flow.js'
import { renderFailurePage, renderStartPage } from '../../src/views/consent-pages.js'
import { renderResultGonePage, renderResultPage } from '../../src/views/consent-result-pages.js'
import { renderDeviceCodePage } from '../../src/views/own-app-device.js'

const TENANT = '7c3b1e5a-4d2f-4b8e-9a61-2f0c8d4e6b13'

const app: AppConfig = {
  slug: 'ms-graph-mail',
  displayName: 'Mail',
  description: 'Reads mail',
  integrations: ['Outlook'],
  group: 'Mail',
  listSubscriptions: false,
  consent: 'admin',
  permissions: [{ name: 'Mail.Read', type: 'Application', description: 'read mail' }],
  defaultScope: '{graph}/.default',
  consentScopes: [],
  allowedScopes: [],
  allowedResources: [],
  clouds: {},
}

const result: ConsentResult = {
  app: 'ms-graph-mail',
  appName: 'Mail',
  kind: 'admin',
  cloud: 'global',
  registrationId: 'reg-1',
  id: 'reg-1@https://consent.example.com/obtain-token',
  token: TENANT,
  key: 'ab+/cd==',
  reused: false,
  userName: 'Alice',
}

/** The page's text with tags dropped and whitespace folded, as a visitor reads it. */
function text(page: string): string {
  return page
    .replace(/<[^>]+>/g, '')
    .replace(/\s+/g, ' ')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&')
}

describe('cloud labels in a sentence', () => {
  it('the result page names the cloud without nesting its label in parentheses, for every cloud', () => {
    for (const cloud of CLOUD_NAMES) {
      const label = CLOUDS[cloud].label
      const admin = text(renderResultPage({ ...result, cloud }))
      expect(admin).toContain(`tokens for tenant ${TENANT} in the ${label} cloud without a signed-in user`)
      const delegated = text(renderResultPage({ ...result, kind: 'delegated', cloud }))
      expect(delegated).toContain(`act as Alice in tenant ${TENANT}, in the ${label} cloud.`)
      for (const page of [admin, delegated]) expect(page, cloud).not.toContain(`(${label})`)
    }
  })

  it('the device code page says which cloud its link signs in to, without parentheses around the label', () => {
    for (const cloud of CLOUD_NAMES) {
      const label = CLOUDS[cloud].label
      const page = text(
        renderDeviceCodePage({
          app: { ...app, consent: 'delegated' },
          cloud,
          userCode: 'ABCD-EFGH',
          verificationUri: 'https://microsoft.com/devicelogin',
          minutesLeft: 10,
          refreshSeconds: 5,
        }),
      )
      expect(page).toContain(
        `https://microsoft.com/devicelogin, Microsoft's code page in the ${label} cloud.`,
      )
      expect(page, cloud).not.toContain(`(${label})`)
    }
  })
})

describe('pages a used link lands on', () => {
  it('"no authorization in progress" also explains a used link, and says when to start again', () => {
    const page = text(
      renderFailurePage({
        failure: { reason: 'session_missing', status: 400, app: undefined, purpose: 'consent' },
        adminRoleIds: [],
        requestId: 'r',
      }),
    )
    expect(page).toContain('No authorization in progress')
    expect(page).toContain(
      'A link already used lands here too, such as the last step of an authorization reloaded after it completed: that authorization stands, and its values were shown once, on the page that followed. If you did not copy them, start again from the integration page.',
    )
    // Not "Nothing was created": the authorization the link finished earlier was.
    expect(page).toContain('Nothing was created by this page.')
  })

  it('/result without a result claims neither that it was shown nor that it never existed', () => {
    const page = text(renderResultGonePage())
    expect(page).not.toContain('These values were already shown')
    expect(page).toContain('No values to show')
    expect(page).toContain(
      'This page has none to show: they were already shown, or no authorization just completed in this browser.',
    )
    // The one-time rule stays stated.
    expect(page).toContain('shown only once, right after it completes')
  })
})

describe('the start page on what Microsoft asks', () => {
  const start = (consent: AppConfig['consent']) =>
    text(
      renderStartPage({
        app: { ...app, consent },
        clouds: ['global'],
        adminRoleIds: [],
        flowMinutes: 10,
        csrf: 'c'.repeat(43),
      }),
    )

  it('admin consent: the list is what the integration needs; Microsoft lists the whole app registration', () => {
    const page = start('admin')
    expect(page).not.toContain('Exactly what Microsoft will ask')
    expect(page).toContain(
      "What the integration needs. Microsoft's consent page lists every permission the app registration has, which can be a few more (often User.Read).",
    )
  })

  it('user consent: Microsoft asks for exactly the scopes requested', () => {
    expect(start('delegated')).toContain('Exactly what Microsoft will ask you to consent to.')
  })
})
