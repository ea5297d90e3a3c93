// ObtainToken without HTTP: the services as createServices builds them, on the memory store with an
// injected clock and a counting identity provider. Each check and error of the service, in its
// order; the admit retry; the local block; the Key cache by version; the usage-touch throttle.
import { randomBytes, randomUUID } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import pino from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import type { Env, ResolvedApp } from '../../src/config.js'
import type { IdentityProvider, TokenGrant } from '../../src/entra/types.js'
import { BrokerError } from '../../src/errors.js'
import { createMetrics } from '../../src/metrics.js'
import { createServices } from '../../src/services/create-services.js'
import {
  ADMIT_ATTEMPTS,
  type ObtainTokenBody,
  type ObtainTokenInput,
  TOUCH_EVERY_MS,
} from '../../src/services/obtain-token.js'
import { createMemoryStore } from '../../src/store/memory.js'
import type { Registration, Store } from '../../src/store/types.js'
import { testConfig } from '../support/config.js'
import { encryptContent } from '../support/xsoar-client.js'

const CONTOSO = '7c3b1e5a-4d2f-4b8e-9a61-2f0c8d4e6b13'
const FABRIKAM = 'a9e4f7c2-1b3d-4e5f-8a7b-6c5d4e3f2a10'
const START = Date.parse('2026-03-01T10:00:00.000Z')
const silent = pino({ level: 'silent' }) as unknown as FastifyBaseLogger

class CountingIdp implements IdentityProvider {
  startDeviceAuthorization(): never {
    throw new Error('the device code grant is not used by these tests')
  }
  pollDeviceAuthorization(): never {
    throw new Error('the device code grant is not used by these tests')
  }
  calls = 0
  async signInUrl(): Promise<string> {
    throw new Error('not used')
  }
  async redeemCode(): Promise<never> {
    throw new Error('not used')
  }
  async adminConsentUrl(): Promise<string> {
    throw new Error('not used')
  }
  async clientCredentials(_app: ResolvedApp, _tenantId: string, scope: string): Promise<TokenGrant> {
    const n = ++this.calls
    return { accessToken: `at-${n}`, expiresIn: 3600, scope }
  }
  async refresh(_app: ResolvedApp, _tenantId: string, _rt: string, scope: string): Promise<TokenGrant> {
    const n = ++this.calls
    return { accessToken: `at-${n}`, expiresIn: 3600, scope, refreshToken: `rt-${n}` }
  }
}

const stores: Store[] = []
afterEach(async () => {
  for (const store of stores.splice(0)) await store.close()
})

/** Calls into the store from outside it, by `part.method` (the store's own inner calls not counted). */
function recordStoreCalls(store: Store): string[] {
  const calls: string[] = []
  let depth = 0
  const parts = store as unknown as Record<string, Record<string, (...args: unknown[]) => unknown>>
  for (const part of ['registrations', 'tokens', 'rateLimiter', 'locks', 'ephemeral']) {
    const target = parts[part]!
    for (const name of Object.getOwnPropertyNames(Object.getPrototypeOf(target))) {
      const original = target[name]
      if (name === 'constructor' || typeof original !== 'function') continue
      target[name] = (...args: unknown[]) => {
        if (depth === 0) calls.push(`${part}.${name}`)
        depth++
        try {
          return original.apply(target, args)
        } finally {
          depth--
        }
      }
    }
  }
  return calls
}

