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

describe('LocalTokenCache bound', () => {
  const now = 1_000_000
  const fresh = (name: string) => token(name, now + 3_600_000)

  it('evicts the group written to longest ago: writing to a group makes it the newest', () => {
    const cache = new LocalTokenCache(MARGIN_MS, () => now, 3)
    cache.remember('g1', 'a', fresh('g1a'))
    cache.remember('g2', 'a', fresh('g2a'))
    cache.remember('g3', 'a', fresh('g3a'))
    cache.remember('g1', 'b', fresh('g1b'))
    cache.remember('g4', 'a', fresh('g4a'))
    expect(cache.get('g2', 'a')).toBeUndefined()
    expect(
      [cache.get('g1', 'a'), cache.get('g1', 'b'), cache.get('g3', 'a'), cache.get('g4', 'a')].map(
        (t) => t?.accessToken,
      ),
    ).toEqual(['g1a', 'g1b', 'g3a', 'g4a'])
  })

  it('a group whose last token went stale gives its place back', () => {
    let clock = now
    const cache = new LocalTokenCache(MARGIN_MS, () => clock, 2)
    cache.remember('g2', 'a', token('g2a', now + 3_600_000))
    cache.remember('g1', 'a', token('g1a', now + MARGIN_MS + 1_000))
    clock = now + 1_000
    expect(cache.get('g1', 'a')).toBeUndefined()
    cache.remember('g3', 'a', token('g3a', now + 3_600_000))
    expect(cache.get('g2', 'a')?.accessToken).toBe('g2a')
    expect(cache.get('g3', 'a')?.accessToken).toBe('g3a')
  })
})
