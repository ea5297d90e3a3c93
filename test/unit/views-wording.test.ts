// Wording of the consent pages that a usability audit found misleading or awkward: each test names
// the sentence a visitor reads, for every case it must stay true in.
import { describe, expect, it } from 'vitest'
import { CLOUD_NAMES, CLOUDS } from '../../src/clouds.js'
import type { AppConfig } from '../../src/config.js'
import type { ConsentResult } from '../../src/services/consent-flow.js'
import { renderResultPage } from '../../src/views/consent-result-pages.js'
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