function setup(env: Env = {}) {
  const config = testConfig({ authorityUrl: 'http://127.0.0.1:9', env })
  const time = { now: START }
  const clock = () => time.now
  const store = createMemoryStore({ keyRing: config.keyRing, clock })
  stores.push(store)
  const idp = new CountingIdp()
  const services = createServices({ config, store, idp, metrics: createMetrics(), clock, log: silent })
  const service = services.obtainToken

  async function register(
    input: { app?: string; cloud?: Registration['cloud']; status?: Registration['status'] } = {},
  ) {
    const at = new Date(time.now).toISOString()
    const key = randomBytes(32).toString('base64')
    const result = await store.registrations.create(
      {
        id: randomUUID(),
        app: input.app ?? 'ms-graph-mail',
        cloud: input.cloud ?? 'global',
        tenantId: CONTOSO,
        kind: 'admin',
        status: input.status ?? 'active',
        createdAt: at,
        updatedAt: at,
        consentedAt: at,
      },
      { key },
    )
    if (!result.created) throw new Error('not created')
    return { registration: result.registration, key }
  }

  /** A freshly encrypted request (content: the Token) for a registration, at the current time. */
  function request(
    reg: { registration: Registration; key: string },
    overrides: Partial<ObtainTokenBody> & { content?: string; at?: number; ip?: string } = {},
  ): ObtainTokenInput {
    const { content, at, ip, ...body } = overrides
    return {
      body: {
        app_name: reg.registration.app,
        registration_id: reg.registration.id,
        encrypted_token: encryptContent(
          content ?? reg.registration.tenantId,
          reg.key,
          Math.floor((at ?? time.now) / 1000),
        ),
        ...body,
      },
      clientIp: ip ?? '192.0.2.10',
      clientName: 'xsoar',
      clientVersion: '8.9',
    }
  }

  const obtain = (input: ObtainTokenInput) => service.obtain(input, time.now + 5_000)
  return { config, store, idp, time, services, register, request, obtain }
}

async function refusal(promise: Promise<unknown>): Promise<BrokerError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(BrokerError)
  return error as BrokerError
}

describe('ObtainToken: success', () => {
  it('answers the token once fetched, then a cache hit with one store call (admit)', async () => {
    const t = setup()
    const reg = await t.register()
    const first = await t.obtain(t.request(reg))
    expect(first).toEqual({
      access_token: 'at-1',
      token_type: 'Bearer',
      expires_in: 3600,
      scope: 'https://graph.microsoft.com/.default',
      refresh_token: CONTOSO,
    })
    const calls = recordStoreCalls(t.store)
    t.time.now += 10_000
    const second = await t.obtain(t.request(reg))
    expect(second).toEqual({ ...first, expires_in: 3590 })
    expect(calls).toEqual(['registrations.admit'])
    expect(t.idp.calls).toBe(1)
  })

  it('reads a registration not seen before in parallel with the address hit, then its Key and the token cache', async () => {
    const t = setup()
    const reg = await t.register()
    const calls = recordStoreCalls(t.store)
    await t.obtain(t.request(reg))
    expect(calls.slice(0, 4).sort()).toEqual([
      'rateLimiter.hit',
      'registrations.admit',
      'registrations.get',
      'registrations.getMeta',
    ])
    expect(calls).toContain('tokens.get')
  })
})

