// The home page groups the apps by their `group` and filters them server-side by the words of `q`.
import { describe, expect, it } from 'vitest'
import type { AppConfig } from '../../src/config.js'
import { appMatches, groupApps, OTHER_GROUP, renderAppListPage } from '../../src/views/app-list.js'

function app(
  slug: string,
  displayName: string,
  group: string | undefined,
  integrations: string[],
): AppConfig {
  return {
    slug,
    displayName,
    description: `${displayName} description`,
    integrations,
    group,
    listSubscriptions: false,
    consent: 'admin',
    permissions: [],
    defaultScope: '{graph}/.default',
    consentScopes: [],
    allowedScopes: [],
    allowedResources: [],
    clouds: {
      global: {
        clientId: 'c',
        credentials: [{ kind: 'secret', name: 'secret:S', secret: 's', expiresAt: undefined }],
      },
    },
  }
}

const APPS = [
  app('ms-graph-mail', 'O365 Outlook Mail (Using Graph API)', 'Mail and calendar', [
    'O365 Outlook Mail (Using Graph API)',
  ]),
  app('ms-defender-atp', 'Microsoft Defender for Endpoint', 'Endpoint and security', [
    'Microsoft Defender for Endpoint',
    'Windows Defender ATP',
  ]),
  app('ms-graph-calendar', 'O365 Outlook Calendar', 'Mail and calendar', ['O365 Outlook Calendar']),
  app('custom', 'Custom thing', undefined, []),
]

describe('home page groups and search', () => {
  it('groups apps in the order each group first appears; apps without a group go last-seen under Other', () => {
    const groups = groupApps(APPS)
    expect(groups.map((g) => [g.name, g.apps.map((a) => a.slug)])).toEqual([
      ['Mail and calendar', ['ms-graph-mail', 'ms-graph-calendar']],
      ['Endpoint and security', ['ms-defender-atp']],
      [OTHER_GROUP, ['custom']],
    ])
  })

  it('matches every word of the query against names, app_name, group and integration names', () => {
    const defender = APPS[1]!
    expect(appMatches(defender, 'windows ATP')).toBe(true)
    expect(appMatches(defender, '  DEFENDER   endpoint ')).toBe(true)
    expect(appMatches(defender, 'ms-defender-atp')).toBe(true)
    expect(appMatches(defender, 'security')).toBe(true)
    expect(appMatches(defender, 'defender mail')).toBe(false)
    expect(appMatches(defender, '')).toBe(true)
    expect(groupApps(APPS, 'outlook').flatMap((g) => g.apps.map((a) => a.slug))).toEqual([
      'ms-graph-mail',
      'ms-graph-calendar',
    ])
  })

  it('renders a GET search form, the groups with their integrations, and only the matches when searching', () => {
    const all = renderAppListPage(APPS)
    expect(all).toContain('<form method="get" action="/" class="search" role="search">')
    expect(all).toContain('<h2>Mail and calendar</h2>')
    expect(all).toContain('<h2>Endpoint and security</h2>')
    expect(all).toContain('<strong>Windows Defender ATP</strong>')
    expect(all).toContain('href="/custom"')

    const found = renderAppListPage(APPS, 'windows defender')
    expect(found).toContain('href="/ms-defender-atp"')
    expect(found).not.toContain('href="/ms-graph-mail"')
    expect(found).toContain('value="windows defender"')
    expect(found).toContain('Integrations matching <strong>windows defender</strong>')

    const none = renderAppListPage(APPS, '<b>nothing</b>')
    expect(none).toContain('No integration matches <strong>&lt;b&gt;nothing&lt;/b&gt;</strong>')
    expect(none).not.toContain('<b>nothing')
    expect(none).not.toContain('<section class="group"')
  })
})
