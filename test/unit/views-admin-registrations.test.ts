// The console's registrations table: a tenant's own app registration shows as such, with the app's
// client id; a hosted-app registration shows no such line.
import { describe, expect, it } from 'vitest'
import type { OperatorRegistration } from '../../src/services/admin-queries.js'
import { registrationsTable } from '../../src/views/admin-registrations.js'

const base: OperatorRegistration = {
  id: '6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b',
  app: 'ms-graph-mail-listener',
  cloud: 'global',
  tenantId: '7c3b1e5a-4d2f-4b8e-9a61-2f0c8d4e6b13',
  kind: 'delegated',
  userOid: '3f6c2a1e-8b4d-4c7a-9e15-0a1b2c3d4e02',
  userName: 'user@contoso.example',
  status: 'active',
  createdAt: '2026-11-30T10:00:00.000Z',
  updatedAt: '2026-11-30T10:00:00.000Z',
  consentedAt: '2026-11-30T10:00:00.000Z',
  version: 1,
}

describe('console registrations table', () => {
  it('names the tenant’s own app registration by its client id', () => {
    const ownClientId = '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d'
    const now = Date.parse('2026-11-30T12:00:00Z')
    const own = registrationsTable([{ ...base, ownClientId }], now).value
    expect(own).toContain(`own app ${ownClientId}`)
    const hosted = registrationsTable([base], now).value
    expect(hosted).not.toContain('own app')
  })
})
