// findSubscriptions stands between the consent result page and Resource Manager: whatever the
// listing does, it answers an outcome and never throws, and it calls nothing without a token.
import { pino } from 'pino'
import { describe, expect, it } from 'vitest'
import { type ResourceManager, ResourceManagerError } from '../../src/entra/resource-manager.js'
import { findSubscriptions } from '../../src/services/azure-subscriptions.js'

const log = pino({ level: 'silent' })
const base = { cloud: 'global' as const, log, app: 'ms-azure-sc', tenantId: 't' }

function manager(
  listSubscriptions: ResourceManager['listSubscriptions'],
): ResourceManager & { calls: number } {
  const wrapped = {
    calls: 0,
    listSubscriptions: (...args: Parameters<ResourceManager['listSubscriptions']>) => {
      wrapped.calls++
      return listSubscriptions(...args)
    },
  }
  return wrapped
}

describe('findSubscriptions', () => {
  it('passes the listing through, with the cloud and token it was given', async () => {
    const seen: unknown[] = []
    const rm = manager(async (cloud, token) => {
      seen.push(cloud, token)
      return { subscriptions: [], more: false }
    })
    expect(await findSubscriptions({ ...base, resourceManager: rm, accessToken: 'arm-token' })).toEqual({
      kind: 'listed',
      subscriptions: [],
      more: false,
    })
    expect(seen).toEqual(['global', 'arm-token'])
  })

  it('turns a Resource Manager failure into its kind, anything else into unavailable, and never throws', async () => {
    const refused = manager(async () => {
      throw new ResourceManagerError('unauthorized', 'refused', 'InvalidAuthenticationToken', 401)
    })
    expect(await findSubscriptions({ ...base, resourceManager: refused, accessToken: 'x' })).toEqual({
      kind: 'failed',
      reason: 'unauthorized',
    })
    const broken = manager(async () => {
      throw new TypeError('a bug')
    })
    expect(await findSubscriptions({ ...base, resourceManager: broken, accessToken: 'x' })).toEqual({
      kind: 'failed',
      reason: 'unavailable',
    })
  })

  it('calls nothing without a token', async () => {
    const rm = manager(async () => ({ subscriptions: [], more: false }))
    expect(await findSubscriptions({ ...base, resourceManager: rm, accessToken: undefined })).toEqual({
      kind: 'failed',
      reason: 'no_token',
    })
    expect(rm.calls).toBe(0)
  })
})
