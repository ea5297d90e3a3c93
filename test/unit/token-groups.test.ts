import { describe, expect, it } from 'vitest'
import { LocalTokenCache } from '../../src/services/token-groups.js'

const MARGIN_MS = 300_000

function token(accessToken: string, expiresAt: number) {
  return { accessToken, expiresAt, scope: 'https://graph.microsoft.com/.default' }
}

describe('LocalTokenCache', () => {
  it('holds a token per group and scope, and forgets a whole group at once', () => {
    let now = 1_000_000
    const cache = new LocalTokenCache(MARGIN_MS, () => now)
    const expiresAt = now + 3_600_000
    cache.remember('tenant:a', 'scope-1', token('a1', expiresAt))
    cache.remember('tenant:a', 'scope-2', token('a2', expiresAt))
    cache.remember('tenant:b', 'scope-1', token('b1', expiresAt))
    expect(cache.get('tenant:a', 'scope-1')).toMatchObject({ accessToken: 'a1', requestedScope: 'scope-1' })
    expect(cache.get('tenant:a', 'scope-2')?.accessToken).toBe('a2')
    expect(cache.get('tenant:a', 'scope-3')).toBeUndefined()
    cache.forgetGroup('tenant:a')
    expect(cache.get('tenant:a', 'scope-1')).toBeUndefined()
    expect(cache.get('tenant:a', 'scope-2')).toBeUndefined()
    expect(cache.get('tenant:b', 'scope-1')?.accessToken).toBe('b1')
    // within the refresh margin of its expiry a token is no longer served, and is dropped
    now = expiresAt - MARGIN_MS
    expect(cache.get('tenant:b', 'scope-1')).toBeUndefined()
    now = 1_000_000
    expect(cache.get('tenant:b', 'scope-1')).toBeUndefined()
  })

  it('keeps no token that is already within the margin', () => {
    const now = 1_000_000
    const cache = new LocalTokenCache(MARGIN_MS, () => now)
    cache.remember('reg:r1', 'scope', token('late', now + MARGIN_MS))
    expect(cache.get('reg:r1', 'scope')).toBeUndefined()
  })
})