describe('ObtainToken: checks and errors, in order', () => {
  it('unknown_app names the hosted apps and asks nothing of the store', async () => {
    const t = setup()
    const reg = await t.register()
    const calls = recordStoreCalls(t.store)
    const error = await refusal(t.obtain(t.request(reg, { app_name: 'ms-unknown\u0007' })))
    expect(error.code).toBe('unknown_app')
    expect(error.message).toBe(
      `app_name "ms-unknown" is not hosted by this broker; hosted: ${t.config.apps.map((a) => a.slug).join(', ')}`,
    )
    expect(calls).toEqual([])
  })

  it('unknown_registration for a missing id and for another app’s id without its Key, alike', async () => {
    const t = setup()
    const reg = await t.register({ app: 'ms-graph-user' })
    const missing = await refusal(
      t.obtain(t.request(reg, { app_name: 'ms-graph-mail', registration_id: randomUUID() })),
    )
    // someone probing IDs: the ciphertext is not under that registration's Key
    const probe = { ...reg, key: randomBytes(32).toString('base64') }
    const otherApp = await refusal(t.obtain(t.request(probe, { app_name: 'ms-graph-mail' })))
    const expected = `no ms-graph-mail registration with this ID; check the ID field (<registration_id>@${t.config.publicUrl}/obtain-token)`
    expect(missing).toMatchObject({ code: 'unknown_registration', message: expected })
    expect(otherApp).toMatchObject({ code: 'unknown_registration', message: expected })
    expect(otherApp.details).toBeUndefined()
    // The whole ID field sent as registration_id: told to send only the part before "@".
    const whole = await refusal(
      t.obtain(
        t.request(reg, {
          app_name: 'ms-graph-mail',
          registration_id: `${randomUUID()}@${t.config.publicUrl}/obtain-token`,
        }),
      ),
    )
    expect(whole).toMatchObject({
      code: 'unknown_registration',
      message: `no ms-graph-mail registration with this ID: registration_id holds the whole ID field; send only the part before "@" (the ID field is <registration_id>@${t.config.publicUrl}/obtain-token)`,
    })
  })

  it('names the app an ID belongs to when the caller holds its Key but picked another app', async () => {
    const t = setup()
    const reg = await t.register({ app: 'ms-graph-user' })
    for (let i = 0; i < 2; i++) {
      // the second time with the Key already imported by the first
      const wrong = await refusal(t.obtain(t.request(reg, { app_name: 'ms-graph-mail' })))
      expect(wrong.code).toBe('unknown_registration')
      expect(wrong.statusCode).toBe(401)
      expect(wrong.message).toBe(
        'this ID belongs to a ms-graph-user registration, not ms-graph-mail: use these values with the ms-graph-user integration (app_name "ms-graph-user")',
      )
      expect(wrong.details).toEqual({ registered_app: 'ms-graph-user' })
    }
    expect(t.idp.calls).toBe(0)
    // the same values with the right app name are served
    const right = await t.obtain(t.request(reg))
    expect(right.access_token).toBe('at-1')
  })

  it('a malformed encrypted_token is invalid_request; one under another Key is invalid_key', async () => {
    const t = setup()
    const reg = await t.register()
    const malformed = await refusal(t.obtain(t.request(reg, { encrypted_token: 'not base64!' })))
    expect(malformed.code).toBe('invalid_request')
    const wrongKey = await refusal(t.obtain(t.request({ ...reg, key: randomBytes(32).toString('base64') })))
    expect(wrongKey.code).toBe('invalid_key')
    expect(wrongKey.statusCode).toBe(401)
  })

  it('stale_token says how far behind or ahead the timestamp is', async () => {
    const t = setup({ OBTAIN_TOKEN_MAX_SKEW_SECONDS: '60' })
    const reg = await t.register()
    const behind = await refusal(t.obtain(t.request(reg, { at: START - 61_000 })))
    expect(behind.code).toBe('stale_token')
    expect(behind.message).toMatch(
      /^the request's timestamp is 61 s behind the broker's clock \(allowed ±60 s\)/,
    )
    const ahead = await refusal(t.obtain(t.request(reg, { at: START + 90_000 })))
    expect(ahead.message).toMatch(/^the request's timestamp is 90 s ahead of the broker's clock/)
    // inside the window it passes
    expect((await t.obtain(t.request(reg, { at: START - 60_000 }))).access_token).toBe('at-1')
  })

  it('token_mismatch when the content is not the Token; checked before the status', async () => {
    const t = setup()
    const reg = await t.register({ status: 'revoked' })
    const error = await refusal(t.obtain(t.request(reg, { content: FABRIKAM })))
    expect(error.code).toBe('token_mismatch')
  })

  it('a revoked registration is 401 revoked; one waiting for consent is consent_required', async () => {
    const t = setup()
    const revoked = await t.register({ status: 'revoked' })
    expect((await refusal(t.obtain(t.request(revoked)))).code).toBe('revoked')
    const waiting = await t.register({ status: 'needs_consent' })
    const error = await refusal(t.obtain(t.request(waiting)))
    expect(error.code).toBe('consent_required')
    expect(error.details).toEqual({ consent_url: `${t.config.publicUrl}/ms-graph-mail` })
    expect(t.idp.calls).toBe(0)
  })

  it('a registration in a cloud the broker no longer offers is broker_misconfigured', async () => {
    const t = setup()
    const reg = await t.register({ app: 'ms-graph-user', cloud: 'usgov' })
    const error = await refusal(t.obtain(t.request(reg)))
    expect(error).toMatchObject({
      code: 'broker_misconfigured',
      message: 'the broker no longer offers ms-graph-user in the usgov cloud; contact the broker operator',
    })
  })

  it('a scope the app does not allow is invalid_scope, before admit (no replay claim)', async () => {
    const t = setup()
    const reg = await t.register()
    const input = t.request(reg, { scope: 'https://graph.microsoft.com/Mail.Read' })
    const calls = recordStoreCalls(t.store)
    expect((await refusal(t.obtain(input))).code).toBe('invalid_scope')
    expect(calls).not.toContain('registrations.admit')
    // the same ciphertext with the default scope is not a replay
    expect((await t.obtain({ ...input, body: { ...input.body, scope: null } })).token_type).toBe('Bearer')
  })

  it('replayed_token for a ciphertext admitted before', async () => {
    const t = setup()
    const reg = await t.register()
    const input = t.request(reg)
    await t.obtain(input)
    const error = await refusal(t.obtain(input))
    expect(error).toMatchObject({
      code: 'replayed_token',
      message: 'this encrypted_token was already used; every request must be freshly encrypted',
    })
  })
})

