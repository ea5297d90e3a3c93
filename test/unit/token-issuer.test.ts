// The issuer without HTTP: several issuers on one store stand for several broker instances.
import { randomBytes, randomUUID } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import pino from 'pino'
import { describe, expect, it } from 'vitest'
import type { ResolvedApp } from '../../src/config.js'
import { type IdentityProvider, type TokenGrant, UpstreamError } from '../../src/entra/types.js'
import { classifyUpstreamError } from '../../src/entra/upstream-errors.js'
import { isBrokerError } from '../../src/errors.js'
import { createMetrics } from '../../src/metrics.js'
import { refreshLockName } from '../../src/services/token-fetch.js'
import { tokenGroup } from '../../src/services/token-groups.js'
import { TokenIssuer } from '../../src/services/token-issuer.js'
import { KeepAlive } from '../../src/services/token-keep-alive.js'
import { ScopeResolver } from '../../src/services/token-scope.js'
import { SingleFlight } from '../../src/services/token-single-flight.js'
import { compareIdle, IDLE_BUCKETS, idleBucketOf, SINGLE_SET_IDLE_ORDER } from '../../src/store/idle-order.js'
import { createMemoryStore } from '../../src/store/memory.js'
import type { IdlePosition, Registration, Store } from '../../src/store/types.js'
import { testConfig } from '../support/config.js'

const TENANT = '7c3b1e5a-4d2f-4b8e-9a61-2f0c8d4e6b13'
const silent = pino({ level: 'silent' }) as unknown as FastifyBaseLogger

class CountingIdp implements IdentityProvider {
  startDeviceAuthorization(): never {
    throw new Error('the device code grant is not used by these tests')
  }
  pollDeviceAuthorization(): never {
    throw new Error('the device code grant is not used by these tests')
  }
  calls = 0
  refreshTokensSeen: string[] = []
  delayMs = 50
  onCall: (() => Promise<void>) | undefined
  async signInUrl(): Promise<string> {
    throw new Error('not used')
  }
  async redeemCode(): Promise<never> {
    throw new Error('not used')
  }
  async adminConsentUrl(): Promise<string> {
    throw new Error('not used')
  }
  async clientCredentials(_app: ResolvedApp, _tid: string, scope: string): Promise<TokenGrant> {
    const n = ++this.calls
    await this.onCall?.()
    await new Promise((r) => setTimeout(r, this.delayMs))
    return { accessToken: `at-${n}`, expiresIn: 3600, scope }
  }
  async refresh(_app: ResolvedApp, _tid: string, refreshToken: string, scope: string): Promise<TokenGrant> {
    const n = ++this.calls
    this.refreshTokensSeen.push(refreshToken)
    await this.onCall?.()
    await new Promise((r) => setTimeout(r, this.delayMs))
    return { accessToken: `at-${n}`, expiresIn: 3600, scope, refreshToken: `rt-${n}` }
  }
}

function setup(instances: number, env: Record<string, string> = {}) {
  const config = testConfig({ authorityUrl: 'http://127.0.0.1:9', env })
  const store = createMemoryStore({ keyRing: config.keyRing })
  const idp = new CountingIdp()
  const scopes = new ScopeResolver(config)
  const issuers = Array.from(
    { length: instances },
    () =>
      new TokenIssuer({
        config,
        store,
        idp,
        metrics: createMetrics(),
        logger: silent,
        clock: Date.now,
        scopes,
      }),
  )
  return { config, store, idp, scopes, issuers }
}

async function createRegistration(
  store: Store,
  app: string,
  kind: 'admin' | 'delegated',
  options: { id?: string; createdAt?: string; refreshToken?: string } = {},
): Promise<Registration> {
  const now = options.createdAt ?? new Date().toISOString()
  const result = await store.registrations.create(
    {
      id: options.id ?? randomUUID(),
      app,
      cloud: 'global',
      tenantId: TENANT,
      kind,
      ...(kind === 'delegated' ? { userOid: randomUUID() } : {}),
      status: 'active',
      createdAt: now,
      updatedAt: now,
      consentedAt: now,
    },
    {
      key: randomBytes(32).toString('base64'),
      ...(kind === 'delegated' ? { refreshToken: options.refreshToken ?? 'rt-0' } : {}),
    },
  )
  if (!result.created) throw new Error('not created')
  return result.registration
}

