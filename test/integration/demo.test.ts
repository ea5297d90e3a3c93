// `npm run demo` is the production wiring plus the emulator, nothing less (src/broker.ts is shared
// with main.ts): it serves /metrics on METRICS_PORT without a token, keeps the token on the main
// port, and counts Redis connection errors. The demo runs as `npm run demo` runs it (tsx), on a
// Redis of its own that the test stops to cause connection errors.
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type BrokerProcess, findFreePort, REPO_ROOT, spawnBroker } from '../support/broker-process.js'
import { type RedisServerHandle, startRedisServer } from '../support/redis-server.js'

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

let redis: RedisServerHandle
let demo: BrokerProcess
let metricsUrl: string

beforeAll(async () => {
  redis = await startRedisServer()
  demo = await spawnBroker({
    entry: join(REPO_ROOT, 'scripts/demo.ts'),
    nodeArgs: ['--import', 'tsx'],
    env: async (port) => ({
      PORT: String(port),
      EMULATOR_PORT: String(await findFreePort()),
      METRICS_PORT: String(await findFreePort()),
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: `demo:${randomBytes(6).toString('hex')}:`,
      LOG_LEVEL: 'warn',
    }),
    readyTimeoutMs: 45_000,
  })
  metricsUrl = `http://127.0.0.1:${demo.env.METRICS_PORT}/metrics`
})

afterAll(async () => {
  await demo?.stop(10_000)
  await redis?.destroy()
})

async function scrape(): Promise<string> {
  const response = await fetch(metricsUrl)
  expect(response.status).toBe(200)
  return response.text()
}

/** The value of `consent_broker_redis_errors_total{operation="connection"}`, 0 when not yet counted. */
function connectionErrors(exposition: string): number {
  const line = exposition
    .split('\n')
    .find((l) => l.startsWith('consent_broker_redis_errors_total{operation="connection"}'))
  return line === undefined ? 0 : Number(line.split(' ').at(-1))
}

describe('npm run demo: the production wiring plus the emulator', () => {
  it('serves /metrics on METRICS_PORT without a token, and only with one on the main port', async () => {
    const exposition = await scrape()
    expect(exposition).toContain('# TYPE consent_broker_obtain_token_requests_total counter')
    expect(exposition).toContain('# TYPE consent_broker_redis_errors_total counter')
    expect(exposition).toMatch(/^consent_broker_registrations\{status="active"\} 0$/m)
    const mainPort = await fetch(`${demo.url}/metrics`)
    expect(mainPort.status).toBe(401)
    expect(((await mainPort.json()) as { error: { code: string } }).error.code).toBe('unauthorized')
  })

  it('counts Redis connection errors (the store is built with the error callback)', async () => {
    expect(connectionErrors(await scrape())).toBe(0)
    await redis.kill()
    let counted = 0
    for (let waited = 0; counted === 0 && waited < 20_000; waited += 250) {
      await sleep(250)
      counted = connectionErrors(await scrape())
    }
    expect(counted).toBeGreaterThan(0)
    expect(demo.stdout.some((line) => line.includes('redis connection error (reconnecting)'))).toBe(true)
    await redis.restart()
    // Back on Redis: ready again.
    let ready = 0
    for (let waited = 0; ready !== 200 && waited < 20_000; waited += 250) {
      await sleep(250)
      ready = await fetch(`${demo.url}/readyz`).then((r) => r.status)
    }
    expect(ready).toBe(200)
  })
})
