// Refresh-ahead, backoff, rate cap and lock takeover of the token issuer, without HTTP: the pure
// schedule with an injected random source, then issuers (one per "instance") on one memory store
// with an injected clock, so token lifetimes pass in an instant.
import { randomBytes, randomUUID } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import pino from 'pino'
import { describe, expect, it, vi } from 'vitest'
import type { ResolvedApp } from '../../src/config.js'
import { type IdentityProvider, type TokenGrant, UpstreamError } from '../../src/entra/types.js'
import { isBrokerError } from '../../src/errors.js'
import { createMetrics, type Metrics } from '../../src/metrics.js'
import { type IssueRequest, REFRESH_LOCK_LEASE_MS, refreshLockName } from '../../src/services/token-fetch.js'
import { tokenGroup } from '../../src/services/token-groups.js'
import { TokenIssuer } from '../../src/services/token-issuer.js'
import {
  answersWaiter,
  failureError,
  failureKey,
  parseFailure,
  readBackoff,
} from '../../src/services/token-markers.js'
import {
  BACKOFF_MAX_MS,
  backoffDelayMs,
  isRefreshAheadDue,
  nextAttemptAt,
  refreshAheadAt,
} from '../../src/services/token-schedule.js'
import { type AppScopes, ScopeResolver } from '../../src/services/token-scope.js'
import { upstreamCallerOf, upstreamRateKey } from '../../src/services/token-upstream-guard.js'
import { createMemoryStore } from '../../src/store/memory.js'
import type { Registration, Store } from '../../src/store/types.js'
import { testConfig } from '../support/config.js'

const TENANT = '7c3b1e5a-4d2f-4b8e-9a61-2f0c8d4e6b13'
const silent = pino({ level: 'silent' }) as unknown as FastifyBaseLogger
const LIFETIME_S = 120
/** What runs behind a caller can lag on a busy machine: vi.waitFor's default of 1 s is too short. */
const WAIT = { timeout: 5_000 }

describe('the backoff schedule', () => {
  it('doubles from 1 s per consecutive failure up to 60 s, with ±25 % jitter', () => {
    const middle = () => 0.5
    expect([1, 2, 3, 4, 5, 6, 7, 8, 30].map((n) => backoffDelayMs(n, middle))).toEqual([
      1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000,
    ])
    expect(backoffDelayMs(1, () => 0)).toBe(750)
    expect(backoffDelayMs(1, () => 0.999_999)).toBe(1_250)
    expect(backoffDelayMs(7, () => 0)).toBe(45_000)
    expect(BACKOFF_MAX_MS).toBe(60_000)
    // jitter spreads instances that fail together
    const spread = new Set(Array.from({ length: 50 }, (_, i) => backoffDelayMs(3, () => i / 50)))
    expect(spread.size).toBeGreaterThan(40)
    for (const delay of spread) expect(delay >= 3_000 && delay <= 5_000).toBe(true)
  })

  it('Retry-After wins when longer than the backoff, not when shorter', () => {
    const now = 1_000_000
    expect(nextAttemptAt(now, 1, 30, () => 0.5)).toBe(now + 30_000)
    expect(nextAttemptAt(now, 6, 2, () => 0.5)).toBe(now + 32_000)
    expect(nextAttemptAt(now, 2, undefined, () => 0.5)).toBe(now + 2_000)
  })
})

describe('the refresh-ahead decision', () => {
  const start = 5_000_000
  const lifetime = 3_600_000
  const margin = 300_000

  it('puts the point at the fraction of the lifetime, ±10 %, never past the last served moment', () => {
    expect(refreshAheadAt(start, lifetime, 0.5, margin, () => 0.5)).toBe(start + 1_800_000)
    expect(refreshAheadAt(start, lifetime, 0.5, margin, () => 0)).toBe(start + 1_620_000)
    expect(refreshAheadAt(start, lifetime, 0.5, margin, () => 0.999_999)).toBeCloseTo(start + 1_980_000, -1)
    // 0.95 of the life is past the margin: clamped to the last moment the token is served
    expect(refreshAheadAt(start, lifetime, 0.95, margin, () => 0.5)).toBe(start + lifetime - margin)
    // off, or no life to serve at all
    expect(refreshAheadAt(start, lifetime, 0, margin, () => 0.5)).toBeUndefined()
    expect(refreshAheadAt(start, 200_000, 0.5, margin, () => 0.5)).toBeUndefined()
  })

  it('is due from the point on, while the token is still served', () => {
    const token = { expiresAt: start + lifetime, refreshAt: start + 1_800_000 }
    expect(isRefreshAheadDue(token, start + 1_799_999, margin)).toBe(false)
    expect(isRefreshAheadDue(token, start + 1_800_000, margin)).toBe(true)
    expect(isRefreshAheadDue(token, start + lifetime - margin - 1, margin)).toBe(true)
    // inside the margin it is no longer served: a caller fetches, nothing is "ahead"
    expect(isRefreshAheadDue(token, start + lifetime - margin, margin)).toBe(false)
    expect(isRefreshAheadDue({ expiresAt: start + lifetime }, start + 3_000_000, margin)).toBe(false)
  })
})

