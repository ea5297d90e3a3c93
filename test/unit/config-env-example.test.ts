// `.env.example` is the operator's reference: it must list exactly the variables the broker reads,
// with the defaults the broker really applies, and docker-compose.yml must pass each of them on.
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { type Config, type Env, loadConfig } from '../../src/config.js'
import { DEMO_APPS_FILE, DEMO_CLIENT_SECRET_ENV, randomMasterKeys } from '../support/config.js'

const root = (path: string) => fileURLToPath(new URL(`../../${path}`, import.meta.url))
const ENV_EXAMPLE = readFileSync(root('.env.example'), 'utf8')
const COMPOSE = readFileSync(root('docker-compose.yml'), 'utf8')

/** `NAME=value` lines (comments and blanks skipped), in file order. */
function parseEnvFile(text: string): Array<[string, string]> {
  const out: Array<[string, string]> = []
  for (const line of text.split('\n')) {
    const match = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line)
    if (match) out.push([match[1]!, match[2]!])
  }
  return out
}

/** Records every variable name loadConfig looks up in `env`. */
function namesRead(env: Env): Set<string> {
  const seen = new Set<string>()
  const proxy = new Proxy(env as Record<string, string | undefined>, {
    get(target, property, receiver) {
      if (typeof property === 'string') seen.add(property)
      return Reflect.get(target, property, receiver)
    },
  })
  try {
    loadConfig(proxy)
  } catch {
    // only the names matter here
  }
  return seen
}

const required = (): Env => ({
  PUBLIC_URL: 'https://consent.example.com',
  MASTER_KEYS: randomMasterKeys(),
  COOKIE_SECRET: randomBytes(32).toString('hex'),
  APPS_FILE: DEMO_APPS_FILE,
  ...DEMO_CLIENT_SECRET_ENV,
})

describe('.env.example', () => {
  const documented = parseEnvFile(ENV_EXAMPLE)
  const documentedNames = documented.map(([name]) => name)

  it('lists each variable once', () => {
    expect(new Set(documentedNames).size).toBe(documentedNames.length)
  })

  it('lists exactly the variables config.ts reads (client secrets are named by the apps file)', () => {
    const read = new Set<string>()
    // Some names are read only on some branches: single server, Sentinel, Cluster, memory, metrics.
    for (const extra of [
      { REDIS_URL: 'redis://r:6379', METRICS_PORT: '9464' },
      { REDIS_SENTINELS: 's:26379', REDIS_SENTINEL_NAME: 'm' },
      { REDIS_CLUSTER_NODES: 'n:7000' },
      { UNSAFE_MEMORY_STORE: 'true' },
    ]) {
      for (const name of namesRead({ ...required(), ...extra })) read.add(name)
    }
    for (const name of Object.keys(DEMO_CLIENT_SECRET_ENV)) read.delete(name)
    expect(read.size).toBeGreaterThan(20)
    // Besides them, exactly the client secrets config/apps.example.json names (APPS_FILE's default).
    const exampleSecrets = new Set(
      [
        ...readFileSync(root('config/apps.example.json'), 'utf8').matchAll(/"clientSecretEnv":\s*"(\w+)"/g),
      ].map((match) => match[1]!),
    )
    expect(exampleSecrets.size).toBeGreaterThan(10)
    expect(documentedNames.filter((name) => exampleSecrets.has(name)).sort()).toEqual(
      [...exampleSecrets].sort(),
    )
    expect([...read].sort()).toEqual(documentedNames.filter((name) => !exampleSecrets.has(name)).sort())
  })

  it('documents the defaults the broker applies: its values change nothing', () => {
    const values = Object.fromEntries(documented)
    // Filled in by the operator (required) or specific to the compose network.
    const filled: Env = { ...required(), REDIS_URL: 'redis://redis.internal:6379' }
    const fromExample = loadConfig({ ...values, ...filled })
    const fromDefaults = loadConfig(filled)
    const comparable = (config: Config) => ({ ...config, keyRing: undefined, cookieSecret: undefined })
    expect(comparable(fromExample)).toEqual(comparable(fromDefaults))
  })

  it('holds no secret value', () => {
    for (const name of [
      'MASTER_KEYS',
      'COOKIE_SECRET',
      'OPERATOR_TOKENS',
      'OPERATOR_TOKEN_HASHES',
      'REDIS_PASSWORD',
    ]) {
      expect(documented.find(([n]) => n === name)?.[1], name).toBe('')
    }
  })
})