describe('ObtainToken: admit', () => {
  it('re-reads a registration changed between the read and admit, and redoes every check', async () => {
    const t = setup()
    const reg = await t.register()
    const admit = t.store.registrations.admit.bind(t.store.registrations)
    let admits = 0
    t.store.registrations.admit = async (id, request) => {
      admits++
      // the first admit finds another version: a concurrent write just bumped it
      if (admits === 1) await t.store.registrations.update(id, request.version, { statusDetail: null })
      return admit(id, request)
    }
    const calls = recordStoreCalls(t.store)
    expect((await t.obtain(t.request(reg))).access_token).toBe('at-1')
    expect(admits).toBe(2)
    expect(calls.filter((c) => c === 'registrations.getMeta')).toHaveLength(2)
  })

  it('a registration revoked between the read and admit is refused as revoked', async () => {
    const t = setup()
    const reg = await t.register()
    await t.obtain(t.request(reg))
    await t.store.registrations.update(reg.registration.id, 1, { status: 'revoked' })
    // the instance still holds version 1 as admitted: admit refuses it, the re-read says revoked
    expect((await refusal(t.obtain(t.request(reg)))).code).toBe('revoked')
  })

  it(`gives up with 503 store_unavailable after ${ADMIT_ATTEMPTS} attempts of a registration that keeps changing`, async () => {
    const t = setup()
    const reg = await t.register()
    let admits = 0
    t.store.registrations.admit = async () => {
      admits++
      return { current: false }
    }
    const error = await refusal(t.obtain(t.request(reg)))
    expect(error).toMatchObject({
      code: 'store_unavailable',
      message: 'this registration is being changed; retry shortly',
      retryAfter: 1,
      statusCode: 503,
    })
    expect(admits).toBe(ADMIT_ATTEMPTS)
  })
})