describe('TokenIssuer', () => {
  it('three instances, 150 concurrent callers, cold cache: one upstream call, one token', async () => {
    const { store, idp, scopes, issuers } = setup(3)
    idp.delayMs = 150
    const registration = await createRegistration(store, 'ms-graph-mail', 'admin')
    const app = scopes.forApp('ms-graph-mail', 'global')!
    const results = await Promise.all(
      Array.from({ length: 150 }, (_, i) =>
        issuers[i % 3]!.issue({ registration, app, scope: app.defaultScope, deadlineAt: Date.now() + 5000 }),
      ),
    )
    expect(idp.calls).toBe(1)
    expect(new Set(results.map((r) => r.accessToken))).toEqual(new Set(['at-1']))
    const sources = new Set(results.map((r) => r.source))
    expect(sources.has('miss')).toBe(true)
    expect(sources.has('shared')).toBe(true)
  })

  it('delegated: one rotation across instances, the newest refresh token stored', async () => {
    const { store, idp, scopes, issuers } = setup(3)
    const registration = await createRegistration(store, 'ms-graph-mail-listener', 'delegated')
    const app = scopes.forApp('ms-graph-mail-listener', 'global')!
    await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        issuers[i % 3]!.issue({ registration, app, scope: app.defaultScope, deadlineAt: Date.now() + 5000 }),
      ),
    )
    expect(idp.calls).toBe(1)
    expect((await store.registrations.get(registration.id))?.secrets.refreshToken).toBe('rt-1')
    // A forced refresh (keep-alive) uses the newest one and rotates again.
    await issuers[1]!.issue({
      registration,
      app,
      scope: app.defaultScope,
      deadlineAt: Date.now() + 5000,
      force: true,
    })
    expect(idp.refreshTokensSeen).toEqual(['rt-0', 'rt-1'])
    expect((await store.registrations.get(registration.id))?.secrets.refreshToken).toBe('rt-2')
  })

  it('a version conflict during the refresh is retried; a revoked registration never gets a token back', async () => {
    const { store, idp, scopes, issuers } = setup(1)
    const app = scopes.forApp('ms-graph-mail-listener', 'global')!
    const registration = await createRegistration(store, 'ms-graph-mail-listener', 'delegated')
    // Someone bumps the version (an unrelated metadata change) while the refresh is in flight.
    idp.onCall = async () => {
      const meta = await store.registrations.getMeta(registration.id)
      await store.registrations.update(registration.id, meta!.version, { userName: 'renamed' })
    }
    await issuers[0]!.issue({ registration, app, scope: app.defaultScope, deadlineAt: Date.now() + 5000 })
    expect((await store.registrations.get(registration.id))?.secrets.refreshToken).toBe('rt-1')

    const other = await createRegistration(store, 'ms-graph-mail-listener', 'delegated')
    idp.onCall = async () => {
      const meta = await store.registrations.getMeta(other.id)
      await store.registrations.update(other.id, meta!.version, { status: 'revoked' }, { refreshToken: null })
    }
    await issuers[0]!.issue({
      registration: other,
      app,
      scope: app.defaultScope,
      deadlineAt: Date.now() + 5000,
    })
    expect((await store.registrations.get(other.id))?.secrets.refreshToken).toBeUndefined()
  })

  it('a waiter on another instance takes the leader failure instead of calling again', async () => {
    const { store, idp, scopes, issuers } = setup(2)
    const registration = await createRegistration(store, 'ms-graph-mail', 'admin')
    const app = scopes.forApp('ms-graph-mail', 'global')!
    idp.clientCredentials = async () => {
      idp.calls++
      await new Promise((r) => setTimeout(r, 100))
      throw new UpstreamError('oauth', 'gone', { error: 'unauthorized_client', errorCodes: [700016] })
    }
    const outcomes = await Promise.allSettled(
      issuers.map((issuer) =>
        issuer.issue({ registration, app, scope: app.defaultScope, deadlineAt: Date.now() + 3000 }),
      ),
    )
    expect(idp.calls).toBe(1)
    for (const outcome of outcomes) {
      expect(outcome.status).toBe('rejected')
      const reason = (outcome as PromiseRejectedResult).reason
      expect(isBrokerError(reason) && reason.code).toBe('consent_required')
    }
    expect((await store.registrations.getMeta(registration.id))?.status).toBe('needs_consent')
  })

  it('a lock held by a silent instance: the waiter gives up at its deadline with 504', async () => {
    const { store, scopes, issuers } = setup(1)
    const registration = await createRegistration(store, 'ms-graph-mail', 'admin')
    const app = scopes.forApp('ms-graph-mail', 'global')!
    await store.locks.acquire(refreshLockName(tokenGroup(registration), app.defaultScope), 60_000)
    const started = Date.now()
    const error = await issuers[0]!
      .issue({ registration, app, scope: app.defaultScope, deadlineAt: Date.now() + 400 })
      .catch((e: unknown) => e)
    expect(isBrokerError(error) && error.code).toBe('upstream_timeout')
    // At its deadline (400 ms), not the lock's 60 s: the bound leaves room for late timers.
    expect(Date.now() - started).toBeLessThan(2000)
  })
})

