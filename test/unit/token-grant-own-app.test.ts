// A refused credential of a tenant's own app registration (its client secret, or a public client
// whose "Allow public client flows" was turned off) is the tenant's to fix: obtain-token answers
// upstream_error naming the fix, never broker_misconfigured with an operator alert; the hosted
// app's refused credentials stay an operator problem.
import type { FastifyBaseLogger } from 'fastify'
import { pino } from 'pino'
import { describe, expect, it } from 'vitest'
import { UpstreamError } from '../../src/entra/types.js'
import { grantFailure } from '../../src/services/token-grant.js'
import type { Registration } from '../../src/store/types.js'
import { testConfig } from '../support/config.js'

const registration: Registration = {
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

function capture(): { logger: FastifyBaseLogger; lines: Array<{ level: number; msg: string }> } {
  const lines: Array<{ level: number; msg: string }> = []
  const logger = pino(
    { level: 'debug' },
    { write: (line: string) => lines.push(JSON.parse(line) as { level: number; msg: string }) },
  ) as unknown as FastifyBaseLogger
  return { logger, lines }
}

describe('a refused credential of a tenant’s own app', () => {
  const config = testConfig({ authorityUrl: 'https://login.example.test' })
  const publicClientsOff = new UpstreamError('oauth', 'refresh: AADSTS7000218', {
    error: 'invalid_client',
    errorCodes: [7000218],
    status: 401,
  })

  it('answers upstream_error naming the tenant’s fix, without an operator alert', () => {
    const { logger, lines } = capture()
    const own = { ...registration, ownClientId: '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d' }
    const failure = grantFailure(publicClientsOff, own, config, logger)
    expect(failure.error.code).toBe('upstream_error')
    expect(failure.error.message).toContain('Allow public client flows')
    expect(lines.some((line) => line.msg.includes('OPERATOR ACTION'))).toBe(false)
    expect(lines.map((line) => line.level)).toEqual([40])
  })

  it('keeps the hosted app’s refused credentials an operator problem', () => {
    const { logger, lines } = capture()
    const failure = grantFailure(publicClientsOff, registration, config, logger)
    expect(failure.error.code).toBe('broker_misconfigured')
    expect(lines.some((line) => line.msg.includes('OPERATOR ACTION'))).toBe(true)
  })
})