describe('ObtainToken: rate limits and the local block', () => {
  it('a registration over its limit stays refused on this instance without a store call until its window ends', async () => {
    const t = setup({ RATE_LIMIT_PER_REGISTRATION: '2', RATE_LIMIT_WINDOW_SECONDS: '60' })
    const reg = await t.register()
    await t.obtain(t.request(reg))
    await t.obtain(t.request(reg))
    const limited = await refusal(t.obtain(t.request(reg)))
    expect(limited).toMatchObject({
      code: 'rate_limited',
      message: 'too many token requests for this registration; slow down',
      statusCode: 429,
    })
    expect(limited.retryAfter).toBeGreaterThanOrEqual(1)
    expect(limited.retryAfter).toBeLessThanOrEqual(60)
    const calls = recordStoreCalls(t.store)
    t.time.now += 1_000
    const blocked = await refusal(t.obtain(t.request(reg)))
    expect(blocked.code).toBe('rate_limited')
    expect(calls).toEqual([])
    t.time.now += 60_000
    expect((await t.obtain(t.request(reg))).token_type).toBe('Bearer')
    // usage was last written a minute ago: written again
    expect(calls).toEqual(['registrations.admit', 'registrations.touch'])
  })

  it('an address over its limit is refused from the local block; another address is not', async () => {
    const t = setup({ RATE_LIMIT_PER_IP: '2', RATE_LIMIT_WINDOW_SECONDS: '60' })
    const reg = await t.register()
    await t.obtain(t.request(reg))
    await t.obtain(t.request(reg))
    const limited = await refusal(t.obtain(t.request(reg)))
    expect(limited.message).toBe('too many token requests from this address; slow down')
    const calls = recordStoreCalls(t.store)
    expect((await refusal(t.obtain(t.request(reg)))).code).toBe('rate_limited')
    expect(calls).toEqual([])
    expect((await t.obtain(t.request(reg, { ip: '192.0.2.11' }))).token_type).toBe('Bearer')
  })

  it('a request refused before admit still counts against its address: past the limit, 429 wins', async () => {
    const t = setup({ RATE_LIMIT_PER_IP: '2', RATE_LIMIT_WINDOW_SECONDS: '60' })
    const reg = await t.register()
    await t.obtain(t.request(reg)) // read: hit 1
    const wrong = { ...reg, key: randomBytes(32).toString('base64') }
    expect((await refusal(t.obtain(t.request(wrong)))).code).toBe('invalid_key') // hit 2
    const limited = await refusal(t.obtain(t.request(wrong))) // hit 3
    expect(limited).toMatchObject({
      code: 'rate_limited',
      message: 'too many token requests from this address; slow down',
    })
  })
})

describe('ObtainToken: per-instance caches', () => {
  it('imports the Key once per version: a versioned change reads it again, a hit does not', async () => {
    const t = setup()
    const reg = await t.register()
    const calls = recordStoreCalls(t.store)
    await t.obtain(t.request(reg))
    await t.obtain(t.request(reg))
    expect(calls.filter((c) => c === 'registrations.get')).toHaveLength(1)
    await t.store.registrations.update(reg.registration.id, 1, { statusDetail: null })
    // admit refuses version 1; the re-read finds version 2, whose Key is not cached yet
    await t.obtain(t.request(reg))
    expect(calls.filter((c) => c === 'registrations.get')).toHaveLength(2)
    await t.obtain(t.request(reg))
    expect(calls.filter((c) => c === 'registrations.get')).toHaveLength(2)
  })

  it('writes usage at most every 30 s per registration, and at once when the client headers change', async () => {
    const t = setup()
    const reg = await t.register()
    const usage = async () => {
      const meta = await t.store.registrations.getMeta(reg.registration.id)
      return { lastIssuedAt: meta?.lastIssuedAt, lastClient: meta?.lastClient }
    }
    await t.obtain(t.request(reg))
    expect(await usage()).toEqual({ lastIssuedAt: new Date(START).toISOString(), lastClient: 'xsoar/8.9' })
    t.time.now = START + TOUCH_EVERY_MS - 1
    await t.obtain(t.request(reg))
    expect((await usage()).lastIssuedAt).toBe(new Date(START).toISOString())
    const upgraded = { ...t.request(reg), clientVersion: '8.10' }
    await t.obtain(upgraded)
    expect(await usage()).toEqual({
      lastIssuedAt: new Date(START + TOUCH_EVERY_MS - 1).toISOString(),
      lastClient: 'xsoar/8.10',
    })
    t.time.now = START + 2 * TOUCH_EVERY_MS
    await t.obtain({ ...t.request(reg), clientVersion: '8.10' })
    expect((await usage()).lastIssuedAt).toBe(new Date(START + 2 * TOUCH_EVERY_MS).toISOString())
  })
})