/** An identity provider whose answers the test scripts: ok, or a failure per call. */
class ScriptedIdp implements IdentityProvider {
  startDeviceAuthorization(): never {
    throw new Error('the device code grant is not used by these tests')
  }
  pollDeviceAuthorization(): never {
    throw new Error('the device code grant is not used by these tests')
  }
  calls = 0
  /** The client id of each call, in call order. */
  readonly clientIds: string[] = []
  failWith: (() => UpstreamError) | undefined
  delayMs = 0
  async signInUrl(): Promise<string> {
    throw new Error('not used')
  }
  async redeemCode(): Promise<never> {
    throw new Error('not used')
  }
  async adminConsentUrl(): Promise<string> {
    throw new Error('not used')
  }
  async clientCredentials(app: ResolvedApp, _tid: string, scope: string): Promise<TokenGrant> {
    this.clientIds.push(app.clientId)
    return this.#answer(scope)
  }
  async refresh(app: ResolvedApp, _tid: string, _rt: string, scope: string): Promise<TokenGrant> {
    this.clientIds.push(app.clientId)
    const grant = await this.#answer(scope)
    return { ...grant, refreshToken: `rt-${this.calls}` }
  }
  async #answer(scope: string): Promise<TokenGrant> {
    const n = ++this.calls
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs))
    if (this.failWith !== undefined) throw this.failWith()
    return { accessToken: `at-${n}`, expiresIn: LIFETIME_S, scope }
  }
}

/** What a caller asks of the issuer here: the app's default scope, by a given deadline. */
function defaultScope(registration: Registration, app: AppScopes, deadlineAt: number): IssueRequest {
  return { registration, app, scope: app.defaultScope, deadlineAt }
}

/** A call's answer or error as a value, so a test can hold it before it settles. */
function outcomeOf<T>(call: Promise<T>): Promise<{ answer: T } | { error: unknown }> {
  return call.then(
    (answer) => ({ answer }),
    (error: unknown) => ({ error }),
  )
}

function metricValue(metrics: Metrics, name: string, labels: Record<string, string> = {}): Promise<number> {
  return metrics.registry.metrics().then((text) => {
    let sum = 0
    for (const line of text.split('\n')) {
      if (!line.startsWith(name)) continue
      if (
        line.slice(name.length, name.length + 1) !== '{' &&
        line.slice(name.length, name.length + 1) !== ' '
      )
        continue
      if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)))
        sum += Number(line.split(' ').pop())
    }
    return sum
  })
}

function setup(options: { instances?: number; env?: Record<string, string>; clock?: () => number } = {}) {
  const config = testConfig({
    authorityUrl: 'http://127.0.0.1:9',
    env: { TOKEN_REFRESH_MARGIN_SECONDS: '10', ...options.env },
  })
  const clock = options.clock ?? Date.now
  const store = createMemoryStore({ keyRing: config.keyRing, clock })
  const idp = new ScriptedIdp()
  const scopes = new ScopeResolver(config)
  const metrics = Array.from({ length: options.instances ?? 1 }, () => createMetrics())
  const issuers = metrics.map(
    (m) =>
      new TokenIssuer({ config, store, idp, metrics: m, logger: silent, clock, scopes, random: () => 0.5 }),
  )
  return { config, store, idp, scopes, issuers, metrics }
}

async function createRegistration(
  store: Store,
  app: string,
  kind: 'admin' | 'delegated',
  tenantId = TENANT,
  ownApp?: { clientId: string; clientSecret: string },
): Promise<Registration> {
  const now = new Date().toISOString()
  const result = await store.registrations.create(
    {
      id: randomUUID(),
      app,
      cloud: 'global',
      tenantId,
      kind,
      ...(kind === 'delegated' ? { userOid: randomUUID() } : {}),
      ...(ownApp === undefined ? {} : { ownClientId: ownApp.clientId }),
      status: 'active',
      createdAt: now,
      updatedAt: now,
      consentedAt: now,
    },
    {
      key: randomBytes(32).toString('base64'),
      ...(kind === 'delegated' ? { refreshToken: 'rt-0' } : {}),
      ...(ownApp === undefined ? {} : { clientSecret: ownApp.clientSecret }),
    },
  )
  if (!result.created) throw new Error('not created')
  return result.registration
}

/** A promise and its resolve (Promise.withResolvers is Node 22+). */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = () => {}
  const promise = new Promise<void>((r) => {
    resolve = r
  })
  return { promise, resolve }
}

/** A clock the test moves. */
function manualClock(start = Date.now()) {
  let now = start
  return { now: () => now, advance: (ms: number) => (now += ms) }
}

