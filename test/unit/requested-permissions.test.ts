// The app page and the own-app page list exactly what the consent requests: for every app of the
// demo apps file and of config/apps.example.json, the permissions the pages list equal the scopes
// of the authorization URLs the consent flow builds (the sign-in request; for admin consent also
// the tenant-wide consent request, whose `.default` stands for the app's application permissions).
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { FastifyBaseLogger } from 'fastify'
import { pino } from 'pino'
import { describe, expect, it } from 'vitest'
import type { CloudName } from '../../src/clouds.js'
import { permissionProblems } from '../../src/config/app-permissions.js'
import { type AppConfig, appClouds, type Config } from '../../src/config.js'
import type {
  AdminConsentRequest,
  IdentityProvider,
  SignInRequest,
  TokenGrant,
  VerifiedIdToken,
} from '../../src/entra/types.js'
import { createMetrics } from '../../src/metrics.js'
import { createConsentFlow } from '../../src/services/consent-flow.js'
import { createMemoryStore } from '../../src/store/memory.js'
import { renderStartPage } from '../../src/views/consent-pages.js'
import { renderOwnAppPage } from '../../src/views/own-app.js'
import { DEMO_APPS_FILE, testConfig } from '../support/config.js'
import { newKeyRing } from '../support/store-contract.js'

const EXAMPLE_APPS_FILE = fileURLToPath(new URL('../../config/apps.example.json', import.meta.url))
const log = pino({ level: 'silent' }) as unknown as FastifyBaseLogger
const ADMIN: VerifiedIdToken = {
  tid: '7c3b1e5a-4d2f-4b8e-9a61-2f0c8d4e6b13',
  oid: '3f6c2a1e-8b4d-4c7a-9e15-0a1b2c3d4e01',
  preferredUsername: 'admin@contoso.example',
  name: 'Admin',
  wids: ['62e90394-69f5-4237-9190-012177145e10'],
}

/** Builds authorization URLs the way the real provider does: the scopes joined in `scope`. */
class UrlBuildingIdp implements IdentityProvider {
  async signInUrl(_app: unknown, request: SignInRequest): Promise<string> {
    const url = new URL('https://login.test/organizations/oauth2/v2.0/authorize')
    url.searchParams.set('scope', request.scopes.join(' '))
    url.searchParams.set('state', request.state)
    return url.href
  }
  async redeemCode() {
    return { idToken: ADMIN, refreshToken: 'rt' }
  }
  async adminConsentUrl(_app: unknown, request: AdminConsentRequest): Promise<string> {
    const url = new URL(`https://login.test/${request.tenantId}/v2.0/adminconsent`)
    url.searchParams.set('scope', request.scope)
    url.searchParams.set('state', request.state)
    return url.href
  }
  async clientCredentials(): Promise<TokenGrant> {
    throw new Error('not used')
  }
  async refresh(): Promise<TokenGrant> {
    throw new Error('not used')
  }
  async startDeviceAuthorization(): Promise<never> {
    throw new Error('not used')
  }
  async pollDeviceAuthorization(): Promise<never> {
    throw new Error('not used')
  }
}

/** The apps of `file` in a config: the demo file as the broker loads it; the example file's apps as written. */
function configWithApps(file: string): Config {
  const config = testConfig({ authorityUrl: 'http://127.0.0.1:9' })
  if (file === DEMO_APPS_FILE) return config
  const raw = JSON.parse(readFileSync(file, 'utf8')) as {
    apps: Array<Omit<AppConfig, 'clouds'> & { clouds: Record<string, { clientId: string }> }>
  }
  const apps = raw.apps.map(
    (app): AppConfig => ({
      ...app,
      integrations: app.integrations ?? [],
      listSubscriptions: app.listSubscriptions === true,
      consentScopes: app.consentScopes ?? [],
      allowedScopes: app.allowedScopes ?? [],
      allowedResources: app.allowedResources ?? [],
      clouds: Object.fromEntries(
        Object.entries(app.clouds).map(([cloud, r]) => [cloud, { clientId: r.clientId, credentials: [] }]),
      ) as AppConfig['clouds'],
    }),
  )
  return { ...config, apps }
}

/** `Name (Type)` of each scope of the URLs, a `.default` expanded to the app's application permissions. */
function requestedByUrls(app: AppConfig, urls: readonly string[]): string[] {
  const out: string[] = []
  for (const url of urls) {
    for (const scope of (new URL(url).searchParams.get('scope') ?? '').split(' ')) {
      const name = scope.slice(scope.lastIndexOf('/') + 1)
      if (name === '.default')
        out.push(
          ...app.permissions.filter((p) => p.type === 'Application').map((p) => `${p.name} (Application)`),
        )
      else out.push(`${name} (Delegated)`)
    }
  }
  return out
}

