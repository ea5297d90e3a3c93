// The operator surfaces tried the way an attacker would, on two instances sharing one Redis: token
// guessing against /admin/api and /metrics is throttled per address across instances (a blocked
// address learns nothing, even from the right token), and every read of a registration's details
// is audited as every change is.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { CONTOSO_USER } from '../../emulator/demo-data.js'
import type { AuditRecord } from '../../src/store/types.js'
import { bearer, consoleSignIn, operatorToken } from '../support/admin-helpers.js'
import { browse, consentViaEmulator, type RunningBroker, startBroker } from '../support/broker.js'
import { useEmulator } from '../support/emulator.js'

const emulator = useEmulator()
const ALICE = operatorToken('alice')
let first: RunningBroker
let second: RunningBroker

beforeAll(async () => {
  const env = { OPERATOR_TOKENS: `alice:${ALICE}` }
  first = await startBroker({ authorityUrl: emulator.url, redisUrl: inject('redisUrl'), env })
  second = await startBroker({
    authorityUrl: emulator.url,
    redisUrl: inject('redisUrl'),
    keyPrefix: first.keyPrefix,
    env,
  })
})

afterAll(async () => {
  await second?.close()
  await first?.close()
})

const from = (remoteAddress: string, token: string, url = '/admin/api/tenants') => ({
  method: 'GET' as const,
  url,
  remoteAddress,
  headers: bearer(token),
})

describe('wrong operator tokens', () => {
  it('are throttled per address on every instance; a blocked address is refused even the right token', async () => {
    const guesser = '198.51.100.7'
    const statuses: number[] = []
    for (let i = 0; i < 10; i++) {
      const broker = i % 2 === 0 ? first : second
      statuses.push((await broker.app.inject(from(guesser, operatorToken('guess')))).statusCode)
    }
    expect(statuses).toEqual(Array(10).fill(401))
    const blocked = await second.app.inject(from(guesser, operatorToken('guess')))
    expect(blocked.statusCode).toBe(429)
    expect(blocked.json().error.code).toBe('rate_limited')
    expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0)
    expect(Number(blocked.headers['retry-after'])).toBeLessThanOrEqual(60)
    // The right token from the blocked address: refused before it is looked at, on both instances,
    // on every path under /admin/api and on /metrics.
    for (const broker of [first, second]) {
      for (const url of ['/admin/api/tenants', '/admin/api/no-such-path', '/metrics']) {
        const right = await broker.app.inject(from(guesser, ALICE, url))
        expect(right.statusCode, url).toBe(429)
      }
    }
    // Other addresses are not affected.
    expect((await first.app.inject(from('198.51.100.8', ALICE))).statusCode).toBe(200)
    expect((await second.app.inject(from('198.51.100.8', ALICE, '/metrics'))).statusCode).toBe(200)
  })

  it('/metrics guesses count against the same budget', async () => {
    const guesser = '198.51.100.9'
    for (let i = 0; i < 10; i++) {
      const response = await first.app.inject(from(guesser, operatorToken('guess'), '/metrics'))
      expect(response.statusCode).toBe(401)
    }
    expect((await second.app.inject(from(guesser, operatorToken('guess')))).statusCode).toBe(429)
  })
})

describe('operator reads of a registration', () => {
  it('are audited with the operator, the registration and where it was read (API and console)', async () => {
    const values = await consentViaEmulator(first.app, {
      slug: 'ms-graph-mail-listener',
      username: CONTOSO_USER.username,
    })
    const api = await second.app.inject({
      url: `/admin/api/registrations/${values.registrationId}`,
      headers: bearer(ALICE),
    })
    expect(api.statusCode).toBe(200)
    const { jar } = await consoleSignIn(first.app, ALICE)
    const page = await browse(first.app, jar, { url: `/admin/registrations/${values.registrationId}` })
    expect(page.statusCode).toBe(200)

    const { items } = await first.store.audit.read({ limit: 500 })
    const reads = items.filter((e: AuditRecord) => e.type === 'registration.read')
    expect(reads).toEqual([
      expect.objectContaining({
        actor: 'operator:alice',
        registrationId: values.registrationId,
        tenantId: values.token,
        app: 'ms-graph-mail-listener',
        detail: { via: 'api' },
      }),
      expect.objectContaining({
        actor: 'operator:alice',
        registrationId: values.registrationId,
        detail: { via: 'console' },
      }),
    ])
    // A read of a registration that does not exist is not found, and records nothing.
    const missing = await first.app.inject({
      url: '/admin/api/registrations/00000000-0000-4000-8000-000000000000',
      headers: bearer(ALICE),
    })
    expect(missing.statusCode).toBe(404)
    const after = (await first.store.audit.read({ limit: 500 })).items
    expect(after.filter((e) => e.type === 'registration.read')).toHaveLength(2)
  })
})
