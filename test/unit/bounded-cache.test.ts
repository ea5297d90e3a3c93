// The one bounded cache: size bound, eviction order, time-to-live, conditional delete.
import { describe, expect, it } from 'vitest'
import { BoundedCache } from '../../src/bounded-cache.js'

describe('BoundedCache', () => {
  it('never holds more than maxEntries; first-written evicts the oldest write whatever was read', () => {
    const cache = new BoundedCache<number>({ maxEntries: 2 })
    cache.set('a', 1)
    cache.set('b', 2)
    expect(cache.get('a')).toBe(1)
    cache.set('c', 3)
    expect(cache.size).toBe(2)
    expect([cache.get('a'), cache.get('b'), cache.get('c')]).toEqual([undefined, 2, 3])
    // rewriting a key makes it the newest write
    cache.set('b', 20)
    cache.set('d', 4)
    expect([cache.get('b'), cache.get('c'), cache.get('d')]).toEqual([20, undefined, 4])
  })

  it('least-recently-used keeps what was read', () => {
    const cache = new BoundedCache<number>({ maxEntries: 2, evict: 'least-recently-used' })
    cache.set('a', 1)
    cache.set('b', 2)
    expect(cache.get('a')).toBe(1)
    cache.set('c', 3)
    expect([cache.get('a'), cache.get('b'), cache.get('c')]).toEqual([1, undefined, 3])
  })

  it('entries expire ttlMs after they were written', () => {
    let now = 1_000
    const cache = new BoundedCache<string>({ maxEntries: 10, ttlMs: 100, now: () => now })
    cache.set('a', 'x')
    now = 1_099
    expect(cache.get('a')).toBe('x')
    now = 1_100
    expect(cache.get('a')).toBeUndefined()
    expect(cache.size).toBe(0)
    cache.set('a', 'y')
    now = 1_150
    expect(cache.get('a')).toBe('y')
  })

  it('delete with a value spares a newer entry', () => {
    const cache = new BoundedCache<string>({ maxEntries: 10 })
    cache.set('k', 'new')
    cache.delete('k', 'old')
    expect(cache.get('k')).toBe('new')
    cache.delete('k', 'new')
    expect(cache.get('k')).toBeUndefined()
  })

  it('refuses a bound that is not a positive integer', () => {
    expect(() => new BoundedCache({ maxEntries: 0 })).toThrow(RangeError)
    expect(() => new BoundedCache({ maxEntries: 1.5 })).toThrow(RangeError)
  })
})