describe('refresh-ahead', () => {
  it('a token in use is refreshed once, in the background, past half its life; callers never wait', async () => {
    const time = manualClock()
    const { store, idp, scopes, issuers, metrics } = setup({ instances: 3, clock: time.now })
    const registration = await createRegistration(store, 'ms-graph-mail', 'admin')
    const app = scopes.forApp('ms-graph-mail', 'global')!
    const ask = (i: number) => issuers[i % 3]!.issue(defaultScope(registration, app, time.now() + 5000))
    expect((await ask(0)).accessToken).toBe('at-1')
    // Before half-life: hits only, on every instance.
    time.advance(59_000)
    for (let i = 0; i < 6; i++) expect((await ask(i)).source).toBe('hit')
    expect(idp.calls).toBe(1)
    // Past it: every caller still gets the cached token at once; one refresh runs behind them.
    time.advance(2_000)
    const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => ask(i)))
    expect(new Set(answers.map((a) => a.accessToken))).toEqual(new Set(['at-1']))
    expect(new Set(answers.map((a) => a.source))).toEqual(new Set(['hit']))
    await vi.waitFor(
      async () =>
        expect((await store.tokens.get(tokenGroup(registration), app.defaultScope))?.accessToken).toBe(
          'at-2',
        ),
      WAIT,
    )
    expect(idp.calls).toBe(2)
    // The other instances adopt the new token (they look again a second later) instead of
    // refreshing again.
    time.advance(1_001)
    await vi.waitFor(async () => {
      for (let i = 0; i < 3; i++) expect((await ask(i)).accessToken).toBe('at-2')
    }, WAIT)
    expect(idp.calls).toBe(2)
    const outcomes = await Promise.all(
      metrics.map((m) => metricValue(m, 'consent_broker_refresh_ahead_total', { outcome: 'refreshed' })),
    )
    expect(outcomes.reduce((a, b) => a + b, 0)).toBe(1)
  })

  it('a token nobody asks for after its refresh point is not refreshed', async () => {
    const time = manualClock()
    const { store, idp, scopes, issuers } = setup({ clock: time.now })
    const registration = await createRegistration(store, 'ms-graph-mail', 'admin')
    const app = scopes.forApp('ms-graph-mail', 'global')!
    await issuers[0]!.issue(defaultScope(registration, app, time.now() + 5000))
    time.advance(100_000)
    await new Promise((r) => setTimeout(r, 50))
    expect(idp.calls).toBe(1)
    // Once inside the margin, the next caller fetches (and waits): that is the expiry path.
    time.advance(15_000)
    const late = await issuers[0]!.issue(defaultScope(registration, app, time.now() + 5000))
    expect(late).toMatchObject({ accessToken: 'at-2', source: 'miss' })
  })

  it('the caller who finds the refresh due pays nothing for it: no store or upstream call on its turn', async () => {
    const time = manualClock()
    const { store, idp, scopes, issuers } = setup({ clock: time.now })
    const registration = await createRegistration(store, 'ms-graph-mail', 'admin')
    const app = scopes.forApp('ms-graph-mail', 'global')!
    const ask = () => issuers[0]!.issue(defaultScope(registration, app, time.now() + 5000))
    expect((await ask()).accessToken).toBe('at-1')
    time.advance(61_000)
    // Every store and upstream call from here on is counted.
    let storeCalls = 0
    for (const part of [store.tokens, store.locks, store.ephemeral, store.rateLimiter] as unknown as Array<
      Record<string, unknown>
    >) {
      const names = new Set([
        ...Object.getOwnPropertyNames(Object.getPrototypeOf(part)),
        ...Object.keys(part),
      ])
      for (const name of names) {
        const original = part[name]
        if (name === 'constructor' || typeof original !== 'function') continue
        part[name] = (...args: unknown[]) => {
          storeCalls++
          return (original as (...a: unknown[]) => unknown).apply(part, args)
        }
      }
    }
    const answer = await ask()
    // Answered from this instance's copy, the refresh not yet begun: it starts on a later turn.
    expect(answer).toMatchObject({ accessToken: 'at-1', source: 'hit' })
    expect({ storeCalls, upstream: idp.calls }).toEqual({ storeCalls: 0, upstream: 1 })
    await vi.waitFor(() => expect(idp.calls).toBe(2), WAIT)
    expect(storeCalls).toBeGreaterThan(0)
    await vi.waitFor(
      async () =>
        expect((await store.tokens.get(tokenGroup(registration), app.defaultScope))?.accessToken).toBe(
          'at-2',
        ),
      WAIT,
    )
  })

  it('a caller who misses while a refresh-ahead gives way to another instance waits for the lock; it never gets the refresh-ahead’s "skipped"', async () => {
    const time = manualClock()
    const { store, idp, scopes, issuers } = setup({ clock: time.now })
    const registration = await createRegistration(store, 'ms-graph-mail', 'admin')
    const app = scopes.forApp('ms-graph-mail', 'global')!
    const scope = app.defaultScope
    const ask = () => issuers[0]!.issue({ registration, app, scope, deadlineAt: time.now() + 5000 })
    expect((await ask()).accessToken).toBe('at-1')
    // The refresh-ahead's first store read is held until the caller below has asked.
    const readHeld = deferred()
    const readStarted = deferred()
    const tokens = store.tokens as unknown as { get: Store['tokens']['get'] }
    const get = tokens.get.bind(store.tokens)
    let held = false
    tokens.get = async (...args) => {
      if (!held) {
        held = true
        readStarted.resolve()
        await readHeld.promise
      }
      return get(...args)
    }
    time.advance(61_000)
    expect(await ask()).toMatchObject({ accessToken: 'at-1', source: 'hit' })
    await readStarted.promise
    // The token leaves its served window while the refresh-ahead is still looking.
    time.advance(50_000)
    // Another instance is refreshing this token right now (its lease runs on the test's clock).
    const other = await store.locks.acquire(
      refreshLockName(tokenGroup(registration), scope),
      REFRESH_LOCK_LEASE_MS,
    )
    expect(other).not.toBeNull()
    const caller = ask()
    const settled = outcomeOf(caller)
    readHeld.resolve()
    // The refresh-ahead finds the lock taken and steps aside; the caller keeps waiting for it.
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(await Promise.race([settled, Promise.resolve('still waiting')])).toBe('still waiting')
    await store.locks.release(other!)
    expect(await settled).toEqual({
      answer: expect.objectContaining({ accessToken: 'at-2', source: 'miss' }),
    })
    expect(idp.calls).toBe(2)
  })

  it('TOKEN_REFRESH_AHEAD_FRACTION=0 turns it off', async () => {
    const time = manualClock()
    const { store, idp, scopes, issuers } = setup({
      clock: time.now,
      env: { TOKEN_REFRESH_AHEAD_FRACTION: '0' },
    })
    const registration = await createRegistration(store, 'ms-graph-mail', 'admin')
    const app = scopes.forApp('ms-graph-mail', 'global')!
    await issuers[0]!.issue(defaultScope(registration, app, time.now() + 5000))
    time.advance(100_000)
    expect((await issuers[0]!.issue(defaultScope(registration, app, time.now() + 5000))).source).toBe('hit')
    await new Promise((r) => setTimeout(r, 50))
    expect(idp.calls).toBe(1)
  })
})

