// Graceful shutdown of the built broker (node dist/src/main.js), as Docker or Kubernetes stop it:
// SIGTERM while obtain-token requests are in flight (the emulator holds every upstream token call
// for a while). The process must stop accepting, answer every in-flight request successfully,
// leave no lock behind in Redis, close its connections and exit 0 within SHUTDOWN_TIMEOUT_MS.
import { request as httpRequest } from 'node:http'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type RunningEmulator, startEmulator } from '../../emulator/server.js'
import type { ConsentValues } from '../support/broker.js'
import {
  type BrokerProcess,
  consentOverHttp,
  findFreePort,
  productionEnv,
  spawnBroker,
} from '../support/broker-process.js'
import { type RedisServerHandle, startRedisServer } from '../support/redis-server.js'
import { XsoarClient } from '../support/xsoar-client.js'

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
const UPSTREAM_DELAY_MS = 3000
const RESPONSE_DEADLINE_MS = 8000
const SHUTDOWN_TIMEOUT_MS = 12_000

let emulator: RunningEmulator
// A Redis of its own: CLIENT LIST then shows this test's connections only.
let server: RedisServerHandle
let redis: Redis

beforeAll(async () => {
  emulator = await startEmulator({ port: 0 })
  server = await startRedisServer()
  redis = new Redis(server.url)
  // The server is stopped in this file: an error listener keeps ioredis from printing stacks.
  redis.on('error', () => undefined)
})

afterAll(async () => {
  redis?.disconnect()
  await server?.destroy()
  await emulator?.close()
})

/** A production broker on free ports (with `metrics`, a METRICS_PORT listener too). */
async function startProductionBroker(options: { metrics?: boolean } = {}): Promise<{
  broker: BrokerProcess
  keyPrefix: string
}> {
  const broker = await spawnBroker({
    env: async (port) =>
      productionEnv({
        port,
        redisUrl: server.url,
        authorityUrl: emulator.url,
        env: {
          RESPONSE_DEADLINE_MS: String(RESPONSE_DEADLINE_MS),
          UPSTREAM_TIMEOUT_MS: String(RESPONSE_DEADLINE_MS - 1000),
          SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
          ...(options.metrics ? { METRICS_PORT: String(await findFreePort()) } : {}),
        },
      }),
  })
  return { broker, keyPrefix: broker.env.REDIS_KEY_PREFIX! }
}

