// `npm run demo`: the broker on 127.0.0.1:3000 — wired exactly as production (src/broker.ts) — and
// the Entra ID emulator on 127.0.0.1:3001, every cloud pointed at the emulator through its
// authority URL. Demo-only values (a fixed master key,
// the emulator's client secrets) live here, never in src/: production configuration has no defaults
// for them.
//
//   PORT, EMULATOR_PORT   listen ports (default 3000, 3001)
//   REDIS_URL             use Redis instead of the in-memory store: registrations survive a restart
//                         (the demo's master key is fixed); they keep issuing tokens only with an
//                         EMULATOR_URL that outlives the demo (its own emulator forgets its grants)
//   OPERATOR_TOKENS       operator tokens for /admin; unset, the demo makes one per start and prints
//                         it on a line of its own: `Operator token: <token>`, then the README's CLI
//                         command with it and the demo's URL filled in
//   EMULATOR_URL          use an emulator that is already running (start none): several brokers
//                         can share one emulator and one Redis
//   DEMO_CREDENTIAL       secret (default) | certificate | federated: the kind of credential every
//                         demo app authenticates with (scripts/demo-credentials.ts)
//   any other broker variable (LOG_LEVEL, PUBLIC_URL, METRICS_PORT …) passes through
import { createHash, randomBytes } from 'node:crypto'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'
import { DEMO_USERS } from '../emulator/demo-data.js'
import { demoClientSecretEnv } from '../emulator/demo-secrets.js'
import { startEmulator } from '../emulator/server.js'
import { createBroker } from '../src/broker.js'
import { ConfigError, type Env, loadConfig, readAppsFile } from '../src/config.js'
import { createLogger } from '../src/logger.js'
import { DEMO_CREDENTIALS, type DemoCredential, setUpDemoCredential } from './demo-credentials.js'

// Fixed so that several demo brokers sharing one Redis can read each other's registrations.
// It is public: never use it (or the demo at all) for real tenants.
const demoKey = (label: string) => createHash('sha256').update(`consent-broker demo ${label}`).digest()

/** A listen error turned into the variable to change (no stack): EADDRINUSE / EACCES on a port. */
function portProblem(error: unknown, variable: string, port: number): string | undefined {
  const code = (error as { code?: unknown } | null)?.code
  if (code === 'EADDRINUSE') {
    return `port ${port} is already in use: set ${variable} to a free port, e.g. ${variable}=${port + 100} npm run demo`
  }
  if (code === 'EACCES')
    return `port ${port} may not be opened by this user: set ${variable} to a port above 1023`
  return undefined
}

class DemoStartError extends Error {}

/** Whether `port` can be listened on at `host` now (a listen and close, before anything starts). */
function portFree(host: string, port: number): Promise<unknown> {
  return new Promise((resolve) => {
    const probe = createServer()
    probe.once('error', (error) => resolve(error))
    probe.listen(port, host, () => probe.close(() => resolve(undefined)))
  })
}

/** A port number a listen takes (1–65535). */
function isPort(port: number | undefined): port is number {
  return port !== undefined && Number.isInteger(port) && port >= 1 && port <= 65_535
}

/**
 * Every port the demo will open that can't be, each with the variable to change, checked before
 * anything starts: two busy ports are both named at once, not one per attempt. (Only a check: the
 * real listens still report a port taken in between.)
 */
async function portProblems(ports: ReadonlyArray<[string, string, number]>): Promise<string[]> {
  const problems: string[] = []
  for (const [variable, host, port] of ports) {
    const problem = portProblem(await portFree(host, port), variable, port)
    if (problem !== undefined) problems.push(problem)
  }
  return problems
}

