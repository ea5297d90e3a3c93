// BrowserSessions without HTTP: records under the SHA-256 of the session id, stored as secrets
// (sealed), read back until they expire, ended by sign-out and by the next sign-in, each sign-in
// and sign-out audited with the area's own events.
import { createHash, randomBytes } from 'node:crypto'
import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { KeyRing } from '../../src/crypto/envelope.js'
import { consoleSessions } from '../../src/services/operator-auth.js'
import { MANAGE_SESSION_TTL_MS, manageSessions } from '../../src/services/tenant-admin.js'
import { createMemoryStore } from '../../src/store/memory.js'
import type { EphemeralStore } from '../../src/store/types.js'

const log = pino({ level: 'silent' })
const sha256 = (value: string) => createHash('sha256').update(value, 'utf8').digest('hex')

/** A memory store whose ephemeral calls are recorded (key and options; values only as stored). */
function recordedStore(clock: () => number) {
  const store = createMemoryStore({ keyRing: new KeyRing([{ id: 'k1', key: randomBytes(32) }]), clock })
  const calls: Array<{ op: string; key: string; secret?: boolean | undefined }> = []
  const inner = store.ephemeral
  const ephemeral: EphemeralStore = {
    put: (key, value, ttlMs, options) => {
      calls.push({ op: 'put', key, secret: options?.secret })
      return inner.put(key, value, ttlMs, options)
    },
    take: (key, options) => inner.take(key, options),
    get: (key, options) => {
      calls.push({ op: 'get', key, secret: options?.secret })
      return inner.get(key, options)
    },
    claim: (key, ttlMs) => inner.claim(key, ttlMs),
    delete: (key) => {
      calls.push({ op: 'delete', key })
      return inner.delete(key)
    },
  }
  return { store: { ...store, ephemeral }, calls }
}

describe('BrowserSessions', () => {
  it('stores the session as a secret under the SHA-256 of its id, and reads it back', async () => {
    let now = 1_000_000
    const { store, calls } = recordedStore(() => now)
    const sessions = consoleSessions(store, () => now)
    const { id, data } = await sessions.signIn({ operator: 'alice' }, log)
    expect(id).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(data).toEqual({
      operator: 'alice',
      csrf: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
      createdAt: now,
    })
    expect(calls).toEqual([{ op: 'put', key: `admin-session:${sha256(id)}`, secret: true }])
    now += 60_000
    expect(await sessions.read(id)).toEqual(data)
    expect(calls[1]).toEqual({ op: 'get', key: `admin-session:${sha256(id)}`, secret: true })
  })

  it('finds nothing for a missing, malformed, unknown or expired id, without a lookup for a malformed one', async () => {
    let now = 1_000_000
    const { store, calls } = recordedStore(() => now)
    const sessions = manageSessions(store, () => now)
    const identity = { app: 'mail', cloud: 'global', tenantId: 't', oid: 'o', name: 'n' } as const
    const { id } = await sessions.signIn(identity, log)
    expect(await sessions.read(undefined)).toBeNull()
    expect(await sessions.read(`${id}x`)).toBeNull()
    expect(calls.filter((call) => call.op === 'get')).toEqual([])
    expect(await sessions.read('A'.repeat(43))).toBeNull()
    now += MANAGE_SESSION_TTL_MS + 1
    expect(await sessions.read(id)).toBeNull()
  })

  it('ends the session on sign-out and the previous one on the next sign-in; audits both areas’ events', async () => {
    const now = 1_000_000
    const { store } = recordedStore(() => now)
    const sessions = consoleSessions(store, () => now)
    const first = await sessions.signIn({ operator: 'alice' }, log)
    const second = await sessions.signIn({ operator: 'alice' }, log, first.id)
    expect(await sessions.read(first.id)).toBeNull()
    expect(await sessions.read(second.id)).toEqual(second.data)
    await sessions.signOut(second, log)
    expect(await sessions.read(second.id)).toBeNull()

    const manage = manageSessions(store, () => now)
    const identity = { app: 'mail', cloud: 'global', tenantId: 't1', oid: 'o1', name: 'admin@t1' } as const
    await manage.signOut(await manage.signIn(identity, log), log)

    const { items } = await store.audit.read({ limit: 10 })
    expect(
      items.map(({ type, actor, tenantId, app, detail }) => ({ type, actor, tenantId, app, detail })),
    ).toEqual([
      {
        type: 'operator.signed_in',
        actor: 'operator:alice',
        tenantId: undefined,
        app: undefined,
        detail: { via: 'console' },
      },
      {
        type: 'operator.signed_in',
        actor: 'operator:alice',
        tenantId: undefined,
        app: undefined,
        detail: { via: 'console' },
      },
      {
        type: 'operator.signed_out',
        actor: 'operator:alice',
        tenantId: undefined,
        app: undefined,
        detail: { via: 'console' },
      },
      {
        type: 'tenant_admin.signed_in',
        actor: 'tenant-admin:t1/o1',
        tenantId: 't1',
        app: 'mail',
        detail: { cloud: 'global', name: 'admin@t1' },
      },
      {
        type: 'tenant_admin.signed_out',
        actor: 'tenant-admin:t1/o1',
        tenantId: 't1',
        app: 'mail',
        detail: { cloud: 'global' },
      },
    ])
  })
})