/** `Name (Type)` of each row of the page's permissions table. */
function listedOnPage(page: string): string[] {
  const table = /<table class="permissions">([\s\S]*?)<\/table>/.exec(page)?.[1] ?? ''
  return [...table.matchAll(/<tr><td><code>([^<]+)<\/code><\/td><td>(Application|Delegated) /g)].map(
    (m) => `${m[1]} (${m[2]})`,
  )
}

async function authorizationUrls(config: Config, app: AppConfig, cloud: CloudName): Promise<string[]> {
  const store = createMemoryStore({ keyRing: newKeyRing() })
  const flow = createConsentFlow({
    config,
    store,
    idp: new UrlBuildingIdp(),
    metrics: createMetrics(),
    clock: Date.now,
  })
  try {
    const started = await flow.start(app.slug, cloud, log)
    if (started.kind !== 'redirect') throw new Error(`${app.slug}: the flow did not start`)
    const urls = [started.location]
    if (app.consent === 'admin') {
      const state = new URL(started.location).searchParams.get('state') ?? ''
      const signedIn = await flow.callback(started.flowHandle, { state, code: 'code' }, log)
      if (signedIn.kind !== 'redirect') throw new Error(`${app.slug}: no admin-consent redirect`)
      urls.push(signedIn.location)
    }
    return urls
  } finally {
    await store.close()
  }
}

describe.each([
  ['the demo apps file', DEMO_APPS_FILE],
  ['config/apps.example.json', EXAMPLE_APPS_FILE],
])('pages list exactly the requested permissions: %s', (_name, file) => {
  const config = configWithApps(file)

  it.each(config.apps.map((app) => [app.slug, app] as const))('%s', async (_slug, app) => {
    expect(permissionProblems(app)).toEqual([])
    for (const cloud of appClouds(app)) {
      const requested = requestedByUrls(app, await authorizationUrls(config, app, cloud))
      expect(requested.length).toBeGreaterThan(0)
      const options = { app, clouds: appClouds(app), csrf: 'c' }
      const start = renderStartPage({ ...options, adminRoleIds: config.adminRoleIds, flowMinutes: 10 })
      const ownApp = renderOwnAppPage({ ...options, redirectUri: `${config.publicUrl}/callback` })
      expect(listedOnPage(start), `${app.slug} in ${cloud}: app page`).toEqual(requested)
      expect(listedOnPage(ownApp), `${app.slug} in ${cloud}: own-app page`).toEqual(requested)
    }
  })
})

describe('the sign-in scopes and Log Analytics', () => {
  it('requests and lists offline_access for delegated apps, Data.Read for Log Analytics, User.Read where requested', async () => {
    const config = configWithApps(EXAMPLE_APPS_FILE)
    const logAnalytics = config.apps.find((a) => a.slug === 'ms-azure-log-analytics')!
    const [url] = await authorizationUrls(config, logAnalytics, 'global')
    const scopes = new URL(url!).searchParams.get('scope')!.split(' ')
    expect(scopes).toEqual([
      'openid',
      'profile',
      'offline_access',
      'https://management.azure.com/user_impersonation',
      'https://api.loganalytics.io/Data.Read',
    ])
    const page = renderStartPage({
      app: logAnalytics,
      clouds: ['global'],
      adminRoleIds: [],
      flowMinutes: 10,
      csrf: 'c',
    })
    expect(listedOnPage(page)).toContain('Data.Read (Delegated)')
    const management = config.apps.find((a) => a.slug === 'ms-management-api')!
    const [managementUrl] = await authorizationUrls(config, management, 'global')
    expect(new URL(managementUrl!).searchParams.get('scope')).toContain(
      'https://graph.microsoft.com/User.Read',
    )
  })

  it('refuses an apps file whose permissions differ from what the consent requests', () => {
    const problems = permissionProblems({
      consent: 'delegated',
      permissions: [
        { name: 'Mail.Read', type: 'Delegated', description: '' },
        { name: 'User.Read', type: 'Delegated', description: '' },
        { name: 'Mail.Send', type: 'Application', description: '' },
      ],
      consentScopes: ['{graph}/Mail.Read', '{graph}/Calendars.Read'],
    })
    expect(problems).toEqual([
      'permission User.Read is listed but not in consentScopes (never requested)',
      'permission Mail.Send is Application, but the consent is delegated',
      'consentScopes requests Calendars.Read, which permissions does not list',
    ])
    expect(
      permissionProblems({
        consent: 'admin',
        permissions: [{ name: 'User.Read', type: 'Delegated', description: '' }],
      }),
    ).toEqual(['permission User.Read is Delegated, but the consent is admin'])
  })
})
