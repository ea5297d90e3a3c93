// Durability: registrations survive a crash of Redis. Redis runs as production does (AOF on,
// `appendfsync everysec`); the broker registers admin and delegated consents and issues tokens;
// Redis is killed with SIGKILL and restarted from the same directory; afterwards every registration
// still issues tokens: through the broker that lived through the outage, and through a fresh
// broker instance (same master keys and prefix) that can only know what Redis kept.
//
// What everysec guarantees, honestly: Redis write()s the AOF buffer to the kernel before it answers
// the client, and fsync()s it about once per second. A crash of the Redis *process* (what SIGKILL
// simulates here) therefore loses no acknowledged write: the kernel still has it. A crash of the
// host or a power cut can lose up to about one second (two in the worst case) of writes that were
// not yet fsynced; a test can't cut the power, so it waits past that window before the kill, which
// is also what an operator can count on.
import { existsSync } from 'node:fs'
import { readdir } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type RunningEmulator, startEmulator } from '../../emulator/server.js'
import { type ConsentValues, consentViaEmulator, type RunningBroker, startBroker } from '../support/broker.js'
import { randomMasterKeys } from '../support/config.js'
import { type RedisServerHandle, startRedisServer } from '../support/redis-server.js'
import { XsoarClient } from '../support/xsoar-client.js'

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

const MASTER_KEYS = randomMasterKeys()
const KEY_PREFIX = 'durable:'

let emulator: RunningEmulator
let server: RedisServerHandle
const brokers: RunningBroker[] = []

async function brokerOnRedis(): Promise<{ broker: RunningBroker; url: string }> {
  const broker = await startBroker({
    authorityUrl: emulator.url,
    redisUrl: server.url,
    keyPrefix: KEY_PREFIX,
    env: { MASTER_KEYS },
  })
  brokers.push(broker)
  await broker.app.listen({ host: '127.0.0.1', port: 0 })
  return { broker, url: `http://127.0.0.1:${(broker.app.server.address() as AddressInfo).port}` }
}

/** Retries while the broker reconnects to the restarted Redis (bounded), then returns the answer. */
async function tokenFor(values: ConsentValues, app: string, url: string, refreshToken: string) {
  const client = new XsoarClient({ ...values, appName: app, urlOverride: `${url}/obtain-token` })
  client.refreshToken = refreshToken
  const deadline = Date.now() + 15_000
  for (;;) {
    const answer = await client.getAccessToken()
    if (answer.status < 500 || Date.now() > deadline) return { answer, client }
    await sleep(200)
  }
}

beforeAll(async () => {
  emulator = await startEmulator({ port: 0 })
  server = await startRedisServer({ appendOnly: true })
})

afterAll(async () => {
  await Promise.all(brokers.map((broker) => broker.close()))
  await server?.destroy()
  await emulator?.close()
})

describe('durability: registrations survive SIGKILL of Redis (AOF, everysec)', () => {
  it('every registration made before the crash issues tokens after the restart', async () => {
    const { broker: first, url: firstUrl } = await brokerOnRedis()
    const made: Array<{ values: ConsentValues; app: string; refreshToken: string }> = []
    for (const [app, username] of [
      ['ms-graph-mail', 'admin@contoso.example'],
      ['ms-graph-user', 'admin@fabrikam.example'],
      ['ms-graph-mail-listener', 'user@contoso.example'],
      ['ms-azure-log-analytics', 'user@fabrikam.example'],
      ['ms-graph-mail-listener', 'admin@fabrikam.example'],
    ] as const) {
      const values = await consentViaEmulator(first.app, { slug: app, username })
      // A first token before the crash: delegated registrations rotate their refresh token here.
      const { answer, client } = await tokenFor(values, app, firstUrl, '')
      expect(answer.status, answer.body).toBe(200)
      made.push({ values, app, refreshToken: client.refreshToken })
    }

    // Past the fsync window, two seconds at worst (see the comment at the top), then a crash. Slept,
    // not polled: nothing outside Redis can see an fsync happen.
    await sleep(2500)
    const aof = await readdir(join(server.dir, 'appendonlydir'))
    expect(aof.some((file) => file.endsWith('.incr.aof'))).toBe(true)
    await server.kill('SIGKILL')
    // While Redis is down: a clear 503 with Retry-After, counted as a Redis command error.
    const down = new XsoarClient({
      ...made[0]!.values,
      appName: made[0]!.app,
      urlOverride: `${firstUrl}/obtain-token`,
    })
    const refused = await down.getAccessToken()
    expect(refused.status, refused.body).toBe(503)
    expect(JSON.parse(refused.body).error.code).toBe('store_unavailable')
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0)
    const errors = await first.app.metrics.redisErrors.get()
    expect(errors.values.find((v) => v.labels.operation === 'command')?.value).toBeGreaterThanOrEqual(1)
    await server.restart()
    expect(existsSync(join(server.dir, 'appendonlydir'))).toBe(true)

    const admin = new Redis(server.url)
    admin.on('error', () => undefined) // the server restarts under it in this file
    try {
      expect(String(await admin.info('persistence'))).toMatch(/aof_enabled:1/)
      // Force real refreshes: drop every cached access token, so tokens come from the stored
      // registrations (and refresh tokens), not from the cache.
      const cached = await admin.keys(`${KEY_PREFIX}tok:*`)
      expect(cached.length).toBeGreaterThan(0)
      await admin.del(...cached)
    } finally {
      admin.disconnect()
    }
    const upstreamBefore = { ...emulator.state.stats.token_requests }

    // The broker that lived through the outage reconnects by itself.
    for (const { values, app, refreshToken } of made) {
      const { answer } = await tokenFor(values, app, firstUrl, refreshToken)
      expect(answer.status, `${app}: ${answer.body}`).toBe(200)
      expect(answer.accessToken.split('.')).toHaveLength(3)
    }
    // A fresh instance knows only what Redis kept.
    const { broker: fresh, url: freshUrl } = await brokerOnRedis()
    for (const { values, app } of made) {
      const stored = await fresh.store.registrations.get(values.registrationId)
      expect(stored?.registration.status).toBe('active')
      expect(stored?.secrets.key).toBe(values.key)
      const { answer } = await tokenFor(values, app, freshUrl, '')
      expect(answer.status, `${app}: ${answer.body}`).toBe(200)
    }
    const after = emulator.state.stats.token_requests
    // Both grant types went upstream again after the restart: stored client registrations and
    // stored (rotated) refresh tokens were used, not a cache.
    expect((after.client_credentials ?? 0) - (upstreamBefore.client_credentials ?? 0)).toBeGreaterThan(0)
    expect((after.refresh_token ?? 0) - (upstreamBefore.refresh_token ?? 0)).toBeGreaterThan(0)
  })
})
