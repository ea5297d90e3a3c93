// Both apps files serve every app_name of the XSOAR catalogue (test/fixtures/xsoar-catalogue.ts),
// with the consent kind the integration expects and tokens for the API it calls, in every cloud the
// file offers. An app_name without a family fails here.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { demoClientSecretEnv } from '../../emulator/demo-secrets.js'
import { appClouds, type Config, loadConfig, resolveApp } from '../../src/config.js'
import {
  CATALOGUE_AUDIENCES,
  type CatalogueCloud,
  indicatorScope,
  LOG_ANALYTICS_RESOURCES,
  XSOAR_CATALOGUE,
} from '../fixtures/xsoar-catalogue.js'
import { DEMO_APPS_FILE, randomMasterKeys } from '../support/config.js'

const EXAMPLE_APPS_FILE = fileURLToPath(new URL('../../config/apps.example.json', import.meta.url))

interface RawCloud {
  clientId: string
  clientSecretEnv?: string
  clientSecretFile?: string
}
interface RawApp {
  slug: string
  consent: string
  integrations?: string[]
  clouds: Record<string, RawCloud>
}

function rawApps(path: string): RawApp[] {
  return (JSON.parse(readFileSync(path, 'utf8')) as { apps: RawApp[] }).apps
}

/** Loads an apps file with a made-up secret for every env reference and secret file it names. */
function load(path: string): Config {
  const env: Record<string, string> = {}
  const files = new Map<string, string>()
  for (const app of rawApps(path)) {
    for (const cloud of Object.values(app.clouds)) {
      if (cloud.clientSecretEnv !== undefined) env[cloud.clientSecretEnv] = `secret-of-${cloud.clientId}`
      if (cloud.clientSecretFile !== undefined)
        files.set(cloud.clientSecretFile, `file-secret-${cloud.clientId}`)
    }
  }
  return loadConfig(
    {
      PUBLIC_URL: 'https://consent.example.com',
      REDIS_URL: 'redis://redis.internal:6379',
      MASTER_KEYS: randomMasterKeys(),
      COOKIE_SECRET: 'x'.repeat(40),
      APPS_FILE: path,
      ...env,
    },
    { readFile: (file) => files.get(file) ?? readFileSync(file, 'utf8') },
  )
}

const noSlash = (value: string) => value.replace(/\/+$/, '').toLowerCase()

describe.each([
  ['config/apps.demo.json', DEMO_APPS_FILE],
  ['config/apps.example.json', EXAMPLE_APPS_FILE],
])('%s against the XSOAR catalogue', (_name, path) => {
  const config = load(path)

  it('has one family per catalogue app_name, and none the catalogue lacks', () => {
    const slugs = config.apps.map((app) => app.slug)
    const missing = XSOAR_CATALOGUE.map((row) => row.appName).filter((name) => !slugs.includes(name))
    expect(missing, `app_names without a family: ${missing.join(', ')}`).toEqual([])
    expect([...slugs].sort()).toEqual(XSOAR_CATALOGUE.map((row) => row.appName).sort())
  })

  it.each(XSOAR_CATALOGUE.map((row) => [row.appName, row] as const))(
    '%s: consent kind, integration named, token API in every offered cloud',
    (_appName, row) => {
      const app = config.apps.find((a) => a.slug === row.appName)!
      expect(app.consent).toBe(row.consent)
      expect(app.integrations.some((name) => name.includes(row.integration))).toBe(true)
      expect(app.group).toBeTypeOf('string')
      expect(app.listSubscriptions).toBe(row.api === 'arm')
      const clouds = appClouds(app)
      expect(clouds).toContain('global')
      for (const cloud of clouds as CatalogueCloud[]) {
        const resolved = resolveApp(config, app, cloud)!
        expect(resolved.defaultScope).toBe(`${CATALOGUE_AUDIENCES[cloud][row.api]}/.default`)
        for (const { scope } of row.scopes) {
          if (scope === 'graph') expect(resolved.allowedScopes).toContain('graph')
          else expect(resolved.allowedScopes).toContain(indicatorScope(cloud))
        }
        if (row.multiResource) {
          const allowed = resolved.allowedResources.map(noSlash)
          for (const resource of LOG_ANALYTICS_RESOURCES[cloud]) expect(allowed).toContain(noSlash(resource))
        }
        if (row.consent === 'delegated') expect(resolved.consentScopes.length).toBeGreaterThan(0)
      }
    },
  )
})

describe('config/apps.example.json (Microsoft clouds)', () => {
  const text = readFileSync(EXAMPLE_APPS_FILE, 'utf8')

  it('names no emulator or loopback URL and holds no secret, only references to one', () => {
    expect(text).not.toMatch(/127\.0\.0\.1|localhost|\[::1\]|emulator|demo-secret/i)
    for (const app of rawApps(EXAMPLE_APPS_FILE)) {
      for (const [cloud, registration] of Object.entries(app.clouds)) {
        expect(Object.keys(registration).sort(), `${app.slug} ${cloud}`).toEqual(
          registration.clientSecretEnv === undefined
            ? ['clientId', 'clientSecretFile']
            : ['clientId', 'clientSecretEnv'],
        )
      }
    }
  })

  it("offers Defender's .onmicrosoft.us indicator scope in GCC High and DoD, and Log Analytics in all four clouds", () => {
    const config = load(EXAMPLE_APPS_FILE)
    const defender = config.apps.find((a) => a.slug === 'ms-defender-atp')!
    for (const cloud of ['usgov', 'dod'] as const) {
      expect(resolveApp(config, defender, cloud)?.allowedScopes).toContain(
        'https://securitycenter.onmicrosoft.us/windowsatpservice/.default',
      )
    }
    const logAnalytics = config.apps.find((a) => a.slug === 'ms-azure-log-analytics')!
    expect(appClouds(logAnalytics)).toEqual(['global', 'usgov', 'dod', 'china'])
  })
})

describe('config/apps.demo.json (emulator)', () => {
  it('uses only the emulator demo clients, so every family can consent in the demo', () => {
    // Throws when a client id of the demo file is no demo client of the emulator.
    const env = demoClientSecretEnv(DEMO_APPS_FILE)
    for (const app of rawApps(DEMO_APPS_FILE)) {
      for (const registration of Object.values(app.clouds)) {
        expect(env[registration.clientSecretEnv!]).toMatch(/^demo-secret-/)
      }
    }
  })
})