describe('docker-compose.yml', () => {
  it('passes every documented setting to the broker', () => {
    const documentedNames = parseEnvFile(ENV_EXAMPLE).map(([name]) => name)
    // Set by the compose file itself (the container's listener and apps file), or deliberately absent:
    // the production service can't be switched to the memory store.
    const fixed = new Set(['HOST', 'PORT', 'APPS_FILE', 'UNSAFE_MEMORY_STORE'])
    const brokerSection = COMPOSE.slice(COMPOSE.indexOf('\n  broker:'), COMPOSE.indexOf('\n  emulator:'))
    expect(brokerSection.length).toBeGreaterThan(100)
    for (const name of documentedNames) {
      if (fixed.has(name)) continue
      expect(brokerSection, name).toMatch(new RegExp(`\\n {6}${name}: \\$\\{${name}:?-`))
    }
    expect(brokerSection).not.toMatch(/UNSAFE_MEMORY_STORE/)
    expect(brokerSection).toMatch(/\n {6}HOST: 0\.0\.0\.0/)
  })

  it('runs Redis with AOF (everysec) on a named volume, the broker once Redis is healthy', () => {
    expect(COMPOSE).toMatch(/image: redis:7/)
    expect(COMPOSE).toMatch(/- --appendonly\n\s+- "yes"/)
    expect(COMPOSE).toMatch(/- --appendfsync\n\s+- everysec/)
    expect(COMPOSE).toMatch(/- redis-data:\/data/)
    expect(COMPOSE).toMatch(/\nvolumes:\n {2}redis-data:/)
    expect(COMPOSE).toMatch(/depends_on:\n\s+redis:\n\s+condition: service_healthy/)
    expect(COMPOSE).toMatch(/profiles: \[demo\]/)
  })

  it('configures the demo broker validly, pointed at the emulator on loopback (no UNSAFE_ALLOW_HTTP)', () => {
    const section = COMPOSE.slice(COMPOSE.indexOf('\n  demo-broker:'), COMPOSE.indexOf('\nvolumes:'))
    const block = section.slice(section.indexOf('    environment:\n') + '    environment:\n'.length)
    const env: Record<string, string> = {}
    for (const line of block.split('\n')) {
      const match = /^ {6}([A-Z][A-Z0-9_]*): (.*)$/.exec(line)
      if (match) env[match[1]!] = match[2]!.replace(/^"(.*)"$/, '$1')
    }
    expect(env.APPS_FILE).toBe('/app/config/apps.demo.json')
    expect(env.UNSAFE_ALLOW_HTTP).toBeUndefined()
    const config = loadConfig({ ...env, APPS_FILE: DEMO_APPS_FILE })
    expect(config.publicUrl).toBe('http://localhost:8080')
    expect(config.port).toBe(8080)
    expect(config.authorities.global).toBe('http://localhost:3001')
    expect(config.redis?.keyPrefix).toBe('demo:')
    // The emulator publishes the demo broker's port (they share its network namespace).
    const emulator = COMPOSE.slice(COMPOSE.indexOf('\n  emulator:'), COMPOSE.indexOf('\n  demo-broker:'))
    expect(emulator).toContain('"127.0.0.1:8080:8080"')
    expect(emulator).toContain('EMULATOR_BASE_URL: http://localhost:3001')
    expect(section).toContain('network_mode: "service:emulator"')
  })
})
