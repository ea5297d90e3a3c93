// `cp .env.example .env && docker compose up -d broker` with the production apps file: compose must
// mount config/apps.example.json by default and pass every client secret it names by clientSecretEnv
// from .env into the broker (and into the deploy profile's brokers); secrets it names by
// clientSecretFile must lie in the read-only /run/secrets mount. The compose plugin is not installed
// everywhere tests run, so docker-compose.yml is read as compose reads it: YAML with merge keys.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'

const root = (path: string) => fileURLToPath(new URL(`../../${path}`, import.meta.url))

interface Service {
  environment?: Record<string, string>
  volumes?: string[]
}
const compose = parse(readFileSync(root('docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, Service>
}
const apps = readFileSync(root('config/apps.example.json'), 'utf8')
const secretEnvs = [...new Set([...apps.matchAll(/"clientSecretEnv":\s*"(\w+)"/g)].map((m) => m[1]!))]
const secretFiles = [...new Set([...apps.matchAll(/"clientSecretFile":\s*"([^"]+)"/g)].map((m) => m[1]!))]
const envExample = readFileSync(root('.env.example'), 'utf8')

describe('docker-compose.yml with config/apps.example.json', () => {
  it('reads the apps file and secrets to check', () => {
    expect(secretEnvs.length).toBeGreaterThan(10)
    expect(secretFiles.length).toBeGreaterThan(0)
  })

  for (const service of ['broker', 'broker-1', 'broker-2', 'broker-3']) {
    it(`${service}: every clientSecretEnv comes from .env, the apps file and /run/secrets are mounted`, () => {
      const spec = compose.services[service]!
      for (const name of secretEnvs) expect(spec.environment?.[name], name).toBe(`\${${name}:-}`)
      expect(spec.environment?.APPS_FILE ?? '/app/config/apps.json').toBe('/app/config/apps.json')
      // biome-ignore lint/suspicious/noTemplateCurlyInString: compose's own interpolation, literally
      expect(spec.volumes).toContain('${APPS_FILE:-./config/apps.example.json}:/app/config/apps.json:ro')
      expect(spec.volumes).toContain('./secrets:/run/secrets:ro')
      for (const file of secretFiles) expect(file.startsWith('/run/secrets/'), file).toBe(true)
    })
  }

  it('.env.example points APPS_FILE at the example and lists each of its secrets', () => {
    expect(envExample).toMatch(/^APPS_FILE=\.\/config\/apps\.example\.json$/m)
    for (const name of secretEnvs) expect(envExample, name).toMatch(new RegExp(`^${name}=$`, 'm'))
  })
})
