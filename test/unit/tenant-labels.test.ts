// Who consented and the tenant label a consent records, on the memory store: the default label is
// the consenting user's domain, the first consent of a tenant wins, an operator's label stays. And
// an operator's label as typed: trimmed, then 1 to 100 characters of one-line text.
import { randomUUID } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import {
  createAdminRegistration,
  defaultTenantLabel,
  upsertDelegatedRegistration,
} from '../../src/services/registrations.js'
import { tenantLabelFromInput } from '../../src/services/tenant-labels.js'
import { createMemoryStore } from '../../src/store/memory.js'
import { PLAIN_UNICODE, REFUSED_IN_JSON } from '../support/one-line-text.js'
import { newKeyRing } from '../support/store-contract.js'

describe('defaultTenantLabel', () => {
  it("is the UPN's domain in lower case, or nothing when there is none", () => {
    expect(defaultTenantLabel('Ada@Contoso.COM')).toBe('contoso.com')
    expect(defaultTenantLabel('alice_fabrikam.com#EXT#@contoso.onmicrosoft.com')).toBe(
      'contoso.onmicrosoft.com',
    )
    expect(defaultTenantLabel('')).toBeUndefined()
    expect(defaultTenantLabel(undefined)).toBeUndefined()
    expect(defaultTenantLabel('no-at-sign')).toBeUndefined()
    expect(defaultTenantLabel('trailing@')).toBeUndefined()
    expect(defaultTenantLabel(`a@${'x'.repeat(120)}.com`)).toBeUndefined()
  })
})

describe('a consent records who and labels its tenant', () => {
  const now = '2026-11-30T12:00:00.000Z'

  it('admin and delegated: UPN and name on the registration, the first domain as the label', async () => {
    const store = createMemoryStore({ keyRing: newKeyRing() })
    const tenantId = randomUUID()
    const admin = await createAdminRegistration(store, {
      app: 'ms-defender-atp',
      cloud: 'global',
      tenantId,
      now,
      consentedBy: { upn: 'ada@contoso.example', name: 'Ada Admin' },
    })
    expect(admin.registration).toMatchObject({
      userName: 'ada@contoso.example',
      userDisplayName: 'Ada Admin',
    })
    const delegated = await upsertDelegatedRegistration(store, {
      app: 'ms-graph-mail-listener',
      cloud: 'global',
      tenantId,
      now,
      userOid: randomUUID(),
      userName: 'bob@other.example',
      consentedBy: { upn: 'bob@other.example', name: 'Bob' },
      refreshToken: 'rt',
    })
    expect(delegated.registration).toMatchObject({ userName: 'bob@other.example', userDisplayName: 'Bob' })
    expect(await store.tenantLabels.get([tenantId])).toEqual(new Map([[tenantId, 'contoso.example']]))
    await store.tenantLabels.set(tenantId, 'Contoso')
    await createAdminRegistration(store, {
      app: 'ms-defender-atp',
      cloud: 'global',
      tenantId,
      now,
      consentedBy: { upn: 'eve@contoso.example', name: '' },
    })
    expect(await store.tenantLabels.get([tenantId])).toEqual(new Map([[tenantId, 'Contoso']]))
    await store.close()
  })

  it('without a UPN: no label, no who, and the registration is made all the same', async () => {
    const store = createMemoryStore({ keyRing: newKeyRing() })
    const tenantId = randomUUID()
    const made = await createAdminRegistration(store, {
      app: 'ms-defender-atp',
      cloud: 'global',
      tenantId,
      now,
    })
    expect(made.registration).not.toHaveProperty('userName')
    expect(made.registration).not.toHaveProperty('userDisplayName')
    expect(await store.tenantLabels.get([tenantId])).toEqual(new Map())
    await store.close()
  })
})

describe("an operator's label input", () => {
  it('is trimmed first, then must be 1 to 100 characters', () => {
    expect(tenantLabelFromInput(` ${'a'.repeat(100)} `)).toBe('a'.repeat(100))
    expect(tenantLabelFromInput(`\u00a0 Contoso (EU)\u3000`)).toBe('Contoso (EU)')
    expect(() => tenantLabelFromInput(` ${'a'.repeat(101)} `)).toThrow(/label must be 1 to 100 characters/)
    for (const blank of ['', '   ', '\u00a0']) {
      expect(() => tenantLabelFromInput(blank), JSON.stringify(blank)).toThrow(/label must be/)
    }
  })

  it('refuses a control character inside the label or at its ends (trimming does not clean it)', () => {
    for (const input of ['Con\ntoso', 'Contoso\n', '\tContoso', 'Contoso\u007f']) {
      expect(() => tenantLabelFromInput(input), JSON.stringify(input)).toThrow(
        expect.objectContaining({ code: 'invalid_request' }),
      )
    }
  })

  it.each(REFUSED_IN_JSON)('refuses a %s, inside the label or at its ends', (_name, character) => {
    for (const input of [`Con${character}toso`, `Contoso${character}`, `${character} Contoso`]) {
      expect(() => tenantLabelFromInput(input), JSON.stringify(input)).toThrow(
        expect.objectContaining({ code: 'invalid_request' }),
      )
    }
  })

  it('takes plain text in any script', () => {
    expect(tenantLabelFromInput(PLAIN_UNICODE)).toBe(PLAIN_UNICODE)
  })
})
