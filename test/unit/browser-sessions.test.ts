// BrowserSessions without HTTP: records under the SHA-256 of the session id, stored as secrets
// (sealed), read back until they expire, ended by sign-out and by the next sign-in, each sign-in
// and sign-out audited with the area's own events; console sessions read only while their
// operator's configured token is the one they were opened with.
import { createHash, randomBytes } from 'node:crypto'
import pino from 'pino'
import { describe, expect, it } from 'vitest'
import type { OperatorToken } from '../../src/config/types.js'
import { KeyRing } from '../../src/crypto/envelope.js'
import { consoleSessions } from '../../src/services/operator-auth.js'
import { MANAGE_SESSION_TTL_MS, manageSessions } from '../../src/services/tenant-admin.js'
import { createMemoryStore } from '../../src/store/memory.js'
import type { EphemeralStore } from '../../src/store/types.js'

const log = pino({ level: 'silent' })
const sha256 = (value: string) => createHash('sha256').update(value, 'utf8').digest('hex')
const ALICE = 'alice-token-0123456789abcdefghij'
/** The console's operators, as a test changes them between reads (a restart with a new config). */
const operators = (...entries: OperatorToken[]): { operatorTokens: OperatorToken[] } => ({
  operatorTokens: entries,
})

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
    const sessions = consoleSessions(store, () => now, operators({ name: 'alice', sha256: sha256(ALICE) }))
    const { id, data } = await sessions.signIn({ operator: 'alice' }, log)
    expect(id).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(data).toEqual({
      operator: 'alice',
      csrf: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
      createdAt: now,
      credential: expect.stringMatching(/^[A-Za-z0-9_-]{22}$/),
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
    const sessions = consoleSessions(store, () => now, operators({ name: 'alice', sha256: sha256(ALICE) }))
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

describe('console sessions, bound to the operator’s token', () => {
  const BOB = 'bob-token-0123456789abcdefghijkl'

  it('are read while the operator keeps the token they signed in with, across instances and hex case', async () => {
    const now = 1_000_000
    const { store } = recordedStore(() => now)
    const alice = { name: 'alice', sha256: sha256(ALICE) }
    const { id, data } = await consoleSessions(store, () => now, operators(alice)).signIn(
      { operator: 'alice' },
      log,
    )
    // Another instance, or this one restarted: the same token, the hash written in capitals, another operator added.
    const restarted = consoleSessions(
      store,
      () => now,
      operators({ name: 'bob', sha256: sha256(BOB) }, { ...alice, sha256: alice.sha256.toUpperCase() }),
    )
    expect(await restarted.read(id)).toEqual(data)
  })

  it('end once the operator is removed or their token changed, the record deleted for good', async () => {
    const now = 1_000_000
    const { store, calls } = recordedStore(() => now)
    const config = operators({ name: 'alice', sha256: sha256(ALICE) }, { name: 'bob', sha256: sha256(BOB) })
    const sessions = consoleSessions(store, () => now, config)
    const alices = await sessions.signIn({ operator: 'alice' }, log)
    const bobs = await sessions.signIn({ operator: 'bob' }, log)

    config.operatorTokens = [{ name: 'bob', sha256: sha256(BOB) }]
    expect(await sessions.read(alices.id)).toBeNull()
    expect(calls.at(-1)).toEqual({ op: 'delete', key: `admin-session:${sha256(alices.id)}` })
    // Bob's token is still his: his session stays.
    expect(await sessions.read(bobs.id)).toEqual(bobs.data)

    config.operatorTokens = [{ name: 'bob', sha256: sha256(`${BOB}-rotated`) }]
    expect(await sessions.read(bobs.id)).toBeNull()
    expect(calls.at(-1)).toEqual({ op: 'delete', key: `admin-session:${sha256(bobs.id)}` })

    // Putting the old tokens back does not bring the ended sessions back.
    config.operatorTokens = [
      { name: 'alice', sha256: sha256(ALICE) },
      { name: 'bob', sha256: sha256(BOB) },
    ]
    expect(await sessions.read(alices.id)).toBeNull()
    expect(await sessions.read(bobs.id)).toBeNull()
  })

  it('end when their token moved to another operator’s name', async () => {
    const now = 1_000_000
    const { store } = recordedStore(() => now)
    const config = operators({ name: 'alice', sha256: sha256(ALICE) })
    const sessions = consoleSessions(store, () => now, config)
    const { id } = await sessions.signIn({ operator: 'alice' }, log)
    config.operatorTokens = [{ name: 'alice2', sha256: sha256(ALICE) }]
    expect(await sessions.read(id)).toBeNull()
  })

  it('end when opened before sessions were bound (a record without a credential), or with a forged one', async () => {
    const now = 1_000_000
    const { store, calls } = recordedStore(() => now)
    const sessions = consoleSessions(store, () => now, operators({ name: 'alice', sha256: sha256(ALICE) }))
    const write = (id: string, record: object) =>
      store.ephemeral.put(`admin-session:${sha256(id)}`, JSON.stringify(record), 60_000, { secret: true })
    const previousRelease = 'P'.repeat(43)
    await write(previousRelease, { operator: 'alice', csrf: 'c'.repeat(43), createdAt: now })
    expect(await sessions.read(previousRelease)).toBeNull()
    expect(calls.at(-1)).toEqual({ op: 'delete', key: `admin-session:${sha256(previousRelease)}` })
    // A record holding the hash itself, or another session's fingerprint, is not this session's.
    const other = await sessions.signIn({ operator: 'alice' }, log)
    for (const [i, credential] of [sha256(ALICE), other.data.credential].entries()) {
      const id = `${i}`.repeat(43)
      await write(id, { operator: 'alice', csrf: 'c'.repeat(43), createdAt: now, credential })
      expect(await sessions.read(id), `forged ${i}`).toBeNull()
    }
  })

  it('keep no usable trace of the token: neither it nor its hash, a fingerprint differing per session', async () => {
    const now = 1_000_000
    const { store } = recordedStore(() => now)
    const sessions = consoleSessions(store, () => now, operators({ name: 'alice', sha256: sha256(ALICE) }))
    const first = await sessions.signIn({ operator: 'alice' }, log)
    const second = await sessions.signIn({ operator: 'alice' }, log)
    for (const { id } of [first, second]) {
      const record = (await store.ephemeral.get(`admin-session:${sha256(id)}`, { secret: true })) ?? ''
      expect(record).toContain('"credential"')
      expect(record).not.toContain(ALICE)
      expect(record.toLowerCase()).not.toContain(sha256(ALICE))
      expect(record).not.toContain(Buffer.from(sha256(ALICE), 'hex').toString('base64url').slice(0, 16))
    }
    expect(first.data.credential).not.toBe(second.data.credential)
  })

  it('leave the manage pages’ sessions unbound (they hold an Entra sign-in, no operator token)', async () => {
    const now = 1_000_000
    const { store } = recordedStore(() => now)
    const identity = { app: 'mail', cloud: 'global', tenantId: 't', oid: 'o', name: 'n' } as const
    const { data } = await manageSessions(store, () => now).signIn(identity, log)
    expect(data).not.toHaveProperty('credential')
  })
})
