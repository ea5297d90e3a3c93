// GET /metrics on the public listener through a Redis outage (its own redis-server, stopped): a
// valid operator token still gets the scrape, which reports consent_broker_ready 0 (what the
// critical outage alert fires on), although the refused-token throttle lives in Redis; a wrong
// token is answered 503 store_unavailable (the shared count can't be kept) and counted by the
// instance itself, which answers 429 past the usual budget; the operator API, which needs the store
// for everything it does, is not relaxed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bearer, operatorToken } from '../support/admin-helpers.js'
import { type RunningBroker, startBroker } from '../support/broker.js'
import { type RedisServerHandle, startRedisServer } from '../support/redis-server.js'

const ALICE = operatorToken('alice')
const NO_AUTHORITY = 'http://127.0.0.1:9'

describe('GET /metrics while Redis is down', () => {
  let redis: RedisServerHandle
  let broker: RunningBroker

  beforeAll(async () => {
    redis = await startRedisServer()
    broker = await startBroker({
      authorityUrl: NO_AUTHORITY,
      redisUrl: redis.url,
      env: { OPERATOR_TOKENS: `alice:${ALICE}` },
    })
  }, 30_000)

  afterAll(async () => {
    await broker?.close()
    await redis?.destroy()
  })

  const scrape = (headers: Record<string, string>) =>
    broker.app.inject({ method: 'GET', url: '/metrics', headers })

  it('still answers a valid token, reporting not ready; a wrong token is 503, the operator API too', async () => {
    const up = await scrape(bearer(ALICE))
    expect(up.statusCode, up.body).toBe(200)
    expect(up.body).toMatch(/^consent_broker_ready 1$/m)

    await redis.stop()

    const down = await scrape(bearer(ALICE))
    expect(down.statusCode, down.body).toBe(200)
    expect(down.headers['content-type']).toContain('text/plain')
    expect(down.body).toMatch(/^consent_broker_ready 0$/m)

    const wrong = await scrape(bearer(operatorToken('mallory')))
    expect(wrong.statusCode, wrong.body).toBe(503)
    expect(wrong.json().error.code).toBe('store_unavailable')
    expect(Number(wrong.headers['retry-after'])).toBeGreaterThan(0)

    // Guessing is throttled meanwhile by this instance: past ten wrong tokens from an address, it is
    // answered 429 before its token is looked at, a valid one included; other addresses carry on.
    const guesser = '10.9.9.9'
    const guesses = await Promise.all(
      Array.from({ length: 10 }, () =>
        broker.app.inject({
          method: 'GET',
          url: '/metrics',
          headers: bearer(operatorToken('mallory')),
          remoteAddress: guesser,
        }),
      ),
    )
    expect(guesses.map((g) => g.statusCode)).toEqual(Array(10).fill(503))
    const blocked = await broker.app.inject({
      method: 'GET',
      url: '/metrics',
      headers: bearer(ALICE),
      remoteAddress: guesser,
    })
    expect(blocked.statusCode, blocked.body).toBe(429)
    expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0)
    const elsewhere = await broker.app.inject({
      method: 'GET',
      url: '/metrics',
      headers: bearer(ALICE),
      remoteAddress: '10.9.9.10',
    })
    expect(elsewhere.statusCode).toBe(200)

    const api = await broker.app.inject({ method: 'GET', url: '/admin/api/tenants', headers: bearer(ALICE) })
    expect(api.statusCode, api.body).toBe(503)
    expect(api.json().error.code).toBe('store_unavailable')

    // Counted as Redis errors, as every request that failed on the outage is.
    const after = await scrape(bearer(ALICE))
    expect(after.body).toMatch(/^consent_broker_redis_errors_total\{operation="command"\} [1-9]\d*$/m)
  }, 150_000)
})
