// The token refresh's compare-and-set writes (markNeedsConsent, storeRotatedRefreshToken) when a
// concurrent writer bumps the version in between: they read again and decide again.
import { randomBytes, randomUUID } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { RegistrationLifecycle } from '../../src/services/token-registration.js'
import { createMemoryStore } from '../../src/store/memory.js'
import type { Registration, RegistrationStore, Store } from '../../src/store/types.js'
import { testConfig } from '../support/config.js'

const silent = pino({ level: 'silent' }) as unknown as FastifyBaseLogger

/**
 * A store whose `update` first lets `concurrent` write (as another instance would, bumping the
 * version) and then tries the caller's write at the version the caller read, for the first
 * `conflicts` calls.
 */
function racingStore(store: Store, conflicts: number, concurrent: (id: string) => Promise<void>): Store {
  let left = conflicts
  const update: RegistrationStore['update'] = async (id, expectedVersion, patch, secrets) => {
    if (left > 0) {
      left--
      await concurrent(id)
    }
    return store.registrations.update(id, expectedVersion, patch, secrets)
  }
  // every other method is the real store's, called on it (its private fields stay reachable)
  const registrations = new Proxy(store.registrations, {
    get: (target, name) => {
      if (name === 'update') return update
      const value: unknown = Reflect.get(target, name)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
  return { ...store, registrations }
}

async function setup(conflicts: number, concurrent: (store: Store, id: string) => Promise<void>) {
  const config = testConfig({ authorityUrl: 'http://127.0.0.1:9' })
  const store = createMemoryStore({ keyRing: config.keyRing })
  const now = new Date().toISOString()
  const created = await store.registrations.create(
    {
      id: randomUUID(),
      app: 'ms-graph-mail',
      cloud: 'global',
      tenantId: '7c3b1e5a-4d2f-4b8e-9a61-2f0c8d4e6b13',
      kind: 'delegated',
      userOid: randomUUID(),
      status: 'active',
      createdAt: now,
      updatedAt: now,
      consentedAt: now,
    },
    { key: randomBytes(32).toString('base64'), refreshToken: 'rt-0' },
  )
  if (!created.created) throw new Error('not created')
  const dropped: string[] = []
  const lifecycle = new RegistrationLifecycle({
    config,
    store: racingStore(store, conflicts, (id) => concurrent(store, id)),
    logger: silent,
    clock: Date.now,
    onTokensDropped: (group) => dropped.push(group),
  })
  return { store, registration: created.registration, lifecycle, dropped }
}

/** Another writer bumps the version without touching the refresh token. */
async function renameUser(store: Store, id: string): Promise<void> {
  const meta = await store.registrations.getMeta(id)
  if (meta === null) throw new Error('gone')
  await store.registrations.update(id, meta.version, { userName: `user-${meta.version}` })
}

/** A new consent: another refresh token written (the version bumped). */
async function newConsent(store: Store, id: string): Promise<void> {
  const meta = await store.registrations.getMeta(id)
  if (meta === null) throw new Error('gone')
  await store.registrations.update(id, meta.version, {}, { refreshToken: 'rt-new-consent' })
}

async function refreshTokenOf(store: Store, registration: Registration): Promise<string | undefined> {
  return (await store.registrations.get(registration.id))?.secrets.refreshToken
}

describe('RegistrationLifecycle under concurrent writes', () => {
  it('markNeedsConsent reads again after a conflict and marks once (one audit event)', async () => {
    const { store, registration, lifecycle, dropped } = await setup(2, renameUser)
    await lifecycle.markNeedsConsent(registration, 'invalid_grant', 'AADSTS70000')
    const meta = await store.registrations.getMeta(registration.id)
    expect(meta?.status).toBe('needs_consent')
    expect(meta?.statusDetail?.code).toBe('invalid_grant')
    expect(meta?.version).toBe(registration.version + 3)
    const audit = await store.audit.read({})
    expect(audit.items.map((item) => item.type)).toEqual(['registration.status_changed'])
    expect(dropped).toHaveLength(1)
  })

  it('markNeedsConsent gives up after five conflicts and leaves the registration active', async () => {
    const { store, registration, lifecycle } = await setup(5, renameUser)
    await lifecycle.markNeedsConsent(registration, 'invalid_grant', 'AADSTS70000')
    const meta = await store.registrations.getMeta(registration.id)
    expect(meta?.status).toBe('active')
    expect(meta?.version).toBe(registration.version + 5)
    expect((await store.audit.read({})).items).toEqual([])
  })

  it('markNeedsConsent stops when a concurrent writer revoked the registration', async () => {
    const { store, registration, lifecycle } = await setup(1, async (s, id) => {
      const meta = await s.registrations.getMeta(id)
      await s.registrations.update(id, meta!.version, { status: 'revoked' }, { refreshToken: null })
    })
    await lifecycle.markNeedsConsent(registration, 'invalid_grant', 'AADSTS70000')
    expect((await store.registrations.getMeta(registration.id))?.status).toBe('revoked')
    expect((await store.audit.read({})).items).toEqual([])
  })

  it('storeRotatedRefreshToken writes the rotated token on the version a concurrent write left', async () => {
    const { store, registration, lifecycle } = await setup(3, renameUser)
    await lifecycle.storeRotatedRefreshToken(registration, 'rt-0', 'rt-1')
    expect(await refreshTokenOf(store, registration)).toBe('rt-1')
  })

  it('storeRotatedRefreshToken keeps a refresh token another writer stored meanwhile (a new consent)', async () => {
    const { store, registration, lifecycle } = await setup(1, newConsent)
    await lifecycle.storeRotatedRefreshToken(registration, 'rt-0', 'rt-1')
    expect(await refreshTokenOf(store, registration)).toBe('rt-new-consent')
  })

  it('storeRotatedRefreshToken keeps a new consent stored during the grant, before the write began', async () => {
    const { store, registration, lifecycle } = await setup(0, async () => {})
    // `registration` is what was read under the lock with rt-0; the consent lands while Entra answers.
    await newConsent(store, registration.id)
    await lifecycle.storeRotatedRefreshToken(registration, 'rt-0', 'rt-1')
    expect(await refreshTokenOf(store, registration)).toBe('rt-new-consent')
  })

  it('markNeedsConsent with the refused refresh token marks while the registration still holds it', async () => {
    const { store, registration, lifecycle } = await setup(1, renameUser)
    expect(await lifecycle.markNeedsConsent(registration, 'invalid_grant', 'AADSTS70000', 'rt-0')).toBe(true)
    expect((await store.registrations.getMeta(registration.id))?.status).toBe('needs_consent')
  })

  it('markNeedsConsent leaves the registration active when its refresh token was replaced before or during the mark', async () => {
    const before = await setup(0, async () => {})
    await newConsent(before.store, before.registration.id)
    expect(
      await before.lifecycle.markNeedsConsent(before.registration, 'invalid_grant', 'AADSTS70000', 'rt-0'),
    ).toBe(false)
    const during = await setup(1, newConsent)
    expect(
      await during.lifecycle.markNeedsConsent(during.registration, 'invalid_grant', 'AADSTS70000', 'rt-0'),
    ).toBe(false)
    for (const { store, registration } of [before, during]) {
      expect((await store.registrations.getMeta(registration.id))?.status).toBe('active')
      expect(await refreshTokenOf(store, registration)).toBe('rt-new-consent')
      expect((await store.audit.read({})).items).toEqual([])
    }
  })

  it('storeRotatedRefreshToken never gives a revoked registration a token back', async () => {
    const { store, registration, lifecycle } = await setup(1, async (s, id) => {
      const meta = await s.registrations.getMeta(id)
      await s.registrations.update(id, meta!.version, { status: 'revoked' }, { refreshToken: null })
    })
    await lifecycle.storeRotatedRefreshToken(registration, 'rt-0', 'rt-1')
    expect(await refreshTokenOf(store, registration)).toBeUndefined()
    expect((await store.registrations.getMeta(registration.id))?.status).toBe('revoked')
  })
})