/** A keep-alive whose clock runs two days ahead: with KEEPALIVE_IDLE_DAYS=1 everything is idle. */
function twoDaysLater(deps: Omit<ConstructorParameters<typeof KeepAlive>[0], 'logger' | 'clock'>): KeepAlive {
  return new KeepAlive({ ...deps, logger: silent, clock: () => Date.now() + 2 * 86_400_000 })
}

describe('KeepAlive', () => {
  it('refreshes idle delegated registrations once, one instance at a time, skipping the rest', async () => {
    const { config, store, idp, scopes, issuers } = setup(2, { KEEPALIVE_IDLE_DAYS: '1' })
    const idle = await createRegistration(store, 'ms-graph-mail-listener', 'delegated')
    const stuck = await createRegistration(store, 'ms-azure-log-analytics', 'delegated')
    await store.registrations.update(stuck.id, stuck.version, { status: 'needs_consent' })
    await createRegistration(store, 'ms-graph-mail', 'admin')
    const later = () => Date.now() + 2 * 86_400_000
    const keepAlives = issuers.map(
      (issuer) => new KeepAlive({ config, store, issuer, scopes, logger: silent, clock: later }),
    )
    const startedAt = Date.now()
    const runs = await Promise.all(keepAlives.map((k) => k.runOnce()))
    expect(runs.filter((r) => r.ran)).toHaveLength(1)
    const ran = runs.find((r) => r.ran)!
    expect(ran).toMatchObject({ refreshed: 1, failed: 0 })
    expect(idp.calls).toBe(1)
    const stored = await store.registrations.get(idle.id)
    expect(stored?.secrets.refreshToken).toBe('rt-1')
    // Recorded by the issuer that refreshed, on its own clock (the real one here).
    const refreshedAt = Date.parse(stored?.usage.lastRefreshAt ?? '')
    expect(refreshedAt).toBeGreaterThanOrEqual(startedAt)
    expect(refreshedAt).toBeLessThanOrEqual(Date.now())
    // Nothing is idle "now".
    const now = new KeepAlive({ config, store, issuer: issuers[0]!, scopes, logger: silent, clock: Date.now })
    expect(await now.runOnce()).toMatchObject({ ran: true, refreshed: 0 })
    keepAlives[0]!.start()
    await Promise.all(keepAlives.map((k) => k.stop()))
  })

  it('reaches an active registration behind more unrefreshable ones than fit a page', async () => {
    const { config, store, idp, scopes, issuers } = setup(1, { KEEPALIVE_IDLE_DAYS: '1' })
    // Older than the active one, waiting for consent: they stay idle pass after pass.
    for (let i = 0; i < 520; i++) {
      const stuck = await createRegistration(store, 'ms-graph-mail-listener', 'delegated')
      await store.registrations.update(stuck.id, stuck.version, { status: 'needs_consent' })
    }
    await new Promise((resolve) => setTimeout(resolve, 5))
    const active = await createRegistration(store, 'ms-graph-mail-listener', 'delegated')
    const keepAlive = twoDaysLater({ config, store, issuer: issuers[0]!, scopes })
    expect(await keepAlive.runOnce()).toMatchObject({ ran: true, refreshed: 1, skipped: 520, failed: 0 })
    expect(idp.calls).toBe(1)
    expect((await store.registrations.get(active.id))?.secrets.refreshToken).toBe('rt-1')
  })

  it('refreshes a registration close to the lapse first, even in the last bucket', async () => {
    const { config, store, idp, scopes, issuers } = setup(1, {
      KEEPALIVE_IDLE_DAYS: '7',
      UPSTREAM_RATE_PER_APP: '1000',
    })
    const daysAgo = (days: number) => new Date(Date.now() - days * 86_400_000).toISOString()
    for (let i = 0; i < 30; i++)
      await createRegistration(store, 'ms-graph-mail-listener', 'delegated', { createdAt: daysAgo(10) })
    let id = randomUUID()
    while (idleBucketOf(id) !== IDLE_BUCKETS - 1) id = randomUUID()
    await createRegistration(store, 'ms-graph-mail-listener', 'delegated', {
      id,
      createdAt: daysAgo(70),
      refreshToken: 'rt-near-lapse',
    })
    const seen = recordingStore(store)
    const keepAlive = new KeepAlive({
      config,
      store: seen.store,
      issuer: issuers[0]!,
      scopes,
      logger: silent,
      clock: Date.now,
    })
    expect(await keepAlive.runOnce()).toMatchObject({ ran: true, refreshed: 31, failed: 0, skipped: 0 })
    expect(seen.ids[0]).toBe(id)
    expect(idp.refreshTokensSeen[0]).toBe('rt-near-lapse')
    expect(new Set(seen.ids).size).toBe(31)
  })

  it('a pass stopped midway continues on the next instance where it stopped, then wraps around', async () => {
    const { config, store, scopes, issuers } = setup(1, {
      KEEPALIVE_IDLE_DAYS: '1',
      UPSTREAM_RATE_PER_APP: '1000',
    })
    const createdAt = new Date(Date.now() - 3 * 86_400_000).toISOString()
    const created: Registration[] = []
    for (let i = 0; i < 12; i++)
      created.push(await createRegistration(store, 'ms-graph-mail-listener', 'delegated', { createdAt }))
    const order = created.map(({ id }) => ({ id, score: Date.parse(createdAt) })).sort(compareIdle)
    const ids = order.map(({ id }) => id)
    // Two of the first five wait for consent: they stay idle, so a pass starting over at the
    // beginning would take them before the rest.
    const stuck = [ids[1]!, ids[3]!]
    for (const id of stuck) await store.registrations.update(id, 1, { status: 'needs_consent' })

    const first = await recordedPass({ config, scopes, issuer: issuers[0]! }, store, { stopAfter: 5 })
    expect(first.result).toMatchObject({ ran: true, refreshed: 3, skipped: 2 })
    expect(first.ids).toEqual(ids.slice(0, 5))

    const second = await recordedPass({ config, scopes, issuer: issuers[0]! }, store)
    expect(second.result).toMatchObject({ ran: true, refreshed: 7, skipped: 2 })
    expect(second.ids).toEqual([...ids.slice(5), ...stuck])
    // the ring goes on: the next pass starts after the last registration this one took
    const third = await recordedPass({ config, scopes, issuer: issuers[0]! }, store)
    expect(third.result).toMatchObject({ ran: true, refreshed: 0, skipped: 2 })
    expect(third.ids).toEqual([stuck[0], stuck[1]])
  })

  it('a pass that wraps stops at its start: one turned idle past the start meanwhile waits for the next pass', async () => {
    const { config, store, scopes, issuers } = setup(1, {
      KEEPALIVE_IDLE_DAYS: '1',
      UPSTREAM_RATE_PER_APP: '1000',
    })
    const deps = { config, scopes, issuer: issuers[0]! }
    const createdAt = new Date(Date.now() - 3 * 86_400_000).toISOString()
    const score = Date.parse(createdAt)
    const created: Registration[] = []
    for (let i = 0; i < 12; i++)
      created.push(await createRegistration(store, 'ms-graph-mail-listener', 'delegated', { createdAt }))
    const ids = created
      .map(({ id }) => ({ id, score }))
      .sort(compareIdle)
      .map(({ id }) => id)
    const stuck = [ids[1]!, ids[3]!]
    for (const id of stuck) await store.registrations.update(id, 1, { status: 'needs_consent' })
    const first = await recordedPass(deps, store, { stopAfter: 5 })
    expect(first.ids).toEqual(ids.slice(0, 5))

    // `late` turns idle (created with a creation date already past the cutoff) once the second pass
    // has listed the stretch after its start (ids[4]) up to ids[11], inside which it falls: the
    // pass could only reach it by going on past its start after wrapping.
    let late = randomUUID()
    const between = (id: string) =>
      compareIdle({ id, score }, { id: ids[4]!, score }) > 0 &&
      compareIdle({ id, score }, { id: ids[11]!, score }) < 0
    while (!between(late)) late = randomUUID()
    const second = await recordedPass(deps, store, {
      onRead: async (read) => {
        if (read.length === 1)
          await createRegistration(store, 'ms-graph-mail-listener', 'delegated', { id: late, createdAt })
      },
    })
    // the seven after the cursor, the two still idle before it, and no further: not `late`
    expect(second.result).toMatchObject({ ran: true, refreshed: 7, skipped: 2 })
    expect(second.ids).toEqual([...ids.slice(5), ...stuck])
    // the next pass starts where this one stopped (after ids[3]): `late` first
    const third = await recordedPass(deps, store)
    expect(third.result).toMatchObject({ ran: true, refreshed: 1, skipped: 2 })
    expect(third.ids).toEqual([late, ...stuck])
  })

  it('while a Redis store is expanded (rolling upgrade), walks the ring in its by-score order', async () => {
    const { config, store, scopes, issuers } = setup(1, {
      KEEPALIVE_IDLE_DAYS: '1',
      UPSTREAM_RATE_PER_APP: '1000',
    })
    // ids whose buckets run opposite to their creation order: the two orders disagree everywhere
    const ids = Array.from({ length: 12 }, () => randomUUID()).sort(
      (a, b) => idleBucketOf(b) - idleBucketOf(a) || (a < b ? -1 : 1),
    )
    for (const [i, id] of ids.entries()) {
      const createdAt = new Date(Date.now() - 3 * 86_400_000 + i * 1000).toISOString()
      await createRegistration(store, 'ms-graph-mail-listener', 'delegated', { id, createdAt })
    }
    // two of the first five wait for consent: they stay idle, before the cursor in the ring
    const stuck = [ids[1]!, ids[3]!]
    for (const id of stuck) await store.registrations.update(id, 1, { status: 'needs_consent' })
    // what a Redis store lists while expanded: the one legacy idle set, by score then id, and the
    // order it hands out then
    const expanded: Store = {
      ...store,
      registrations: new Proxy(store.registrations, {
        get(target, property) {
          if (property === 'idleOrder') return async () => SINGLE_SET_IDLE_ORDER
          if (property === 'listIdleDelegated')
            return async (before: string, limit: number, after?: IdlePosition) => {
              const all = (await target.listIdleDelegated(before, 1000)).sort(
                (a, b) => a.score - b.score || (a.id < b.id ? -1 : 1),
              )
              const from = after === undefined ? 0 : all.findIndex((p) => p.score > after.score)
              return (from < 0 ? [] : all.slice(from)).slice(0, limit)
            }
          const value = Reflect.get(target, property, target)
          return typeof value === 'function' ? value.bind(target) : value
        },
      }),
    }
    const first = await recordedPass({ config, scopes, issuer: issuers[0]! }, expanded, { stopAfter: 5 })
    expect(first.result).toMatchObject({ ran: true, refreshed: 3, skipped: 2 })
    expect(first.ids).toEqual(ids.slice(0, 5))
    // the next pass takes the other seven from the cursor, wraps to the two still idle before
    // it (in by-score order, not by bucket), and stops at the cursor
    const second = await recordedPass({ config, scopes, issuer: issuers[0]! }, expanded)
    expect(second.result).toMatchObject({ ran: true, refreshed: 7, skipped: 2 })
    expect(second.ids).toEqual([...ids.slice(5), ...stuck])
  })

  it('a failing refresh is logged and counted, never thrown', async () => {
    const { config, store, idp, scopes, issuers } = setup(1, { KEEPALIVE_IDLE_DAYS: '1' })
    await createRegistration(store, 'ms-graph-mail-listener', 'delegated')
    idp.refresh = async () => {
      throw new UpstreamError('unavailable', 'down', { status: 503 })
    }
    const keepAlive = twoDaysLater({ config, store, issuer: issuers[0]!, scopes })
    expect(await keepAlive.runOnce()).toMatchObject({ ran: true, refreshed: 0, failed: 1 })
  })
})