describe('riding out upstream failures', () => {
  it('503 during refresh-ahead: the cached token is served, every instance honours one shared backoff', async () => {
    const time = manualClock()
    const { store, idp, scopes, issuers, metrics } = setup({ instances: 3, clock: time.now })
    const registration = await createRegistration(store, 'ms-graph-mail', 'admin')
    const app = scopes.forApp('ms-graph-mail', 'global')!
    const ask = (i: number) => issuers[i % 3]!.issue(defaultScope(registration, app, time.now() + 5000))
    await ask(0)
    idp.failWith = () => new UpstreamError('unavailable', 'HTTP 503', { status: 503 })
    time.advance(61_000)
    expect((await ask(0)).accessToken).toBe('at-1')
    await vi.waitFor(() => expect(idp.calls).toBe(2), WAIT)
    await vi.waitFor(
      async () =>
        expect(
          await metricValue(metrics[0]!, 'consent_broker_refresh_ahead_total', { outcome: 'failed' }),
        ).toBe(1),
      WAIT,
    )
    // Within the backoff (1 s after the first failure), no instance calls again, whatever the load.
    time.advance(500)
    const during = await Promise.all(Array.from({ length: 30 }, (_, i) => ask(i)))
    expect(new Set(during.map((a) => a.accessToken))).toEqual(new Set(['at-1']))
    await new Promise((r) => setTimeout(r, 50))
    expect(idp.calls).toBe(2)
    // After it, one more attempt (it fails again: the next delay doubles).
    time.advance(700)
    for (let i = 0; i < 3; i++) await ask(i)
    await vi.waitFor(() => expect(idp.calls).toBe(3), WAIT)
    time.advance(1_500)
    for (let i = 0; i < 3; i++) await ask(i)
    await new Promise((r) => setTimeout(r, 50))
    expect(idp.calls).toBe(3)
    // Upstream back: the next allowed attempt succeeds and the backoff ends.
    idp.failWith = undefined
    time.advance(1_000)
    await ask(1)
    await vi.waitFor(() => expect(idp.calls).toBe(4), WAIT)
    time.advance(1_001)
    await vi.waitFor(async () => {
      for (let i = 0; i < 3; i++) expect((await ask(i)).accessToken).toBe('at-4')
    }, WAIT)
    expect(idp.calls).toBe(4)
    const served = await Promise.all(
      metrics.map((m) => metricValue(m, 'consent_broker_tokens_served_during_upstream_failure_total')),
    )
    expect(served.reduce((a, b) => a + b, 0)).toBeGreaterThan(0)
  })

  it('no servable token and a backoff under way: the recorded failure at once, no upstream call', async () => {
    const time = manualClock()
    const { store, idp, scopes, issuers } = setup({ instances: 2, clock: time.now })
    const registration = await createRegistration(store, 'ms-graph-mail', 'admin')
    const app = scopes.forApp('ms-graph-mail', 'global')!
    idp.failWith = () => new UpstreamError('throttled', 'HTTP 429', { status: 429, retryAfterSeconds: 30 })
    const first = await issuers[0]!
      .issue(defaultScope(registration, app, time.now() + 5000))
      .catch((e: unknown) => e)
    expect(isBrokerError(first) && [first.code, first.retryAfter]).toEqual(['upstream_throttled', 30])
    expect(idp.calls).toBe(1)
    // Retry-After (30 s) wins over the first backoff step (1 s), on the other instance too.
    time.advance(5_000)
    const second = await issuers[1]!
      .issue(defaultScope(registration, app, time.now() + 5000))
      .catch((e: unknown) => e)
    expect(isBrokerError(second) && second.code).toBe('upstream_throttled')
    expect(isBrokerError(second) && second.retryAfter).toBe(25)
    expect(idp.calls).toBe(1)
  })

  it('invalid_grant during refresh-ahead means needs_consent at once', async () => {
    const time = manualClock()
    const { store, idp, scopes, issuers } = setup({ clock: time.now })
    const registration = await createRegistration(store, 'ms-graph-mail-listener', 'delegated')
    const app = scopes.forApp('ms-graph-mail-listener', 'global')!
    await issuers[0]!.issue(defaultScope(registration, app, time.now() + 5000))
    idp.failWith = () =>
      new UpstreamError('oauth', 'revoked', { status: 400, error: 'invalid_grant', errorCodes: [50173] })
    time.advance(61_000)
    await issuers[0]!.issue(defaultScope(registration, app, time.now() + 5000))
    await vi.waitFor(
      async () => expect((await store.registrations.getMeta(registration.id))?.status).toBe('needs_consent'),
      WAIT,
    )
    expect(await store.tokens.get(tokenGroup(registration), app.defaultScope)).toBeNull()
    expect(issuers[0]!.peek(registration, app.defaultScope)).toBeUndefined()
  })
})

