// A grant's upstream call is bounded by what is left of the request's deadline. That remainder is
// rarely a whole number of milliseconds (the deadline is taken from the request's arrival time), and
// AbortSignal.timeout refuses a fraction with a RangeError, which once turned every such call into
// an instant `upstream_unavailable` without asking Microsoft at all.
import { describe, expect, it } from 'vitest'
import type { IdentityProvider, TokenGrant } from '../../src/entra/types.js'
import { createMetrics } from '../../src/metrics.js'
import { requestGrant } from '../../src/services/token-grant.js'
import type { AppScopes } from '../../src/services/token-scope.js'
import type { Registration } from '../../src/store/types.js'
import { testConfig } from '../support/config.js'

const registration: Registration = {
  id: '6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b',
  app: 'ms-graph-mail',
  cloud: 'global',
  tenantId: '7c3b1e5a-4d2f-4b8e-9a61-2f0c8d4e6b13',
  kind: 'admin',
  status: 'active',
  createdAt: '2026-11-30T10:00:00.000Z',
  updatedAt: '2026-11-30T10:00:00.000Z',
  consentedAt: '2026-11-30T10:00:00.000Z',
  version: 1,
}

describe('requestGrant under a deadline', () => {
  it('calls the identity provider when the time left is a fraction of a millisecond off a whole number', async () => {
    const config = testConfig({ authorityUrl: 'https://login.example.test' })
    const now = 1_796_000_000_000
    const calls: AbortSignal[] = []
    const grant: TokenGrant = {
      accessToken: 'at',
      expiresIn: 3600,
      scope: 'https://graph.microsoft.com/.default',
    }
    const idp = {
      clientCredentials: async (_app: unknown, _tid: string, _scope: string, signal?: AbortSignal) => {
        if (signal !== undefined) calls.push(signal)
        return grant
      },
    } as unknown as IdentityProvider
    const app = { resolved: {}, defaultScope: 'https://graph.microsoft.com/.default' } as unknown as AppScopes
    // Less time left than UPSTREAM_TIMEOUT_MS, so the remainder (2533.89 ms) bounds the call.
    const deadlineAt = now + 2_533.895_263_671_875
    expect(deadlineAt - now).toBeLessThan(config.tokens.upstreamTimeoutMs)
    const answer = await requestGrant(
      { config, idp, metrics: createMetrics(), clock: () => now },
      { app, scope: app.defaultScope, deadlineAt },
      registration,
      undefined,
    )
    expect(answer).toBe(grant)
    expect(calls).toHaveLength(1)
    expect(calls[0]!.aborted).toBe(false)
  })
})