describe('SingleFlight', () => {
  it('shares one promise per key and forgets it when settled (errors are not cached)', async () => {
    const flights = new SingleFlight<number>()
    let runs = 0
    const work = async () => {
      runs++
      await new Promise((r) => setTimeout(r, 10))
      if (runs === 1) throw new Error('first fails')
      return runs
    }
    const a = flights.run('k', work)
    const b = flights.run('k', work)
    expect(a.shared).toBe(false)
    expect(b.shared).toBe(true)
    await expect(a.promise).rejects.toThrow('first fails')
    await expect(b.promise).rejects.toThrow('first fails')
    expect(flights.size).toBe(0)
    await expect(flights.run('k', work).promise).resolves.toBe(2)
  })
})

describe('classifyUpstreamError', () => {
  const oauth = (error: string, codes: number[] = []) =>
    new UpstreamError('oauth', 'x', { error, errorCodes: codes })
  it.each([
    [oauth('invalid_grant', [70008]), 'needs_consent'],
    [oauth('invalid_grant', [50173]), 'needs_consent'],
    [oauth('interaction_required', [50076]), 'needs_consent'],
    [oauth('unauthorized_client', [700016]), 'needs_consent'],
    [oauth('invalid_request', [65001]), 'needs_consent'],
    [oauth('invalid_request', [90094]), 'needs_consent'],
    [oauth('invalid_request', [500011]), 'needs_consent'],
    [oauth('invalid_client', [7000215]), 'misconfigured'],
    [oauth('invalid_client', [7000222]), 'misconfigured'],
    [oauth('invalid_request', [90002]), 'permanent'],
    [oauth('invalid_request', [50196]), 'throttled'],
    [oauth('temporarily_unavailable'), 'unavailable'],
    [oauth('invalid_scope', [70011]), 'permanent'],
    [new UpstreamError('throttled', 'x', { status: 429 }), 'throttled'],
    [new UpstreamError('unavailable', 'x', { status: 502 }), 'unavailable'],
    [new UpstreamError('timeout', 'x'), 'timeout'],
  ])('%s → %s', (error, decision) => {
    expect(classifyUpstreamError(error)).toBe(decision)
  })
})