async function main(): Promise<void> {
  const env = process.env
  const port = Number(env.PORT ?? 3000)
  const emulatorPort = Number(env.EMULATOR_PORT ?? 3001)
  const host = env.HOST ?? '127.0.0.1'
  const metricsPort = env.METRICS_PORT === undefined ? undefined : Number(env.METRICS_PORT)
  // Only well-formed ports are probed: the configuration names any other (loadConfig, below). The
  // emulator listens on 127.0.0.1 whatever HOST says, so its port is probed there.
  const probed: Array<[string, string, number | undefined]> = [
    ['EMULATOR_PORT', '127.0.0.1', env.EMULATOR_URL === undefined ? emulatorPort : undefined],
    ['PORT', host, port],
    ['METRICS_PORT', host, metricsPort],
  ]
  const busy = await portProblems(
    probed.filter((entry): entry is [string, string, number] => isPort(entry[2])),
  )
  if (busy.length > 0) throw new DemoStartError(busy.join('\n'))

  let emulatorUrl = env.EMULATOR_URL?.replace(/\/+$/, '')
  let stopEmulator: (() => Promise<void>) | undefined
  if (emulatorUrl === undefined) {
    const emulator = await startEmulator({ host: '127.0.0.1', port: emulatorPort }).catch(
      (error: unknown) => {
        const problem = portProblem(error, 'EMULATOR_PORT', emulatorPort)
        throw problem === undefined ? error : new DemoStartError(problem)
      },
    )
    emulatorUrl = emulator.url
    stopEmulator = emulator.close
  }

  // Operator access: the operator's own tokens when given, else one made for this start only.
  const operatorConfigured = env.OPERATOR_TOKENS !== undefined || env.OPERATOR_TOKEN_HASHES !== undefined
  const operatorToken = operatorConfigured ? undefined : randomBytes(24).toString('base64url')

  const demoAppsFile = fileURLToPath(new URL('../config/apps.demo.json', import.meta.url))
  const credentialKind = (env.DEMO_CREDENTIAL ?? 'secret') as DemoCredential
  if (!DEMO_CREDENTIALS.includes(credentialKind)) {
    console.error(`DEMO_CREDENTIAL: must be one of ${DEMO_CREDENTIALS.join(', ')}`)
    process.exit(1)
  }
  const credential = await setUpDemoCredential(credentialKind, demoAppsFile, emulatorUrl)
  const appsFile = credential.appsFile
  let config: ReturnType<typeof loadConfig>
  let brokerEnv: Env
  try {
    brokerEnv = {
      // (a PORT that is no port is the configuration's to name, once: not again inside PUBLIC_URL)
      PUBLIC_URL: isPort(port) ? `http://127.0.0.1:${port}` : 'http://127.0.0.1',
      HOST: host,
      PORT: String(port),
      MASTER_KEYS: `demo:${demoKey('master key').toString('base64')}`,
      COOKIE_SECRET: demoKey('cookie secret').toString('hex'),
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
      ...(operatorToken === undefined ? {} : { OPERATOR_TOKENS: `demo:${operatorToken}` }),
      // the demo's webhook receivers run on this machine (a loopback address)
      WEBHOOK_ALLOW_PRIVATE_ADDRESSES: 'true',
      UNSAFE_ALLOW_HTTP: 'true',
      ...demoClientSecretEnv(demoAppsFile),
      ...env,
      // After env: a certificate or federated demo runs on the apps file written for it above.
      APPS_FILE: credentialKind === 'secret' ? (env.APPS_FILE ?? appsFile) : appsFile,
    }
    config = loadConfig(brokerEnv)
  } catch (error) {
    await stopEmulator?.()
    if (error instanceof ConfigError) throw new DemoStartError(error.message)
    throw error
  }

  // The production wiring (src/broker.ts): Redis errors counted, METRICS_PORT honoured.
  const broker = await createBroker(config, createLogger(config.logLevel), () => readAppsFile(brokerEnv))
  try {
    await broker.listen()
  } catch (error) {
    await broker.close().catch(() => undefined)
    await stopEmulator?.()
    const port = (error as { port?: unknown } | null)?.port
    const problem =
      port === config.metricsPort
        ? portProblem(error, 'METRICS_PORT', config.metricsPort ?? 0)
        : portProblem(error, 'PORT', config.port)
    throw problem === undefined ? error : new DemoStartError(problem)
  }

  const line = '─'.repeat(72)
  console.log(`\n${line}`)
  console.log(' consent-broker demo')
  console.log(line)
  console.log(
    ` Consent pages:       ${config.publicUrl}/  (one page per app, e.g. ${config.publicUrl}/ms-graph-mail)`,
  )
  console.log(
    ` Tenant self-service: ${config.publicUrl}/{app}/manage  (e.g. ${config.publicUrl}/ms-graph-mail/manage)`,
  )
  console.log(` Operator console:    ${config.publicUrl}/admin  (API ${config.publicUrl}/admin/api)`)
  console.log(` Entra emulator:      ${emulatorUrl}${stopEmulator ? '' : ' (shared, started elsewhere)'}`)
  console.log(` App credential:      ${credentialKind} (DEMO_CREDENTIAL=secret|certificate|federated)`)
  if (config.redis === undefined) {
    console.log(' Store:               IN-MEMORY (registrations vanish when this process stops;')
    console.log('                      set REDIS_URL=redis://127.0.0.1:6379 to keep them across restarts)')
  } else {
    console.log(
      ` Store:               Redis ${redactedUrl(env.REDIS_URL ?? '')} (registrations kept across restarts)`,
    )
    // The emulator started here keeps its grants in memory: a restarted demo's registrations
    // would turn needs_consent at their next refresh.
    if (stopEmulator !== undefined) {
      console.log('                      This emulator forgets its consents when the demo stops: to')
      console.log('                      keep the registrations usable, run `npm run emulator` and')
      console.log('                      give the demo EMULATOR_URL (see the README).')
    }
  }
  if (config.metricsPort !== undefined) {
    console.log(` Metrics:             http://${config.host}:${config.metricsPort}/metrics (no token)`)
  }
  console.log('\n Sign in at the emulator as (no password):')
  for (const user of DEMO_USERS) {
    console.log(
      `   ${user.username.padEnd(26)} ${user.roles.length > 0 ? 'Global Administrator' : 'user, no admin role'}`,
    )
  }
  console.log(`\n Try: open ${config.publicUrl}/ms-graph-mail and click "Start Authorization Process".`)
  console.log('\n Operators sign in at /admin, call /admin/api and run the CLI with this token:')
  console.log(`${line}`)
  // On a line of its own, exactly this shape, so scripts and tests can read it.
  if (operatorToken === undefined) {
    console.log(
      'Operator tokens: the ones in OPERATOR_TOKENS / OPERATOR_TOKEN_HASHES (none made for this start)',
    )
  } else {
    console.log(`Operator token: ${operatorToken}`)
  }
  console.log(`${line}`)
  // The README's CLI command with this start's URL and token filled in, ready to paste (the CLI
  // has no default URL).
  console.log(' List the tenants with the CLI:')
  console.log(
    `   CONSENT_BROKER_URL=${config.publicUrl} CONSENT_BROKER_TOKEN=${operatorToken ?? '<token>'} npx consent-broker-admin tenants`,
  )
  console.log('\n Stop with Ctrl-C (or SIGTERM): the broker and the emulator stop and free their ports.\n')

  let stopping = false
  const stop = async (signal: NodeJS.Signals) => {
    if (stopping) return
    stopping = true
    console.log(`\n ${signal}: stopping the broker${stopEmulator === undefined ? '' : ' and the emulator'} …`)
    // A browser's keep-alive connection must not hold the ports: both servers close them.
    const closed = await Promise.allSettled([broker.close(), stopEmulator?.()])
    credential.cleanup()
    const failed = closed.filter((result) => result.status === 'rejected')
    if (failed.length > 0) {
      console.error(' Stopped, but closing failed:', ...failed.map((result) => result.reason))
      process.exit(1)
    }
    console.log(' Stopped; the ports are free.')
    process.exit(0)
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
  process.once('SIGHUP', stop)
}

/** The Redis URL without its password, for the banner. */
function redactedUrl(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password !== '') parsed.password = '***'
    return parsed.toString()
  } catch {
    return '(unparsable REDIS_URL)'
  }
}

main().catch((error: unknown) => {
  if (error instanceof DemoStartError) {
    console.error(`demo failed to start: ${error.message}`)
  } else {
    console.error('demo failed to start:', error)
  }
  process.exit(1)
})
