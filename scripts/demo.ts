// `npm run demo`: the broker on 127.0.0.1:3000 — wired exactly as production (src/broker.ts) — and
// the Entra ID emulator on 127.0.0.1:3001, every cloud pointed at the emulator through its
// authority URL. Demo-only values (a fixed master key,
// the emulator's client secrets) live here, never in src/: production configuration has no defaults
// for them.
//
//   PORT, EMULATOR_PORT   listen ports (default 3000, 3001)
//   REDIS_URL             use Redis instead of the in-memory store
//   EMULATOR_URL          use an emulator that is already running (start none): several brokers
//                         can share one emulator and one Redis
//   any other broker variable (LOG_LEVEL, PUBLIC_URL, METRICS_PORT …) passes through
import { createHash } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { DEMO_USERS } from '../emulator/demo-data.js'
import { demoClientSecretEnv } from '../emulator/demo-secrets.js'
import { startEmulator } from '../emulator/server.js'
import { createBroker } from '../src/broker.js'
import { ConfigError, loadConfig } from '../src/config.js'
import { createLogger } from '../src/logger.js'

// Fixed so that several demo brokers sharing one Redis can read each other's registrations.
// It is public: never use it (or the demo at all) for real tenants.
const demoKey = (label: string) => createHash('sha256').update(`consent-broker demo ${label}`).digest()

async function main(): Promise<void> {
  const env = process.env
  const port = Number(env.PORT ?? 3000)
  const emulatorPort = Number(env.EMULATOR_PORT ?? 3001)
  const host = env.HOST ?? '127.0.0.1'

  let emulatorUrl = env.EMULATOR_URL?.replace(/\/+$/, '')
  let stopEmulator: (() => Promise<void>) | undefined
  if (emulatorUrl === undefined) {
    const emulator = await startEmulator({ host: '127.0.0.1', port: emulatorPort })
    emulatorUrl = emulator.url
    stopEmulator = emulator.close
  }

  const appsFile = fileURLToPath(new URL('../config/apps.demo.json', import.meta.url))
  let config: ReturnType<typeof loadConfig>
  try {
    config = loadConfig({
      PUBLIC_URL: `http://127.0.0.1:${port}`,
      HOST: host,
      PORT: String(port),
      MASTER_KEYS: `demo:${demoKey('master key').toString('base64')}`,
      COOKIE_SECRET: demoKey('cookie secret').toString('hex'),
      APPS_FILE: appsFile,
      AUTHORITY_URL_GLOBAL: emulatorUrl,
      AUTHORITY_URL_USGOV: emulatorUrl,
      AUTHORITY_URL_DOD: emulatorUrl,
      AUTHORITY_URL_CHINA: emulatorUrl,
      // The emulator also answers Resource Manager's subscription listings for its demo tenants.
      RESOURCE_MANAGER_URL_GLOBAL: emulatorUrl,
      RESOURCE_MANAGER_URL_USGOV: emulatorUrl,
      RESOURCE_MANAGER_URL_DOD: emulatorUrl,
      RESOURCE_MANAGER_URL_CHINA: emulatorUrl,
      ...(env.REDIS_URL === undefined ? { UNSAFE_MEMORY_STORE: 'true' } : {}),
      ...demoClientSecretEnv(appsFile),
      ...env,
    })
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message)
      process.exit(1)
    }
    throw error
  }

  // The production wiring (src/broker.ts): Redis errors counted, METRICS_PORT honoured.
  const broker = await createBroker(config, createLogger(config.logLevel))
  await broker.listen()

  const line = '─'.repeat(72)
  console.log(`\n${line}`)
  console.log(' consent-broker demo')
  console.log(line)
  console.log(` Apps page:        ${config.publicUrl}/`)
  console.log(` Entra emulator:   ${emulatorUrl}${stopEmulator ? '' : ' (shared, started elsewhere)'}`)
  if (config.redis === undefined) {
    console.log(' Store:            IN-MEMORY (demo only: registrations vanish when this process stops)')
  } else {
    console.log(` Store:            Redis ${env.REDIS_URL}`)
  }
  if (config.metricsPort !== undefined) {
    console.log(` Metrics:          http://${config.host}:${config.metricsPort}/metrics (no token)`)
  }
  console.log('\n Sign in at the emulator as (no password):')
  for (const user of DEMO_USERS) {
    console.log(
      `   ${user.username.padEnd(26)} ${user.roles.length > 0 ? 'Global Administrator' : 'user, no admin role'}`,
    )
  }
  console.log(`\n Try: open ${config.publicUrl}/ms-graph-mail and click "Start Authorization Process".`)
  console.log(`${line}\n`)

  let stopping = false
  const stop = async () => {
    if (stopping) return
    stopping = true
    await broker.close()
    await stopEmulator?.()
    process.exit(0)
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
}

main().catch((error: unknown) => {
  console.error('demo failed to start:', error)
  process.exit(1)
})