/**
 * One keep-alive pass on `store`, recording the registrations it reads; with `stopAfter`, the pass is
 * stopped once it has read that many (as a shutdown would); `onRead` runs (awaited) as it reads each.
 */
async function recordedPass(
  deps: Pick<ConstructorParameters<typeof KeepAlive>[0], 'config' | 'scopes' | 'issuer'>,
  store: Store,
  { stopAfter, onRead }: { stopAfter?: number; onRead?: (ids: readonly string[]) => Promise<void> } = {},
) {
  const recorded = recordingStore(store)
  const keepAlive = new KeepAlive({ ...deps, store: recorded.store, logger: silent, clock: Date.now })
  recorded.onGet = async () => {
    if (recorded.ids.length === stopAfter) void keepAlive.stop()
    await onRead?.(recorded.ids)
  }
  return { result: await keepAlive.runOnce(), ids: recorded.ids }
}

/** The store as the keep-alive sees it, recording the ids it takes (in page order), as it takes them. */
function recordingStore(store: Store): { store: Store; ids: string[]; onGet: () => Promise<void> } {
  const seen = { store, ids: [] as string[], onGet: async () => {} }
  const registrations = new Proxy(store.registrations, {
    get(target, property) {
      if (property === 'getMeta')
        return async (id: string) => {
          seen.ids.push(id)
          await seen.onGet()
          return target.getMeta(id)
        }
      const value = Reflect.get(target, property, target)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
  seen.store = { ...store, registrations }
  return seen
}
