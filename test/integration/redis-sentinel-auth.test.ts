// Redis Sentinel with passwords, as production deployments run it: the data nodes `requirepass`
// (and `masterauth` between them), the sentinels their own `requirepass`. The broker is configured
// only through the environment (REDIS_SENTINELS, REDIS_SENTINEL_PASSWORD, REDIS_PASSWORD) and must
// serve tokens before and after a failover; without the sentinels' password it can't connect.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type RunningEmulator, startEmulator } from '../../emulator/server.js'
import type { Config, Env } from '../../src/config.js'
import { consentViaEmulator, listenOnConfig } from '../support/broker.js'
import { testConfig } from '../support/config.js'
import { type RedisSentinelHandle, startRedisSentinel } from '../support/redis-sentinel.js'
import { XsoarClient } from '../support/xsoar-client.js'

const DATA_PASSWORD = 'data-nodes-password-1'
const SENTINEL_PASSWORD = 'sentinels-password-2'
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

let emulator: RunningEmulator
let sentinel: RedisSentinelHandle
const closers: Array<() => Promise<void>> = []

beforeAll(async () => {
  emulator = await startEmulator({ port: 0 })
  sentinel = await startRedisSentinel({
    downAfterMs: 1000,
    failoverTimeoutMs: 5000,
    password: DATA_PASSWORD,
    sentinelPassword: SENTINEL_PASSWORD,
  })
}, 60_000)

afterAll(async () => {
  for (const close of closers.reverse()) await close()
  await sentinel?.destroy()
  await emulator?.close()
})

function sentinelConfig(env: Env): Config {
  return testConfig({
    authorityUrl: emulator.url,
    env: {
      UNSAFE_MEMORY_STORE: '',
      REDIS_SENTINELS: sentinel.sentinels.map(({ host, port }) => `${host}:${port}`).join(','),
      REDIS_SENTINEL_NAME: sentinel.masterName,
      REDIS_KEY_PREFIX: 'sentinel-auth:',
      ...env,
    },
  })
}

async function brokerOn(config: Config) {
  const broker = await listenOnConfig(config, { onRedisError: () => undefined })
  closers.push(broker.close)
  return broker
}

describe('Redis Sentinel with passwords', () => {
  it('serves tokens through password-protected sentinels and data nodes, across a failover', async () => {
    const broker = await brokerOn(
      sentinelConfig({ REDIS_SENTINEL_PASSWORD: SENTINEL_PASSWORD, REDIS_PASSWORD: DATA_PASSWORD }),
    )
    expect((await broker.app.inject({ url: '/readyz' })).statusCode).toBe(200)
    const values = await consentViaEmulator(broker.app, {
      slug: 'ms-graph-mail',
      username: 'admin@contoso.example',
    })
    const client = new XsoarClient({
      ...values,
      appName: 'ms-graph-mail',
      urlOverride: `${broker.url}/obtain-token`,
    })
    const before = await client.getAccessToken()
    expect(before.status, before.body).toBe(200)
    await sentinel.waitForReplication()

    const replicaPort = sentinel.replica.port
    await sentinel.primary.kill('SIGKILL')
    await sentinel.waitForMaster(replicaPort)
    // The client finds the new primary through the sentinels and authenticates to it.
    const deadline = Date.now() + 15_000
    let after = await client.getAccessToken()
    while (after.status !== 200 && Date.now() < deadline) {
      await sleep(200)
      after = await client.getAccessToken()
    }
    expect(after.status, after.body).toBe(200)
    expect(after.accessToken).toBe(before.accessToken)
  }, 60_000)

  it("is not ready without the sentinels' password", async () => {
    const broker = await brokerOn(sentinelConfig({ REDIS_PASSWORD: DATA_PASSWORD }))
    const ready = await broker.app.inject({ url: '/readyz' })
    expect(ready.statusCode).toBe(503)
  }, 30_000)
})
