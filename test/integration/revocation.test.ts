// Revocation takes effect at once on every broker instance: two apps (two instances) on one Redis;
// a revocation through one is seen by the other's very next obtain-token, and by every request the
// other instance starts after the revocation answered, while it is serving a stream of requests.
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { CONTOSO_TENANT_ID } from '../../emulator/demo-data.js'
import { type RunningEmulator, startEmulator } from '../../emulator/server.js'
import { bearer, obtainToken, operatorToken } from '../support/admin-helpers.js'
import { type ConsentValues, consentViaEmulator, type RunningBroker, startBroker } from '../support/broker.js'
import { randomMasterKeys } from '../support/config.js'

const OPERATOR = operatorToken('ops')
let emulator: RunningEmulator
let first: RunningBroker
let second: RunningBroker

async function revokeThrough(broker: RunningBroker, url: string, body: Record<string, string>) {
  const response = await broker.app.inject({
    method: 'POST',
    url,
    headers: { ...bearer(OPERATOR), 'content-type': 'application/json' },
    payload: JSON.stringify(body),
  })
  expect(response.statusCode).toBe(200)
  return response.json() as Record<string, unknown>
}

beforeAll(async () => {
  emulator = await startEmulator({ port: 0 })
  const keyPrefix = `test:${randomBytes(6).toString('hex')}:`
  const env = {
    MASTER_KEYS: randomMasterKeys(),
    COOKIE_SECRET: randomBytes(32).toString('hex'),
    OPERATOR_TOKENS: `ops:${OPERATOR}`,
  }
  const options = { authorityUrl: emulator.url, redisUrl: inject('redisUrl'), keyPrefix, env }
  first = await startBroker(options)
  second = await startBroker(options)
})

afterAll(async () => {
  await first?.close()
  await second?.close()
  await emulator?.close()
})

describe('revocation across instances', () => {
  it('an admin-consent registration revoked on one instance is refused by the other’s very next request', async () => {
    const values = await consentViaEmulator(first.app, {
      slug: 'ms-graph-mail',
      username: 'admin@contoso.example',
    })
    // The second instance serves it, from a warm cache.
    for (let i = 0; i < 3; i++)
      expect((await obtainToken(second.app, values, 'ms-graph-mail')).status).toBe(200)

    const revoked = await revokeThrough(first, `/admin/api/registrations/${values.registrationId}/revoke`, {
      reason: 'compromised key',
    })
    const detail = (revoked.registration as { statusDetail: { at: string } }).statusDetail

    const next = await obtainToken(second.app, values, 'ms-graph-mail')
    expect(next.status).toBe(401)
    expect(next.body.error?.code).toBe('revoked')
    expect(next.body.error?.message).toContain(detail.at)
    expect(next.body.error?.message).toContain('compromised key')
    expect(next.body.error?.message).toContain(`${second.config.publicUrl}/ms-graph-mail`)
    expect(next.body.error?.consent_url).toBe(`${second.config.publicUrl}/ms-graph-mail`)
    // Single line, as the XSOAR client needs.
    expect(next.raw).not.toContain('\n')
  })

  it('a delegated registration revoked on one instance: refused on the other, refresh token gone', async () => {
    const values = await consentViaEmulator(second.app, {
      slug: 'ms-graph-mail-listener',
      username: 'user@contoso.example',
    })
    expect((await obtainToken(first.app, values, 'ms-graph-mail-listener')).status).toBe(200)
    expect((await obtainToken(second.app, values, 'ms-graph-mail-listener')).status).toBe(200)
    await revokeThrough(second, `/admin/api/registrations/${values.registrationId}/revoke`, {
      reason: 'left',
    })
    const next = await obtainToken(first.app, values, 'ms-graph-mail-listener')
    expect(next.status).toBe(401)
    expect(next.body.error?.code).toBe('revoked')
    const stored = await first.store.registrations.get(values.registrationId)
    expect(stored?.secrets.refreshToken).toBeUndefined()
  })

  it('while one instance serves a stream of requests, every request started after the revocation answered is refused', async () => {
    const values: ConsentValues = await consentViaEmulator(first.app, {
      slug: 'ms-graph-user',
      username: 'admin@contoso.example',
    })
    const results: Array<{ startedAt: number; status: number; code: string | undefined }> = []
    let stop = false
    const load = async () => {
      while (!stop) {
        const startedAt = performance.now()
        const answer = await obtainToken(second.app, values, 'ms-graph-user')
        results.push({ startedAt, status: answer.status, code: answer.body.error?.code })
      }
    }
    const workers = Array.from({ length: 4 }, load)
    await new Promise((resolve) => setTimeout(resolve, 150))
    await revokeThrough(first, `/admin/api/tenants/${CONTOSO_TENANT_ID}/revoke`, {
      reason: 'tenant offboarded',
      app: 'ms-graph-user',
    })
    const revokedAt = performance.now()
    await new Promise((resolve) => setTimeout(resolve, 150))
    stop = true
    await Promise.all(workers)

    const before = results.filter((r) => r.startedAt < revokedAt)
    const after = results.filter((r) => r.startedAt >= revokedAt)
    expect(before.some((r) => r.status === 200)).toBe(true)
    expect(after.length).toBeGreaterThan(5)
    for (const result of after) {
      expect(result.status).toBe(401)
      expect(result.code).toBe('revoked')
    }
    // No request failed for another reason.
    expect(results.every((r) => r.status === 200 || r.code === 'revoked')).toBe(true)
  })
})
