// Production-install smoke test: what the Dockerfile's runtime stage does, without Docker. The
// build (dist/, bin/, package.json, package-lock.json, the apps file) is copied into an empty directory,
// `npm ci --omit=dev --ignore-scripts` installs production dependencies only, and `npm start`'s
// entry (bin/start.js, which runs dist/src/main.js) runs there against a real Redis with the emulator as authority. A runtime
// import of a devDependency, a file missing from dist/, or a start script pointing at the wrong path
// fails here.
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { cp, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { type RunningEmulator, startEmulator } from '../../emulator/server.js'
import {
  type BrokerProcess,
  consentOverHttp,
  ensureBuilt,
  productionEnv,
  REPO_ROOT,
  spawnBroker,
} from '../support/broker-process.js'
import { XsoarClient } from '../support/xsoar-client.js'

const run = promisify(execFile)
const OPERATOR_TOKEN = `smoke-${randomBytes(16).toString('hex')}`

let installDir: string
let emulator: RunningEmulator
let broker: BrokerProcess

beforeAll(async () => {
  await ensureBuilt()
  installDir = await mkdtemp(join(tmpdir(), 'consent-broker-install-'))
  // The runtime stage's inputs, nothing else.
  await cp(join(REPO_ROOT, 'dist'), join(installDir, 'dist'), { recursive: true })
  // `npm start` and the CLI's bin launch through bin/, which the image ships beside dist/.
  await cp(join(REPO_ROOT, 'bin'), join(installDir, 'bin'), { recursive: true })
  await cp(join(REPO_ROOT, 'package.json'), join(installDir, 'package.json'))
  await cp(join(REPO_ROOT, 'package-lock.json'), join(installDir, 'package-lock.json'))
  await mkdir(join(installDir, 'config'))
  await cp(join(REPO_ROOT, 'config/apps.demo.json'), join(installDir, 'config/apps.json'))
  await run('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'], {
    cwd: installDir,
    timeout: 240_000,
    env: { ...process.env, npm_config_loglevel: 'error' },
  })

  emulator = await startEmulator({ port: 0 })
  const pkg = JSON.parse(await readFile(join(installDir, 'package.json'), 'utf8')) as {
    scripts: { start: string }
  }
  // `npm start` is what an operator runs outside Docker: take the entry from it.
  const entry = pkg.scripts.start.replace(/^node\s+/, '')
  broker = await spawnBroker({
    entry: join(installDir, entry),
    cwd: installDir,
    env: (port) =>
      productionEnv({
        port,
        redisUrl: inject('redisUrl'),
        authorityUrl: emulator.url,
        env: { APPS_FILE: 'config/apps.json', OPERATOR_TOKENS: `smoke:${OPERATOR_TOKEN}` },
      }),
  })
}, 300_000)

afterAll(async () => {
  await broker?.stop()
  await emulator?.close()
  if (installDir !== undefined) await rm(installDir, { recursive: true, force: true })
})

describe('production install (npm ci --omit=dev, node dist/src/main.js)', () => {
  it('installed production dependencies only', () => {
    for (const runtime of ['fastify', 'ioredis', 'pino', 'prom-client', 'openid-client']) {
      expect(existsSync(join(installDir, 'node_modules', runtime)), runtime).toBe(true)
    }
    for (const dev of ['typescript', 'vitest', 'tsx', '@biomejs/biome', 'supertest']) {
      expect(existsSync(join(installDir, 'node_modules', dev)), dev).toBe(false)
    }
  })

  it('answers /healthz and /readyz, with a request id', async () => {
    const health = await fetch(`${broker.url}/healthz`, { headers: { 'x-request-id': 'smoke-1' } })
    expect(health.status).toBe(200)
    expect(await health.json()).toEqual({ status: 'ok' })
    expect(health.headers.get('x-request-id')).toBe('smoke-1')
    const ready = await fetch(`${broker.url}/readyz`)
    expect(ready.status).toBe(200)
    expect(await ready.json()).toEqual({ status: 'ready' })
    expect(ready.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/)
  })

  it('completes an admin consent and issues an access token to the XSOAR client', async () => {
    const values = await consentOverHttp(broker.url, {
      slug: 'ms-graph-mail',
      username: 'admin@contoso.example',
    })
    expect(values.id).toBe(`${values.registrationId}@${broker.url}/obtain-token`)
    const client = new XsoarClient({ ...values, appName: 'ms-graph-mail' })
    const answer = await client.getAccessToken()
    expect(answer.status, answer.body).toBe(200)
    expect(answer.accessToken.split('.')).toHaveLength(3)
    expect(typeof answer.expiresIn).toBe('number')
    // The second request is served from the sealed cache in Redis.
    const again = await client.getAccessToken()
    expect(again.status).toBe(200)
    expect(again.accessToken).toBe(answer.accessToken)
  })

  it('serves metrics to an operator and the OpenAPI document', async () => {
    expect((await fetch(`${broker.url}/metrics`)).status).toBe(401)
    const metrics = await fetch(`${broker.url}/metrics`, {
      headers: { authorization: `Bearer ${OPERATOR_TOKEN}` },
    })
    expect(metrics.status).toBe(200)
    const text = await metrics.text()
    expect(text).toMatch(
      /consent_broker_obtain_token_requests_total\{app="ms-graph-mail",outcome="success"\} 2/,
    )
    expect(text).toMatch(/consent_broker_process_cpu_user_seconds_total/)
    const openapi = await fetch(`${broker.url}/openapi.json`)
    expect(openapi.status).toBe(200)
    expect(Object.keys(((await openapi.json()) as { paths: object }).paths)).toContain('/obtain-token')
  })

  it('exits 0 on SIGTERM', async () => {
    broker.signal('SIGTERM')
    const { code, signal } = await broker.exited
    expect({ code, signal }).toEqual({ code: 0, signal: null })
    expect(broker.stdout.some((line) => line.includes('"shutdown complete"'))).toBe(true)
  })
})
