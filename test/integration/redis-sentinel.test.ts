// Redis Sentinel: a primary, a replica and three sentinels (real processes), the broker connected
// through the sentinels (REDIS_SENTINELS, as in production, via createStoreFromConfig). Token
// traffic runs for every registration while the primary is killed (SIGKILL) and the sentinels
// promote the replica. Errors must stay inside the failover window, be 5xx (a client retries; a
// 401 would tell it to re-consent), and no registration may be lost.
//
// Replication is asynchronous, so Redis itself only promises what the replica acknowledged: the
// registrations are made, then the test waits for the replica's acknowledgement (WAIT) before the
// kill, which is the guarantee an operator gets from Sentinel (pair it with AOF on both nodes).
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type RunningEmulator, startEmulator } from '../../emulator/server.js'
import type { Config } from '../../src/config.js'
import { type ConsentValues, consentViaEmulator, listenOnConfig } from '../support/broker.js'
import { testConfig } from '../support/config.js'
import { type RedisSentinelHandle, startRedisSentinel } from '../support/redis-sentinel.js'
import { XsoarClient } from '../support/xsoar-client.js'

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
/** After the sentinels report the new master, the client may need a reconnect cycle (≤ 2 s backoff). */
const RECONNECT_ALLOWANCE_MS = 7000

let emulator: RunningEmulator
let sentinel: RedisSentinelHandle
const closers: Array<() => Promise<void>> = []

beforeAll(async () => {
  emulator = await startEmulator({ port: 0 })
  sentinel = await startRedisSentinel({ downAfterMs: 1000, failoverTimeoutMs: 5000 })
}, 60_000)

afterAll(async () => {
  for (const close of closers.reverse()) await close()
  await sentinel?.destroy()
  await emulator?.close()
})

async function brokerOnSentinel(config: Config) {
  let redisErrors = 0
  const broker = await listenOnConfig(config, { onRedisError: () => void redisErrors++ })
  closers.push(broker.close)
  return { ...broker, redisErrors: () => redisErrors }
}

interface Sample {
  registration: number
  start: number
  end: number
  status: number
  body: string
}

describe('Redis Sentinel failover during token traffic', () => {
  it('errors stay within the failover window, all 5xx; no registration is lost', async () => {
    const config = testConfig({
      authorityUrl: emulator.url,
      env: {
        UNSAFE_MEMORY_STORE: '',
        REDIS_SENTINELS: sentinel.sentinels.map(({ host, port }) => `${host}:${port}`).join(','),
        REDIS_SENTINEL_NAME: sentinel.masterName,
        REDIS_KEY_PREFIX: 'sentinel:',
        RATE_LIMIT_PER_REGISTRATION: '1000000',
        RATE_LIMIT_PER_IP: '1000000',
      },
    })
    expect(config.redis?.sentinels).toHaveLength(3)
    const broker = await brokerOnSentinel(config)

    const registrations: Array<{ values: ConsentValues; app: string }> = []
    for (const [app, username] of [
      ['ms-graph-mail', 'admin@contoso.example'],
      ['ms-graph-user', 'admin@fabrikam.example'],
      ['ms-defender-atp', 'admin@contoso.example'],
      ['ms-graph-mail-listener', 'user@contoso.example'],
      ['ms-azure-log-analytics', 'user@fabrikam.example'],
    ] as const) {
      registrations.push({ values: await consentViaEmulator(broker.app, { slug: app, username }), app })
    }
    await sentinel.waitForReplication()

    // Token traffic: one sequential client per registration, bounded in time.
    const samples: Sample[] = []
    let stopAt = Number.POSITIVE_INFINITY
    const workers = registrations.map(async ({ values, app }, index) => {
      const client = new XsoarClient({ ...values, appName: app, urlOverride: `${broker.url}/obtain-token` })
      const hardStop = Date.now() + 60_000
      while (Date.now() < stopAt && Date.now() < hardStop) {
        const start = Date.now()
        const answer = await client.getAccessToken().catch((error: unknown) => ({
          status: 0,
          body: String(error),
        }))
        samples.push({
          registration: index,
          start,
          end: Date.now(),
          status: answer.status,
          body: answer.body,
        })
        await sleep(20)
      }
    })

    await sleep(1000)
    await sentinel.waitForReplication()
    const killAt = Date.now()
    await sentinel.primary.kill('SIGKILL')
    await sentinel.waitForMaster(sentinel.replica.port, 30_000)
    const switchedAt = Date.now()
    const recoveredBy = switchedAt + RECONNECT_ALLOWANCE_MS
    // Keep the traffic going well past the allowance, then stop it.
    await sleep(RECONNECT_ALLOWANCE_MS + 3000)
    stopAt = Date.now()
    await Promise.all(workers)

    const failures = samples.filter((s) => s.status !== 200)
    const summary = `failover ${switchedAt - killAt} ms; ${samples.length} requests, ${failures.length} failed: ${JSON.stringify(
      failures.slice(0, 5).map((f) => ({ status: f.status, body: f.body.slice(0, 160) })),
    )}`
    // Healthy before the kill, healthy after the window.
    expect(
      samples.filter((s) => s.end < killAt && s.status !== 200),
      summary,
    ).toEqual([])
    const afterWindow = samples.filter((s) => s.start > recoveredBy)
    expect(afterWindow.length, summary).toBeGreaterThan(registrations.length * 10)
    expect(
      afterWindow.filter((s) => s.status !== 200),
      summary,
    ).toEqual([])
    for (let index = 0; index < registrations.length; index++) {
      expect(
        afterWindow.some((s) => s.registration === index && s.status === 200),
        summary,
      ).toBe(true)
    }
    // Every failure happened inside the window and was a server-side 5xx, never "re-consent".
    for (const failure of failures) {
      expect(failure.end, summary).toBeGreaterThanOrEqual(killAt)
      expect(failure.start, summary).toBeLessThanOrEqual(recoveredBy)
      expect(failure.status, summary).toBeGreaterThanOrEqual(500)
    }
    expect(broker.redisErrors()).toBeGreaterThan(0)

    // No registration lost: all there on the new master, and a fresh instance issues tokens.
    const fresh = await brokerOnSentinel(config)
    for (const { values, app } of registrations) {
      const stored = await fresh.store.registrations.get(values.registrationId)
      expect(stored?.registration.status, app).toBe('active')
      expect(stored?.secrets.key, app).toBe(values.key)
      const client = new XsoarClient({ ...values, appName: app, urlOverride: `${fresh.url}/obtain-token` })
      const answer = await client.getAccessToken()
      expect(answer.status, `${app}: ${answer.body}`).toBe(200)
    }
    expect(await sentinel.currentMaster()).toEqual({ host: '127.0.0.1', port: sentinel.replica.port })
  }, 120_000)
})
