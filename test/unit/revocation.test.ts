// The revocation service on the memory store: compare-and-set retries, tenant scoping, which token
// cache groups it deletes, idempotency, and what it records.
import { randomBytes, randomUUID } from 'node:crypto'
import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { KeyRing } from '../../src/crypto/envelope.js'
import { revokeRegistration, revokeTenant } from '../../src/services/revocation.js'
import { createMemoryStore } from '../../src/store/memory.js'
import type { Registration, Store } from '../../src/store/types.js'

const TENANT = '7c3b1e5a-4d2f-4b8e-9a61-2f0c8d4e6b13'
const OTHER_TENANT = 'a9e4f7c2-1b3d-4e5f-8a7b-6c5d4e3f2a10'
const log = pino({ level: 'silent' })
const operator = { kind: 'operator' as const, name: 'alice' }
const token = { accessToken: 'at', expiresAt: Date.now() + 3_600_000, scope: 's' }

function setup() {
  const store = createMemoryStore({ keyRing: new KeyRing([{ id: 'k1', key: randomBytes(32) }]) })
  const deps = { store, clock: () => Date.parse('2026-01-02T03:04:05.000Z'), log }
  return { store, deps }
}

async function create(
  store: Store,
  fields: Partial<Registration> & Pick<Registration, 'kind'>,
  refreshToken?: string,
): Promise<Registration> {
  const now = new Date().toISOString()
  const result = await store.registrations.create(
    {
      id: randomUUID(),
      app: 'ms-graph-mail',
      cloud: 'global',
      tenantId: TENANT,
      status: 'active',
      createdAt: now,
      updatedAt: now,
      consentedAt: now,
      ...(fields.kind === 'delegated' ? { userOid: randomUUID() } : {}),
      ...fields,
    },
    { key: randomBytes(32).toString('base64'), ...(refreshToken === undefined ? {} : { refreshToken }) },
  )
  if (!result.created) throw new Error('not created')
  return result.registration
}

describe('revokeRegistration', () => {
  it('retries the compare-and-set when a concurrent write bumped the version', async () => {
    const { store, deps } = setup()
    const registration = await create(store, { kind: 'delegated', app: 'ms-graph-mail-listener' }, 'rt-1')
    const realUpdate = store.registrations.update.bind(store.registrations)
    let raced = false
    store.registrations.update = async (id, version, patch, secrets) => {
      if (!raced) {
        raced = true
        // A token refresh stores a rotated refresh token just before our write.
        await realUpdate(id, version, {}, { refreshToken: 'rt-2' })
      }
      return realUpdate(id, version, patch, secrets)
    }
    const result = await revokeRegistration(deps, registration.id, { actor: operator, reason: 'gone' })
    expect(raced).toBe(true)
    expect(result.alreadyRevoked).toBe(false)
    expect(result.registration.version).toBe(registration.version + 2)
    const stored = await store.registrations.get(registration.id)
    expect(stored?.registration.status).toBe('revoked')
    expect(stored?.secrets.refreshToken).toBeUndefined()
    expect(stored?.registration.statusDetail).toEqual({
      code: 'operator_revoked',
      at: '2026-01-02T03:04:05.000Z',
      by: 'alice',
      reason: 'gone',
    })
  })

  it('treats a registration outside the tenant scope exactly like a missing one', async () => {
    const { store, deps } = setup()
    const other = await create(store, { kind: 'admin', tenantId: OTHER_TENANT })
    const scope = { tenantId: TENANT, app: 'ms-graph-mail' }
    const actor = {
      kind: 'tenant_admin' as const,
      tenantId: TENANT,
      oid: randomUUID(),
      name: 'admin@contoso.example',
    }
    const outside = revokeRegistration(deps, other.id, { actor, reason: 'x', scope })
    await expect(outside).rejects.toMatchObject({
      code: 'not_found',
      message: `registration ${other.id} not found`,
    })
    const missingId = randomUUID()
    await expect(revokeRegistration(deps, missingId, { actor, reason: 'x', scope })).rejects.toMatchObject({
      code: 'not_found',
      message: `registration ${missingId} not found`,
    })
    const wrongApp = await create(store, { kind: 'admin', app: 'ms-graph-user' })
    await expect(revokeRegistration(deps, wrongApp.id, { actor, reason: 'x', scope })).rejects.toMatchObject({
      code: 'not_found',
    })
    expect((await store.registrations.getMeta(other.id))?.status).toBe('active')
    expect((await store.registrations.getMeta(wrongApp.id))?.status).toBe('active')
  })

  it('keeps the shared app-only tokens while another admin registration of the tenant is active', async () => {
    const { store, deps } = setup()
    const first = await create(store, { kind: 'admin' })
    const second = await create(store, { kind: 'admin' })
    const group = `tenant:ms-graph-mail:global:${TENANT}`
    await store.tokens.set(group, 's', token, 60_000)
    await revokeRegistration(deps, first.id, { actor: operator, reason: 'one of two' })
    expect(await store.tokens.get(group, 's')).not.toBeNull()
    await revokeRegistration(deps, second.id, { actor: operator, reason: 'the last one' })
    expect(await store.tokens.get(group, 's')).toBeNull()
  })

  it('is idempotent: the original detail is kept and nothing more is recorded', async () => {
    const { store, deps } = setup()
    const registration = await create(store, { kind: 'admin' })
    const first = await revokeRegistration(deps, registration.id, { actor: operator, reason: 'first' })
    const second = await revokeRegistration(
      { ...deps, clock: () => Date.parse('2027-01-01T00:00:00.000Z') },
      registration.id,
      { actor: { kind: 'operator', name: 'bob' }, reason: 'second' },
    )
    expect(second.alreadyRevoked).toBe(true)
    expect(second.registration.statusDetail).toEqual(first.registration.statusDetail)
    const events = (await store.audit.read({ limit: 500 })).items
    expect(events.filter((e) => e.type === 'registration.revoked')).toHaveLength(1)
    expect(events[0]).toMatchObject({ actor: 'operator:alice', registrationId: registration.id })
  })

  it('refuses an empty reason before touching anything', async () => {
    const { store, deps } = setup()
    const registration = await create(store, { kind: 'admin' })
    await expect(
      revokeRegistration(deps, registration.id, { actor: operator, reason: ' \n ' }),
    ).rejects.toMatchObject({
      code: 'invalid_request',
      message: 'reason must not be empty',
    })
    expect((await store.registrations.getMeta(registration.id))?.status).toBe('active')
  })
})

