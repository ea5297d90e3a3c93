// Test configuration: the demo apps file with the emulator's demo secrets, fresh random keys.
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { demoClientSecretEnv } from '../../emulator/demo-secrets.js'
import { type Config, type Env, loadConfig } from '../../src/config.js'

export const DEMO_APPS_FILE = fileURLToPath(new URL('../../config/apps.demo.json', import.meta.url))

/** Client secrets of the emulator's demo clients, as the demo apps file expects them. */
export const DEMO_CLIENT_SECRET_ENV: Env = demoClientSecretEnv(DEMO_APPS_FILE)

export function randomMasterKeys(): string {
  return `k1:${randomBytes(32).toString('base64')}`
}

/** Every cloud's authority and Resource Manager URL pointed at the emulator at `url`. */
export function emulatorCloudEnv(url: string): Env {
  const env: Record<string, string> = {}
  for (const cloud of ['GLOBAL', 'USGOV', 'DOD', 'CHINA']) {
    env[`AUTHORITY_URL_${cloud}`] = url
    env[`RESOURCE_MANAGER_URL_${cloud}`] = url
  }
  return env
}

/**
 * A Config pointing every cloud at `authorityUrl` (the emulator). `redisUrl` undefined = memory store.
 * `env` overrides anything.
 */
export function testConfig(options: TestEnvOptions): Config {
  return loadConfig(testEnv(options))
}

export interface TestEnvOptions {
  authorityUrl: string
  redisUrl?: string
  keyPrefix?: string
  env?: Env
}

/** The environment testConfig loads (a reload of the apps file reads the same one). */
export function testEnv(options: TestEnvOptions): Env {
  return {
    PUBLIC_URL: 'http://127.0.0.1:3000',
    MASTER_KEYS: randomMasterKeys(),
    COOKIE_SECRET: randomBytes(32).toString('hex'),
    APPS_FILE: DEMO_APPS_FILE,
    ...emulatorCloudEnv(options.authorityUrl),
    LOG_LEVEL: 'silent',
    ...(options.redisUrl === undefined ? { UNSAFE_MEMORY_STORE: 'true' } : { REDIS_URL: options.redisUrl }),
    ...(options.keyPrefix === undefined ? {} : { REDIS_KEY_PREFIX: options.keyPrefix }),
    CONSENT_PROOF_BUDGET_MS: '5000',
    ...DEMO_CLIENT_SECRET_ENV,
    ...options.env,
  }
}
