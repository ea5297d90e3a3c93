// One upstream request per cache miss across instances: three brokers (three apps, each with its
// own identity provider) on one Redis and one emulator, 200 simultaneous requests over real HTTP.
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest'
import { type RunningEmulator, startEmulator } from '../../emulator/server.js'
import { type ConsentValues, consentViaEmulator, type RunningBroker, startBroker } from '../support/broker.js'
import { assertNoSecretLogged, memoryLogger } from '../support/log-capture.js'
import { type TokenAnswer, XsoarClient } from '../support/xsoar-client.js'

const CONTOSO = '7c3b1e5a-4d2f-4b8e-9a61-2f0c8d4e6b13'
const REQUESTS = 200

let emulator: RunningEmulator
let brokers: Array<{ broker: RunningBroker; url: string }> = []
const logs: string[] = []
const secrets = new Set<string>()

/** Every broker of this file logs here (the process logger, at debug). */
function captureLogger() {
  return memoryLogger('debug', logs).logger
}

async function emulatorPost(path: string, body: unknown = {}): Promise<void> {
  const response = await fetch(`${emulator.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  expect(response.status).toBe(200)
}

async function stats(): Promise<{ client_credentials: number; refresh_token: number }> {
  const response = await fetch(`${emulator.url}/_emulator/stats`)
  return (
    (await response.json()) as { token_requests: { client_credentials: number; refresh_token: number } }
  ).token_requests
}

/** REQUESTS simultaneous requests, spread round-robin over the three instances. */
async function stampede(values: ConsentValues, appName: string): Promise<TokenAnswer[]> {
  const clients = brokers.map(
    ({ url }) =>
      new XsoarClient({ id: values.id, token: values.token, key: values.key, appName, urlOverride: url }),
  )
  // Encrypt every body first so the requests leave together.
  const bodies = Array.from({ length: REQUESTS }, (_, i) => clients[i % clients.length]!.body())
  for (const body of bodies) secrets.add(JSON.parse(body).encrypted_token)
  const answers = await Promise.all(bodies.map((body, i) => clients[i % clients.length]!.post(body)))
  for (const answer of answers) if (answer.ok) secrets.add(answer.accessToken)
  return answers
}

function sumMetric(text: string, name: string, labels: Record<string, string>): number {
  let sum = 0
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)))
      sum += Number(line.split(' ').pop())
  }
  return sum
}

beforeAll(async () => {
  emulator = await startEmulator({ port: 0 })
  // Same Redis, same key prefix and master keys: three instances of one deployment.
  const keyPrefix = `test:${randomBytes(6).toString('hex')}:`
  const env = { MASTER_KEYS: `k1:${randomBytes(32).toString('base64')}` }
  for (let i = 0; i < 3; i++) {
    const broker = await startBroker({
      authorityUrl: emulator.url,
      redisUrl: inject('redisUrl'),
      keyPrefix,
      env,
      logger: captureLogger(),
    })
    const address = await broker.app.listen({ port: 0, host: '127.0.0.1' })
    brokers.push({ broker, url: `${address}/obtain-token` })
  }
})

beforeEach(async () => {
  await emulatorPost('/_emulator/reset')
})

afterAll(async () => {
  for (const { broker } of brokers) await broker.close()
  brokers = []
  await emulator?.close()
  expect(logs.length).toBeGreaterThan(0)
  assertNoSecretLogged(logs, secrets)
})

describe('200 simultaneous requests over three instances, cold cache', () => {
  it('admin consent: exactly one client-credentials request, one token for all', async () => {
    const first = brokers[0]!.broker
    const values = await consentViaEmulator(first.app, {
      slug: 'ms-graph-mail',
      username: 'admin@contoso.example',
    })
    secrets.add(values.key)
    // Cold cache, and the upstream slow enough that every request arrives while the leader waits.
    await first.store.tokens.deleteGroup(`tenant:ms-graph-mail:global:${CONTOSO}`)
    await emulatorPost('/_emulator/faults', { delayMs: 400, grantType: 'client_credentials', count: 1 })
    const before = await stats()
    const answers = await stampede(values, 'ms-graph-mail')
    const after = await stats()
    expect(answers.filter((a) => a.status !== 200).map((a) => a.body)).toEqual([])
    expect(new Set(answers.map((a) => a.accessToken)).size).toBe(1)
    expect(answers.every((a) => typeof a.expiresIn === 'number' && a.refreshToken === values.token)).toBe(
      true,
    )
    expect(after.client_credentials - before.client_credentials).toBe(1)
    // Every instance answered some of them; the non-leaders took the leader's result.
    const metrics = await Promise.all(brokers.map(({ broker }) => broker.app.metrics.registry.metrics()))
    const shared = metrics.map((m) => sumMetric(m, 'consent_broker_token_cache_total', { result: 'shared' }))
    const misses = metrics.map((m) => sumMetric(m, 'consent_broker_token_cache_total', { result: 'miss' }))
    expect(misses.reduce((a, b) => a + b, 0)).toBe(1)
    expect(shared.filter((n) => n > 0).length).toBe(3)
    const waited = metrics.map((m) => sumMetric(m, 'consent_broker_lock_waits_total', { result: 'waited' }))
    expect(waited.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(1)
  })

  it('delegated: exactly one refresh-token grant, one rotation, the newest refresh token stored', async () => {
    const first = brokers[0]!.broker
    const values = await consentViaEmulator(first.app, {
      slug: 'ms-graph-mail-listener',
      username: 'user@contoso.example',
    })
    secrets.add(values.key)
    const initial = await first.store.registrations.get(values.registrationId)
    secrets.add(initial!.secrets.refreshToken!)
    await first.store.tokens.deleteGroup(`reg:${values.registrationId}`)
    await emulatorPost('/_emulator/faults', { delayMs: 400, grantType: 'refresh_token', count: 1 })
    const before = await stats()
    const answers = await stampede(values, 'ms-graph-mail-listener')
    const after = await stats()
    expect(answers.filter((a) => a.status !== 200).map((a) => a.body)).toEqual([])
    expect(new Set(answers.map((a) => a.accessToken)).size).toBe(1)
    expect(after.refresh_token - before.refresh_token).toBe(1)

    const stored = await brokers[2]!.broker.store.registrations.get(values.registrationId)
    const newest = [...emulator.state.refreshTokens.entries()]
      .filter(([, r]) => r.oid === '3f6c2a1e-8b4d-4c7a-9e15-0a1b2c3d4e02')
      .pop()
    // The emulator's refresh tokens are `1.` + 64 random bytes (base64url).
    expect(newest?.[0]).toMatch(/^1\.[\w-]{86}$/)
    expect(stored?.secrets.refreshToken).toBe(newest?.[0])
    expect(stored?.secrets.refreshToken).not.toBe(initial?.secrets.refreshToken)
    expect(stored?.registration.version).toBe(initial!.registration.version + 1)
    secrets.add(stored!.secrets.refreshToken!)
  })
})