describe('revokeTenant', () => {
  it('revokes every registration of the tenant (or of one app) and only of that tenant', async () => {
    const { store, deps } = setup()
    const mail = await create(store, { kind: 'admin' })
    const user = await create(store, { kind: 'admin', app: 'ms-graph-user' })
    const listener = await create(store, { kind: 'delegated', app: 'ms-graph-mail-listener' }, 'rt')
    const other = await create(store, { kind: 'admin', tenantId: OTHER_TENANT })
    await store.tokens.set(`tenant:ms-graph-user:global:${TENANT}`, 's', token, 60_000)
    await store.tokens.set(`reg:${listener.id}`, 's', token, 60_000)

    const onlyUser = await revokeTenant(deps, TENANT, { actor: operator, reason: 'r', app: 'ms-graph-user' })
    expect(onlyUser.revoked.map((r) => r.id)).toEqual([user.id])
    expect(await store.tokens.get(`tenant:ms-graph-user:global:${TENANT}`, 's')).toBeNull()
    expect((await store.registrations.getMeta(mail.id))?.status).toBe('active')

    const all = await revokeTenant(deps, TENANT, { actor: operator, reason: 'r' })
    expect(all.revoked.map((r) => r.id).sort()).toEqual([mail.id, listener.id].sort())
    expect(all.alreadyRevoked).toBe(1)
    expect(await store.tokens.get(`reg:${listener.id}`, 's')).toBeNull()
    expect((await store.registrations.get(listener.id))?.secrets.refreshToken).toBeUndefined()
    expect((await store.registrations.getMeta(other.id))?.status).toBe('active')

    const events = (await store.audit.read({ limit: 500 })).items
    expect(events.filter((e) => e.type === 'tenant.revoked').map((e) => e.detail)).toEqual([
      { reason: 'r', code: 'operator_revoked', revoked: 1, alreadyRevoked: 0 },
      { reason: 'r', code: 'operator_revoked', revoked: 2, alreadyRevoked: 1 },
    ])
    expect(events.filter((e) => e.type === 'registration.revoked')).toHaveLength(3)
  })

  it('answers not_found for a tenant without registrations', async () => {
    const { deps } = setup()
    await expect(revokeTenant(deps, TENANT, { actor: operator, reason: 'r' })).rejects.toMatchObject({
      code: 'not_found',
    })
  })
})
