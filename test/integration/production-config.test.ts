// The built entry in production mode: with missing or invalid settings it exits non-zero before
// listening, listing every problem by name (one per line, no stack trace, no secret value); with
// valid settings but Redis down it is alive (/healthz) and not ready (/readyz) until Redis answers.
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Env } from '../../src/config.js'
import {
  type BrokerProcess,
  ensureBuilt,
  findFreePort,
  productionEnv,
  REPO_ROOT,
  spawnBroker,
} from '../support/broker-process.js'
import { DEMO_CLIENT_SECRET_ENV } from '../support/config.js'
import {
  type HeldPort,
  holdFreePort,
  type RedisServerHandle,
  startRedisServer,
} from '../support/redis-server.js'

const run = promisify(execFile)
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

beforeAll(async () => {
  await ensureBuilt()
}, 120_000)

/** Runs the built broker to its exit; it must exit on its own (a configuration error). */
async function startAndExpectExit(
  env: Env,
): Promise<{ code: number | null; stderr: string; stdout: string }> {
  const broker = await spawnBroker({ env, waitReady: false })
  const timer = setTimeout(() => broker.signal('SIGKILL'), 20_000)
  const { code } = await broker.exited
  clearTimeout(timer)
  return { code, stderr: broker.stderr(), stdout: broker.stdout.join('\n') }
}

function problemLines(stderr: string): string[] {
  return stderr
    .split('\n')
    .filter((line) => line.startsWith('  - '))
    .map((line) => line.slice(4))
}

describe('start-up with an invalid configuration', () => {
  it('with an empty environment, exits 1 naming every required setting', async () => {
    const port = await findFreePort()
    const { code, stderr, stdout } = await startAndExpectExit({ PORT: String(port) })
    expect(code).toBe(1)
    expect(stderr).toMatch(/^consent-broker: invalid configuration:\n/)
    const names = problemLines(stderr).map((line) => line.slice(0, line.indexOf(':')))
    expect(names).toEqual(['PUBLIC_URL', 'REDIS_URL', 'MASTER_KEYS', 'COOKIE_SECRET', 'APPS_FILE'])
    expect(stderr).not.toMatch(/\n\s+at /) // no stack trace
    expect(stdout).toBe('')
    // It never listened.
    expect(await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => 'refused')).toBe('refused')
  })

  it('lists each bad value by name, without echoing secrets', async () => {
    const port = await findFreePort()
    const shortSecret = 'tiny-cookie-secret'
    const env: Record<string, string | undefined> = {
      ...productionEnv({ port, redisUrl: 'redis://127.0.0.1:1', authorityUrl: 'http://127.0.0.1:1' }),
      PUBLIC_URL: 'http://consent.example.com',
      MASTER_KEYS: `k1:${randomBytes(16).toString('base64')}`,
      COOKIE_SECRET: shortSecret,
      REDIS_CLUSTER_NODES: '127.0.0.1:7000',
      OPERATOR_TOKENS: 'ops:short',
      METRICS_PORT: String(port),
    }
    delete env.MS_GRAPH_USER_CLIENT_SECRET
    const { code, stderr } = await startAndExpectExit(env)
    expect(code).toBe(1)
    const problems = problemLines(stderr)
    const expected = [
      /^PUBLIC_URL: must be https/,
      /^REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES: set exactly one Redis topology/,
      /^MASTER_KEYS: key "k1" decodes to 16 bytes, expected 32/,
      /^COOKIE_SECRET: must be at least 32 characters/,
      /^OPERATOR_TOKENS: token of "ops" must be at least 24 characters/,
      /^MS_GRAPH_USER_CLIENT_SECRET: unset, but ms-graph-user \(global\) takes its client secret from it/,
      /^METRICS_PORT: must differ from PORT/,
    ]
    for (const pattern of expected)
      expect(
        problems.some((p) => pattern.test(p)),
        String(pattern),
      ).toBe(true)
    expect(problems).toHaveLength(expected.length)
    expect(stderr).not.toContain(shortSecret)
    expect(stderr).not.toContain(env.MASTER_KEYS!.slice(3))
    for (const secret of Object.values(DEMO_CLIENT_SECRET_ENV)) expect(stderr).not.toContain(secret)
  })

  it('`npm start` fails the same way', async () => {
    const error = await run('npm', ['start', '--silent'], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', PUBLIC_URL: 'https://consent.example.com' },
      timeout: 30_000,
    }).then(
      () => undefined,
      (failure: { code?: number; stderr?: string }) => failure,
    )
    expect(error?.code).toBe(1)
    expect(problemLines(error?.stderr ?? '').map((line) => line.slice(0, line.indexOf(':')))).toEqual([
      'REDIS_URL',
      'MASTER_KEYS',
      'COOKIE_SECRET',
      'APPS_FILE',
    ])
  })
})

describe('health while Redis is down', () => {
  let redisPort: number
  // Held (every connection reset) until Redis starts on it: no other process can take it meanwhile.
  let held: HeldPort | undefined
  let broker: BrokerProcess | undefined
  let redis: RedisServerHandle | undefined

  beforeAll(async () => {
    held = await holdFreePort()
    redisPort = held.port
    // Listening whatever Redis does (not ready: /readyz would wait for Redis).
    broker = await spawnBroker({
      env: (port) =>
        productionEnv({
          port,
          redisUrl: `redis://127.0.0.1:${redisPort}`,
          authorityUrl: 'http://127.0.0.1:1',
        }),
      waitReady: 'listening',
      readyTimeoutMs: 20_000,
    })
  }, 60_000)

  afterAll(async () => {
    await broker?.stop()
    await held?.release()
    await redis?.destroy()
  })

  it('is alive but not ready, then ready once Redis answers, counting the Redis errors', async () => {
    const health = await fetch(`${broker!.url}/healthz`)
    expect(health.status).toBe(200)
    const notReady = await fetch(`${broker!.url}/readyz`)
    expect(notReady.status).toBe(503)
    expect(((await notReady.json()) as { error: { code: string } }).error.code).toBe('not_ready')

    await held!.release()
    redis = await startRedisServer({ port: redisPort })
    const deadline = Date.now() + 20_000
    let status = 0
    while (Date.now() < deadline) {
      status = await fetch(`${broker!.url}/readyz`).then((r) => r.status)
      if (status === 200) break
      await sleep(100)
    }
    expect(status).toBe(200)
    expect(broker!.stdout.some((line) => line.includes('redis connection error (reconnecting)'))).toBe(true)
  })
})
