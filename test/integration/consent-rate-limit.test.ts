// Consent traffic is bounded per client IP across instances, and callbacks that belong to no flow
// stay out of the audit trail.
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { startEmulator } from '../../emulator/server.js'
import { type RunningBroker, startBroker, startFormCredentials } from '../support/broker.js'

let emulator: Awaited<ReturnType<typeof startEmulator>>
const brokers: RunningBroker[] = []

beforeAll(async () => {
  emulator = await startEmulator({ port: 0 })
})

afterAll(async () => {
  for (const broker of brokers) await broker.close()
  await emulator?.close()
})

async function twoInstances(own: Record<string, string>): Promise<[RunningBroker, RunningBroker]> {
  // Instances of one deployment share COOKIE_SECRET: a form opened on one is posted to the other.
  const env = { COOKIE_SECRET: randomBytes(32).toString('hex'), ...own }
  const first = await startBroker({ authorityUrl: emulator.url, redisUrl: inject('redisUrl'), env })
  const second = await startBroker({
    authorityUrl: emulator.url,
    redisUrl: inject('redisUrl'),
    keyPrefix: first.keyPrefix,
    env,
  })
  brokers.push(first, second)
  return [first, second]
}

describe('consent rate limit', () => {
  it('refuses the next start from an address over its limit, on every instance, with Retry-After', async () => {
    const [a, b] = await twoInstances({
      CONSENT_RATE_LIMIT_PER_IP: '3',
      CONSENT_RATE_LIMIT_WINDOW_SECONDS: '600',
    })
    const { cookie, csrf } = await startFormCredentials(a.app)
    const start = (broker: RunningBroker) =>
      broker.app.inject({
        method: 'POST',
        url: '/ms-graph-mail/start',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
        payload: `cloud=global&csrf=${csrf}`,
      })
    expect((await start(a)).statusCode).toBe(303)
    expect((await start(b)).statusCode).toBe(303)
    expect((await start(a)).statusCode).toBe(303)
    const refused = await start(b)
    expect(refused.statusCode).toBe(429)
    expect(refused.headers['content-type']).toMatch(/text\/html/)
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(500)
    expect(refused.body).toContain('too many authorization attempts')
    // The callback counts against the same budget.
    expect((await a.app.inject({ method: 'GET', url: '/callback?code=x&state=y' })).statusCode).toBe(429)
    // Pages that cost nothing stay available.
    expect((await a.app.inject({ method: 'GET', url: '/ms-graph-mail' })).statusCode).toBe(200)
  })

  it('keeps callbacks without any flow cookie out of the audit trail', async () => {
    const [a] = await twoInstances({})
    for (let i = 0; i < 5; i++) {
      const response = await a.app.inject({ method: 'GET', url: `/callback?code=c${i}&state=s${i}` })
      expect(response.statusCode).toBe(400)
    }
    const { items } = await a.store.audit.read({ limit: 100 })
    expect(items.filter((event) => event.type === 'consent.failed')).toEqual([])
    const failed = await a.app.metrics.consents.get()
    const sessionMissing = failed.values.find(
      (value) => value.labels.stage === 'failed' && value.labels.reason === 'session_missing',
    )
    expect(sessionMissing?.value).toBe(5)
  })
})