describe('the upstream rate cap and the refresh lock', () => {
  it('token requests per app per second stay under UPSTREAM_RATE_PER_APP across instances; the rest queue', async () => {
    const { store, idp, scopes, issuers, metrics } = setup({
      instances: 2,
      env: { UPSTREAM_RATE_PER_APP: '2' },
    })
    const app = scopes.forApp('ms-graph-mail-listener', 'global')!
    const registrations = await Promise.all(
      Array.from({ length: 5 }, () => createRegistration(store, 'ms-graph-mail-listener', 'delegated')),
    )
    const startedAt: number[] = []
    const original = idp.refresh.bind(idp)
    idp.refresh = async (...args) => {
      startedAt.push(Date.now())
      return original(...args)
    }
    const t0 = Date.now()
    const answers = await Promise.all(
      registrations.map((registration, i) =>
        issuers[i % 2]!.issue(defaultScope(registration, app, Date.now() + 8000)),
      ),
    )
    expect(answers.every((a) => a.source === 'miss')).toBe(true)
    expect(startedAt).toHaveLength(5)
    // Fixed 1 s windows: at most 2 starts per window, so the fifth waits for the third window.
    const windows = new Map<number, number>()
    for (const at of startedAt) {
      const window = Math.floor((at - t0) / 1000)
      windows.set(window, (windows.get(window) ?? 0) + 1)
    }
    expect(Math.max(...windows.values())).toBeLessThanOrEqual(3)
    expect(Math.max(...startedAt) - t0).toBeGreaterThanOrEqual(900)
    const waits = await Promise.all(
      metrics.map((m) => metricValue(m, 'consent_broker_upstream_rate_waits_total')),
    )
    expect(waits.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(3)
  })

  it("is per app registration at Microsoft: a tenant's own app does not queue behind the hosted app", async () => {
    const { store, idp, scopes, issuers, metrics } = setup({ env: { UPSTREAM_RATE_PER_APP: '1' } })
    const app = scopes.forApp('ms-graph-mail', 'global')!
    const hostedClientId = app.resolved.clientId
    const ownClientId = '3f9d2b7c-1e4a-4c6b-8d2f-5a7e9c1b3d60'
    // Two tenants on the hosted app (two token groups, one client id) and one tenant with its own app.
    const hostedA = await createRegistration(store, 'ms-graph-mail', 'admin', TENANT)
    const hostedB = await createRegistration(
      store,
      'ms-graph-mail',
      'admin',
      '0d5e8a2c-6b1f-4e3d-9c7a-8f2b4d6e1a35',
    )
    const own = await createRegistration(
      store,
      'ms-graph-mail',
      'admin',
      '5b8c1d3e-7f2a-4a6c-b9e1-3d5f7a9c2e48',
      {
        clientId: ownClientId,
        clientSecret: 'own-secret-value',
      },
    )
    const ask = (registration: Registration) =>
      issuers[0]!.issue(defaultScope(registration, app, Date.now() + 8000))
    const answers = await Promise.all([ask(hostedA), ask(hostedB), ask(own)])
    expect(answers.map((a) => a.source)).toEqual(['miss', 'miss', 'miss'])
    expect(idp.clientIds.filter((id) => id === hostedClientId)).toHaveLength(2)
    expect(idp.clientIds.filter((id) => id === ownClientId)).toHaveLength(1)
    // One slot per second per client id: one of the hosted app's two requests waited for the next
    // window; the own app's request had a cap of its own and went out among the first two.
    expect(await metricValue(metrics[0]!, 'consent_broker_upstream_rate_waits_total')).toBe(1)
    expect(idp.clientIds.slice(0, 2).sort()).toEqual([hostedClientId, ownClientId].sort())
    expect(
      upstreamRateKey({ app: 'ms-graph-mail', cloud: 'global', clientId: ownClientId.toUpperCase() }),
    ).toBe(upstreamRateKey({ app: 'ms-graph-mail-listener', cloud: 'global', clientId: ownClientId }))
    expect(upstreamRateKey({ app: 'ms-graph-mail', cloud: 'global', clientId: hostedClientId })).not.toBe(
      upstreamRateKey({ app: 'ms-graph-mail', cloud: 'usgov', clientId: hostedClientId }),
    )
  })

  it('a holder that stops renewing its lease is taken over within the short lease', async () => {
    const { store, idp, scopes, issuers, metrics } = setup()
    const registration = await createRegistration(store, 'ms-graph-mail', 'admin')
    const app = scopes.forApp('ms-graph-mail', 'global')!
    // A "killed" instance: it took the lock and will never renew or release it.
    const dead = await store.locks.acquire(
      refreshLockName(tokenGroup(registration), app.defaultScope),
      REFRESH_LOCK_LEASE_MS,
    )
    expect(dead).not.toBeNull()
    const started = Date.now()
    const answer = await issuers[0]!.issue(defaultScope(registration, app, Date.now() + 8000))
    expect(answer).toMatchObject({ accessToken: 'at-1', source: 'miss' })
    expect(REFRESH_LOCK_LEASE_MS).toBeLessThanOrEqual(3000)
    expect(Date.now() - started).toBeGreaterThanOrEqual(REFRESH_LOCK_LEASE_MS - 100)
    expect(idp.calls).toBe(1)
    expect(await metricValue(metrics[0]!, 'consent_broker_lock_takeovers_total')).toBe(1)
  })
})

describe('waiting on another instance: its failure, whatever its clock says', () => {
  const marker = (at: number) => JSON.stringify({ at, code: 'upstream_unavailable', message: 'HTTP 503' })
  /** One admin registration whose refresh lock "another instance" (the test) holds. */
  async function heldByAnother() {
    const { store, idp, scopes, issuers } = setup()
    const registration = await createRegistration(store, 'ms-graph-mail', 'admin')
    const app = scopes.forApp('ms-graph-mail', 'global')!
    const group = tokenGroup(registration)
    const lock = await store.locks.acquire(refreshLockName(group, app.defaultScope), 10_000)
    expect(lock).not.toBeNull()
    const failKey = failureKey(group, app.defaultScope)
    const ask = (ms: number) => outcomeOf(issuers[0]!.issue(defaultScope(registration, app, Date.now() + ms)))
    return { store, idp, lock: lock!, failKey, ask }
  }
  /** Until the waiter has read the marker `times` times, or has answered already (a failing test). */
  const afterMarkerReads = (
    reads: { mock: { calls: unknown[][] } },
    failKey: string,
    times: number,
    waiting: Promise<unknown>,
  ) =>
    Promise.race([
      waiting,
      vi.waitFor(
        () =>
          expect(reads.mock.calls.filter(([key]) => key === failKey).length).toBeGreaterThanOrEqual(times),
        WAIT,
      ),
    ])

  it("takes the holder's failure as its answer though the holder's clock is 10 s behind", async () => {
    const { store, idp, failKey, ask } = await heldByAnother()
    const reads = vi.spyOn(store.ephemeral, 'get')
    const startedAt = Date.now()
    const waiting = ask(4_000)
    // The waiter has looked at the marker (none yet); then the holder fails and publishes.
    await afterMarkerReads(reads, failKey, 1, waiting)
    await store.ephemeral.put(failKey, marker(Date.now() - 10_000), 5_000)
    expect(await waiting).toEqual({
      error: expect.objectContaining({ code: 'upstream_unavailable', message: 'HTTP 503' }),
    })
    // Answered by the marker, not at the deadline by "another instance is still fetching".
    expect(Date.now() - startedAt).toBeLessThan(3_000)
    expect(idp.calls).toBe(0)
  })

  it("does not take a failure published before it began waiting, though its time is ahead of the waiter's clock", async () => {
    const { store, idp, lock, failKey, ask } = await heldByAnother()
    // An earlier failure, by an instance whose clock is 10 s ahead.
    await store.ephemeral.put(failKey, marker(Date.now() + 10_000), 5_000)
    const reads = vi.spyOn(store.ephemeral, 'get')
    const waiting = ask(4_000)
    // Past the waiter's first poll (unless it answered already), the holder ends without a result
    // and lets go of the lock.
    await afterMarkerReads(reads, failKey, 2, waiting)
    await store.locks.release(lock)
    expect(await waiting).toEqual({
      answer: expect.objectContaining({ accessToken: 'at-1', source: 'miss' }),
    })
    expect(idp.calls).toBe(1)
  })

  it('takes a failure published just as it tries for the lock (after it read the marker) as its answer', async () => {
    const { store, idp, lock, failKey, ask } = await heldByAnother()
    const acquire = store.locks.acquire.bind(store.locks)
    // The holder fails between the waiter's read of the marker and its try for the lock.
    vi.spyOn(store.locks, 'acquire').mockImplementationOnce(async (name, leaseMs) => {
      await store.ephemeral.put(failKey, marker(Date.now()), 5_000)
      return acquire(name, leaseMs)
    })
    const startedAt = Date.now()
    const waiting = ask(4_000)
    expect(await waiting).toEqual({ error: expect.objectContaining({ code: 'upstream_unavailable' }) })
    expect(Date.now() - startedAt).toBeLessThan(3_000)
    expect(idp.calls).toBe(0)
    await store.locks.release(lock)
  })

  it('when the marker could not be read first, takes the first one it reads as the earlier one', async () => {
    const { store, lock, failKey, ask } = await heldByAnother()
    await store.ephemeral.put(
      failKey,
      JSON.stringify({ at: Date.now(), code: 'upstream_unavailable', message: 'an earlier failure' }),
      5_000,
    )
    const get = store.ephemeral.get.bind(store.ephemeral)
    let failed = false
    // The first read of the marker fails; every other read is the store's.
    const reads = vi.spyOn(store.ephemeral, 'get').mockImplementation((key, options) => {
      if (key !== failKey || failed) return get(key, options)
      failed = true
      return Promise.reject(new Error('connection reset'))
    })
    const waiting = ask(4_000)
    await afterMarkerReads(reads, failKey, 3, waiting)
    // Not answered with the earlier failure; the holder's own is the answer.
    await store.ephemeral.put(failKey, marker(Date.now()), 5_000)
    expect(await waiting).toEqual({
      error: expect.objectContaining({ code: 'upstream_unavailable', message: 'HTTP 503' }),
    })
    await store.locks.release(lock)
  })

  it("repeats the holder's Retry-After shortened by the time since, never lengthened by a clock ahead", () => {
    const now = 1_000_000
    const failed = (at: number) =>
      failureError({ at, code: 'upstream_throttled', message: 'HTTP 429', retryAfter: 5 }, now)
    expect(failed(now - 3_000).retryAfter).toBe(2)
    expect(failed(now - 60_000).retryAfter).toBe(1)
    expect(failed(now + 10_000).retryAfter).toBe(5)
  })
})

describe('callers sharing a refresh', () => {
  it("a call the caller's own deadline cut short is not held against Entra: no backoff, nothing published", async () => {
    const { store, idp, scopes, issuers, metrics } = setup()
    const registration = await createRegistration(store, 'ms-graph-mail', 'admin')
    const app = scopes.forApp('ms-graph-mail', 'global')!
    const group = tokenGroup(registration)
    idp.delayMs = 2_000
    // Less than SHORT_ATTEMPT_MS left for the call (of UPSTREAM_TIMEOUT_MS): the caller was late.
    const late = await issuers[0]!
      .issue(defaultScope(registration, app, Date.now() + 800))
      .catch((error: unknown) => error)
    expect(isBrokerError(late) && late.code).toBe('upstream_timeout')
    await vi.waitFor(() => expect(idp.calls).toBe(1), WAIT)
    // The cut call ends (its abort) before the flight settles; give the flight time to record.
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(await readBackoff(store, group)).toBeUndefined()
    expect(await store.ephemeral.get(failureKey(group, app.defaultScope))).toBeNull()
    expect(
      await metricValue(metrics[0]!, 'consent_broker_upstream_requests_total', { outcome: 'deadline' }),
    ).toBe(1)
    expect(
      await metricValue(metrics[0]!, 'consent_broker_upstream_requests_total', { outcome: 'timeout' }),
    ).toBe(0)
    // The next caller with time enough calls at once.
    idp.delayMs = 0
    const next = await issuers[0]!.issue(defaultScope(registration, app, Date.now() + 5_000))
    expect(next).toMatchObject({ accessToken: 'at-2', source: 'miss' })
  })

  it("a caller who joins a flight keeps its own deadline, not the first caller's", async () => {
    const { store, scopes, issuers } = setup()
    const registration = await createRegistration(store, 'ms-graph-mail', 'admin')
    const app = scopes.forApp('ms-graph-mail', 'global')!
    // Another instance refreshes this token for a while.
    const other = await store.locks.acquire(
      refreshLockName(tokenGroup(registration), app.defaultScope),
      10_000,
    )
    expect(other).not.toBeNull()
    const ask = (ms: number) => outcomeOf(issuers[0]!.issue(defaultScope(registration, app, Date.now() + ms)))
    const first = ask(300)
    const joined = ask(5_000)
    const early = await first
    expect('error' in early && isBrokerError(early.error) && early.error.code).toBe('upstream_timeout')
    // Past the first caller's deadline, the flight still waits for the lock on the second's behalf.
    await new Promise((resolve) => setTimeout(resolve, 300))
    await store.locks.release(other!)
    expect(await joined).toEqual({ answer: expect.objectContaining({ accessToken: 'at-1' }) })
  })

  it("a background refresh's failure is not a waiting caller's answer: the caller tries itself", async () => {
    const { store, idp, scopes, issuers } = setup({ instances: 2 })
    const registration = await createRegistration(store, 'ms-graph-mail', 'admin')
    const app = scopes.forApp('ms-graph-mail', 'global')!
    const scope = app.defaultScope
    idp.delayMs = 1_000
    idp.failWith = () => new UpstreamError('unavailable', 'HTTP 503', { status: 503 })
    // A keep-alive refresh on instance 1 holds the lock while Entra fails it.
    const background = issuers[1]!
      .issue({ ...defaultScope(registration, app, Date.now() + 5_000), force: true, priority: 'background' })
      .catch((error: unknown) => error)
    await vi.waitFor(() => expect(idp.calls).toBe(1), WAIT)
    const caller = outcomeOf(issuers[0]!.issue({ registration, app, scope, deadlineAt: Date.now() + 5_000 }))
    const failed = await background
    expect(isBrokerError(failed) && failed.code).toBe('upstream_unavailable')
    const marker = parseFailure(await store.ephemeral.get(failureKey(tokenGroup(registration), scope)))
    expect(marker).toMatchObject({ code: 'upstream_unavailable', background: true })
    idp.failWith = undefined
    // The caller waits out the short backoff the failure started, then calls Entra itself.
    expect(await caller).toEqual({ answer: expect.objectContaining({ accessToken: 'at-2', source: 'miss' }) })
    expect(idp.calls).toBe(2)
  })
})

describe('background work and the rate cap', () => {
  it('a keep-alive refresh waits for its rate slot before the lock: a caller whose token is gone is not kept behind it', async () => {
    const { store, idp, scopes, issuers, metrics } = setup({
      instances: 2,
      env: { UPSTREAM_RATE_PER_APP: '2' },
    })
    const registration = await createRegistration(store, 'ms-graph-mail', 'admin')
    const app = scopes.forApp('ms-graph-mail', 'global')!
    const scope = app.defaultScope
    // Background work's share of this second (one of two) is used; a caller's is not.
    const slot = await store.rateLimiter.take(upstreamRateKey(upstreamCallerOf(registration, app)), 2, 1_000)
    expect(slot.allowed).toBe(true)
    const background = issuers[1]!.issue({
      ...defaultScope(registration, app, Date.now() + 5_000),
      force: true,
      priority: 'background',
    })
    await vi.waitFor(
      async () =>
        expect(
          await metricValue(metrics[1]!, 'consent_broker_upstream_rate_waits_total', {
            priority: 'background',
          }),
        ).toBe(1),
      WAIT,
    )
    // The caller leads (it finds the lock free) instead of waiting for the keep-alive's result.
    const answer = await issuers[0]!.issue({ registration, app, scope, deadlineAt: Date.now() + 5_000 })
    expect(answer).toMatchObject({ accessToken: 'at-1', source: 'miss' })
    // The keep-alive then finds the caller's token newer than what it saw: no second call.
    expect(await background).toMatchObject({ accessToken: 'at-1' })
    expect(idp.calls).toBe(1)
  })
})

describe('what is not held against a caller', () => {
  it('a call cut short by the first caller is made again for a caller who joined with time left', async () => {
    const { store, idp, scopes, issuers } = setup()
    const registration = await createRegistration(store, 'ms-graph-mail', 'admin')
    const app = scopes.forApp('ms-graph-mail', 'global')!
    const ask = (ms: number) => outcomeOf(issuers[0]!.issue(defaultScope(registration, app, Date.now() + ms)))
    idp.delayMs = 2_000
    const first = ask(800)
    await vi.waitFor(() => expect(idp.calls).toBe(1), WAIT)
    idp.delayMs = 0
    const joined = ask(5_000)
    // The first caller may get the second call's token too, if it comes within its deadline.
    await first
    expect(await joined).toEqual({ answer: expect.objectContaining({ accessToken: 'at-2' }) })
    expect(idp.calls).toBe(2)
  })

  it("a caller who joins a flight queued at the rate cap keeps it queued past the first caller's deadline", async () => {
    const { store, idp, scopes, issuers } = setup({ env: { UPSTREAM_RATE_PER_APP: '1' } })
    const registration = await createRegistration(store, 'ms-graph-mail', 'admin')
    const app = scopes.forApp('ms-graph-mail', 'global')!
    // This second's one upstream call is taken: the flight must wait for the next window.
    const taken = await store.rateLimiter.take(upstreamRateKey(upstreamCallerOf(registration, app)), 1, 1_000)
    expect(taken.allowed).toBe(true)
    const ask = (ms: number) => outcomeOf(issuers[0]!.issue(defaultScope(registration, app, Date.now() + ms)))
    const first = ask(700)
    const joined = ask(5_000)
    expect(await first).toEqual({ error: expect.objectContaining({ code: 'upstream_timeout' }) })
    expect(await joined).toEqual({ answer: expect.objectContaining({ accessToken: 'at-1' }) })
    expect(idp.calls).toBe(1)
  })

  it('a caller who joins while the flight already sleeps at the rate cap keeps it queued when the next window is taken too', async () => {
    const time = manualClock()
    const { store, idp, scopes, issuers, metrics } = setup({
      clock: time.now,
      env: { UPSTREAM_RATE_PER_APP: '1' },
    })
    const registration = await createRegistration(store, 'ms-graph-mail', 'admin')
    const app = scopes.forApp('ms-graph-mail', 'global')!
    const rateKey = upstreamRateKey(upstreamCallerOf(registration, app))
    const take = vi.spyOn(store.rateLimiter, 'take')
    const flightTakes = () => take.mock.calls.filter(([key]) => key === rateKey).length
    // This window's one upstream call is taken.
    expect((await store.rateLimiter.take(rateKey, 1, 1_000)).allowed).toBe(true)
    const ask = (ms: number) => outcomeOf(issuers[0]!.issue(defaultScope(registration, app, time.now() + ms)))
    // The first caller has time for one window's wait, not two.
    const first = ask(1_300)
    await vi.waitFor(
      async () =>
        expect(
          await metricValue(metrics[0]!, 'consent_broker_upstream_rate_waits_total', {
            app: 'ms-graph-mail',
          }),
        ).toBe(1),
      WAIT,
    )
    // The flight sleeps for the next window; a caller with time enough joins it now.
    const joined = ask(5_000)
    // Someone else takes the next window's call: the flight has to wait a second window.
    time.advance(1_000)
    expect((await store.rateLimiter.take(rateKey, 1, 1_000)).allowed).toBe(true)
    const before = flightTakes()
    await vi.waitFor(() => expect(flightTakes()).toBeGreaterThan(before), WAIT)
    time.advance(1_000)
    expect(await joined).toEqual({ answer: expect.objectContaining({ accessToken: 'at-1' }) })
    expect(idp.calls).toBe(1)
    expect(await first).toEqual({ error: expect.objectContaining({ code: 'upstream_timeout' }) })
  })

  it('a refresh-ahead without a background rate slot lets go of the lock at once and tries again later', async () => {
    const time = manualClock()
    const { store, idp, scopes, issuers, metrics } = setup({
      clock: time.now,
      env: { UPSTREAM_RATE_PER_APP: '2' },
    })
    const registration = await createRegistration(store, 'ms-graph-mail', 'admin')
    const app = scopes.forApp('ms-graph-mail', 'global')!
    const scope = app.defaultScope
    const ask = () => issuers[0]!.issue({ registration, app, scope, deadlineAt: time.now() + 5000 })
    expect((await ask()).accessToken).toBe('at-1')
    time.advance(61_000)
    // The background share of this window (one of two) is used.
    const taken = await store.rateLimiter.take(upstreamRateKey(upstreamCallerOf(registration, app)), 2, 1_000)
    expect(taken.allowed).toBe(true)
    expect(await ask()).toMatchObject({ accessToken: 'at-1', source: 'hit' })
    await vi.waitFor(
      async () =>
        expect(
          await metricValue(metrics[0]!, 'consent_broker_refresh_ahead_total', { outcome: 'rate_capped' }),
        ).toBe(1),
      WAIT,
    )
    expect(idp.calls).toBe(1)
    // The lock is free for a caller at once.
    const lock = await store.locks.acquire(refreshLockName(tokenGroup(registration), scope), 1_000)
    expect(lock).not.toBeNull()
    await store.locks.release(lock!)
    // Once the window has room, the next hit refreshes.
    time.advance(1_001)
    expect(await ask()).toMatchObject({ accessToken: 'at-1', source: 'hit' })
    await vi.waitFor(() => expect(idp.calls).toBe(2), WAIT)
  })

  it("a failure marker of an earlier release (no background field) is a waiting caller's answer", () => {
    const marker = parseFailure(JSON.stringify({ at: 1, code: 'upstream_unavailable', message: 'HTTP 503' }))
    expect(marker).toBeDefined()
    expect(answersWaiter(marker!, 'caller')).toBe(true)
    const background = parseFailure(
      JSON.stringify({ at: 1, code: 'upstream_unavailable', message: 'HTTP 503', background: true }),
    )
    expect(answersWaiter(background!, 'caller')).toBe(false)
    expect(answersWaiter(background!, 'background')).toBe(true)
  })

  it('invalid_grant for a refresh token replaced during the call (a new consent): 503, the registration stays active', async () => {
    const { store, idp, scopes, issuers } = setup()
    const registration = await createRegistration(store, 'ms-graph-mail-listener', 'delegated')
    const app = scopes.forApp('ms-graph-mail-listener', 'global')!
    idp.delayMs = 300
    idp.failWith = () =>
      new UpstreamError('oauth', 'expired', { status: 400, error: 'invalid_grant', errorCodes: [70008] })
    const answer = issuers[0]!
      .issue(defaultScope(registration, app, Date.now() + 5_000))
      .catch((error: unknown) => error)
    await vi.waitFor(() => expect(idp.calls).toBe(1), WAIT)
    // The user consents again while Entra answers the refresh with the old token.
    const meta = await store.registrations.getMeta(registration.id)
    await store.registrations.update(registration.id, meta!.version, {}, { refreshToken: 'rt-new-consent' })
    const error = await answer
    expect(isBrokerError(error) && [error.code, error.message]).toEqual([
      'store_unavailable',
      'this registration is being changed; retry shortly',
    ])
    expect((await store.registrations.getMeta(registration.id))?.status).toBe('active')
    expect((await store.registrations.get(registration.id))?.secrets.refreshToken).toBe('rt-new-consent')
    // Nothing published: the next request refreshes with the new token.
    expect(await store.ephemeral.get(failureKey(tokenGroup(registration), app.defaultScope))).toBeNull()
    idp.failWith = undefined
    idp.delayMs = 0
    const next = await issuers[0]!.issue(defaultScope(registration, app, Date.now() + 5_000))
    expect(next.accessToken).toBe('at-2')
  })
})
