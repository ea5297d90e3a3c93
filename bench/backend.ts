// What every obtain-token benchmark stands on: a redis-server of its own (no persistence), the Entra
// ID emulator with Contoso's admin consent to Graph Mail, the broker environment pointing at both
// (rate limits lifted: one client sends all the load), an admin-consent registration to ask tokens
// for, and request bodies with fresh encrypted_tokens (each is accepted once).
import { randomBytes } from 'node:crypto'
import { startEmulator } from '../emulator/server.js'
import { type Env, loadConfig } from '../src/config.js'
import { createAdminRegistration, integrationId } from '../src/services/registrations.js'
import { createRedisStore } from '../src/store/redis.js'
import { createRedisConnection } from '../src/store/redis-connection.js'
import { DEMO_APPS_FILE, DEMO_CLIENT_SECRET_ENV } from '../test/support/config.js'
import { startRedisServer } from '../test/support/redis-server.js'
import { encryptContent } from '../test/support/xsoar-client.js'

/** The tenant every benchmark consents for, and the hosted Graph Mail app's client id. */
export const CONTOSO = '7c3b1e5a-4d2f-4b8e-9a61-2f0c8d4e6b13'
export const MAIL_CLIENT_ID = '0b1e6a52-7c3d-4f8e-9a10-000000000001'

/** The headers of every benchmark's obtain-token request: JSON, and the integration's name and version. */
export const TOKEN_REQUEST_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-type': 'application/json',
  'x-content-name': 'bench',
  'x-content-version': '1.0.0',
})

/** A running backend: stop it with `close` (redis-server and emulator). */
export interface BenchBackend {
  redisUrl: string
  emulatorUrl: string
  /** The broker environment, with a key prefix of this run's own. */
  env: Env
  close(): Promise<void>
}

/** Starts redis-server and the emulator, and consents Contoso to Graph Mail at the emulator. */
export async function startBackend(): Promise<BenchBackend> {
  const redis = await startRedisServer({ appendOnly: false })
  const emulator = await startEmulator({ port: 0 })
  const close = async () => {
    await emulator.close()
    await redis.destroy()
  }
  try {
    const consented = await fetch(`${emulator.url}/_emulator/tenants/${CONTOSO}/admin-consent`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ clientId: MAIL_CLIENT_ID }),
    })
    if (!consented.ok) throw new Error(`emulator refused the admin consent: ${consented.status}`)
    const env: Env = {
      PUBLIC_URL: 'http://127.0.0.1:3000',
      MASTER_KEYS: `k1:${randomBytes(32).toString('base64')}`,
      COOKIE_SECRET: randomBytes(32).toString('hex'),
      APPS_FILE: DEMO_APPS_FILE,
      AUTHORITY_URL_GLOBAL: emulator.url,
      AUTHORITY_URL_USGOV: emulator.url,
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: `bench:${randomBytes(4).toString('hex')}:`,
      RATE_LIMIT_PER_REGISTRATION: '1000000',
      RATE_LIMIT_PER_IP: '1000000',
      ...DEMO_CLIENT_SECRET_ENV,
    }
    return { redisUrl: redis.url, emulatorUrl: emulator.url, env, close }
  } catch (error) {
    await close()
    throw error
  }
}

/** Contoso's Graph Mail registration, written through the store: the values an integration holds. */
export interface BenchRegistration {
  /** The integration's ID (`<registration id>@<public URL>`), as the XSOAR client sends it. */
  integrationId: string
  /** The bare registration id (`registration_id` without the host part). */
  registrationId: string
  /** The Key (standard base64). */
  key: string
}

/** Creates Contoso's admin-consent registration of ms-graph-mail under `env`'s key prefix. */
export async function contosoRegistration(env: Env): Promise<BenchRegistration> {
  const config = loadConfig(env)
  const store = createRedisStore({
    redis: createRedisConnection({ url: env.REDIS_URL! }),
    keyRing: config.keyRing,
    keyPrefix: env.REDIS_KEY_PREFIX ?? '',
  })
  try {
    const { registration, key } = await createAdminRegistration(store, {
      app: 'ms-graph-mail',
      cloud: 'global',
      tenantId: CONTOSO,
      now: new Date().toISOString(),
    })
    const id = integrationId(registration.id, config.publicUrl)
    return { integrationId: id, registrationId: id.split('@')[0]!, key }
  } finally {
    await store.close()
  }
}

/** `count` obtain-token bodies for the registration, each with a fresh encrypted_token of now. */
export function encryptedBodies(registration: BenchRegistration, count: number): string[] {
  const now = Math.floor(Date.now() / 1000)
  return Array.from({ length: count }, () =>
    JSON.stringify({
      app_name: 'ms-graph-mail',
      registration_id: registration.registrationId,
      encrypted_token: encryptContent(CONTOSO, registration.key, now),
      scope: null,
      resource: '',
    }),
  )
}