describe('graceful shutdown of the built broker', () => {
  it('SIGTERM during load: every in-flight request succeeds, no lock is left, exit 0 within the bound', async () => {
    const { broker, keyPrefix } = await startProductionBroker()
    // Six registrations with distinct app + tenant, so six distinct upstream calls.
    const registrations: Array<{ values: ConsentValues; app: string }> = []
    for (const app of ['ms-graph-mail', 'ms-graph-user', 'ms-defender-atp']) {
      for (const username of ['admin@contoso.example', 'admin@fabrikam.example']) {
        registrations.push({ values: await consentOverHttp(broker.url, { slug: app, username }), app })
      }
    }

    // From now on every client-credentials call waits at the "identity provider".
    const fault = await fetch(`${emulator.url}/_emulator/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ grantType: 'client_credentials', delayMs: UPSTREAM_DELAY_MS, count: 1000 }),
    })
    expect(fault.ok).toBe(true)
    const upstreamBefore = emulator.state.stats.token_requests.client_credentials ?? 0

    const sentAt = Date.now()
    const inFlight = registrations.flatMap(({ values, app }) =>
      [0, 1, 2].map(async () => {
        const client = new XsoarClient({ ...values, appName: app })
        const answer = await client.getAccessToken().catch((error: unknown) => ({
          status: 0,
          body: String(error),
          accessToken: '',
        }))
        return { status: answer.status, body: answer.body, token: answer.accessToken, at: Date.now() }
      }),
    )
    // Wait until all six upstream calls are being held: the requests are truly in flight.
    const deadline = Date.now() + 5000
    while (
      (emulator.state.stats.token_requests.client_credentials ?? 0) - upstreamBefore <
      registrations.length
    ) {
      if (Date.now() > deadline) throw new Error('the token requests did not reach the emulator')
      await sleep(10)
    }
    expect(Date.now() - sentAt).toBeLessThan(UPSTREAM_DELAY_MS)

    let answered = 0
    for (const request of inFlight) void request.then(() => (answered += 1))
    let exitedAt: number | undefined
    void broker.exited.then((exit) => (exitedAt = exit.at))

    const termAt = Date.now()
    broker.signal('SIGTERM')
    // No longer accepting: a new connection is refused, while every in-flight request is still
    // held upstream and the process is running — so it is the shutdown that refuses, not an exited
    // process. Polled, not slept: how soon the signal is handled depends on the machine's load.
    // (A request on a connection kept alive from before would still be answered, with `Connection:
    // close`: shutdown-keep-alive.test.ts.)
    const probe = () =>
      new Promise<number | string>((resolve) => {
        const req = httpRequest(`${broker.url}/healthz`, { agent: false, timeout: 5000 }, (res) => {
          res.resume()
          resolve(res.statusCode ?? 0)
        })
        req.on('timeout', () => req.destroy(new Error('probe timed out')))
        req.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message))
        req.end()
      })
    let late = await probe()
    while (late !== 'ECONNREFUSED' && answered === 0 && exitedAt === undefined) {
      await sleep(20)
      late = await probe()
    }
    expect(late).toBe('ECONNREFUSED')
    expect({ answered, exited: exitedAt !== undefined }).toEqual({ answered: 0, exited: false })

    const answers = await Promise.all(inFlight)
    for (const answer of answers) expect(answer.status, answer.body).toBe(200)
    for (const answer of answers) expect(answer.token.split('.')).toHaveLength(3)
    // They were answered after the signal: the process waited for them.
    expect(Math.max(...answers.map((a) => a.at))).toBeGreaterThan(termAt)

    const exit = await broker.exited
    expect({ code: exit.code, signal: exit.signal }).toEqual({ code: 0, signal: null })
    expect(exit.at - termAt).toBeLessThan(SHUTDOWN_TIMEOUT_MS)
    const messages = broker.stdout.map((line) => (JSON.parse(line) as { msg: string }).msg)
    expect(messages.indexOf('shutting down: finishing in-flight requests')).toBeGreaterThan(-1)
    expect(messages.indexOf('shutdown complete')).toBeGreaterThan(
      messages.indexOf('shutting down: finishing in-flight requests'),
    )
    expect(broker.stderr()).toBe('')

    // Nothing held: no refresh lock of this broker is left in Redis, and its connection is gone.
    expect(await redis.keys(`${keyPrefix}lock:*`)).toEqual([])
    const clients = String(await redis.call('CLIENT', 'LIST'))
    expect(clients.split('\n').filter((line) => line.includes('name=consent-broker'))).toEqual([])
    await fetch(`${emulator.url}/_emulator/faults`, { method: 'DELETE' })
  }, 60_000)

  it('SIGINT on an idle broker exits 0 at once, closing the METRICS_PORT listener too', async () => {
    const { broker } = await startProductionBroker({ metrics: true })
    const metricsUrl = `http://127.0.0.1:${broker.env.METRICS_PORT}/metrics`
    const scrape = await fetch(metricsUrl)
    expect(scrape.status).toBe(200)
    expect(await scrape.text()).toMatch(/^# HELP consent_broker_/m)
    const sentAt = Date.now()
    broker.signal('SIGINT')
    const exit = await broker.exited
    expect({ code: exit.code, signal: exit.signal }).toEqual({ code: 0, signal: null })
    expect(exit.at - sentAt).toBeLessThan(SHUTDOWN_TIMEOUT_MS)
    expect(broker.stdout.some((line) => line.includes('"signal":"SIGINT"'))).toBe(true)
    expect(
      await fetch(metricsUrl).then(
        () => 'open',
        () => 'closed',
      ),
    ).toBe('closed')
  })
})
