// The one compare-and-set retry loop: how many attempts, what it returns, when it pauses.
import { describe, expect, it } from 'vitest'
import { CONFLICT, retryOnConflict } from '../../src/store/compare-and-set.js'

describe('retryOnConflict', () => {
  it('returns the first result that is not CONFLICT, passing each attempt its number', async () => {
    const seen: number[] = []
    const result = await retryOnConflict({ attempts: 5 }, async (attempt) => {
      seen.push(attempt)
      return attempt < 2 ? CONFLICT : `written on attempt ${attempt}`
    })
    expect(result).toBe('written on attempt 2')
    expect(seen).toEqual([0, 1, 2])
  })

  it('gives up after `attempts` conflicts and says so with CONFLICT', async () => {
    let calls = 0
    const result = await retryOnConflict({ attempts: 4 }, async () => {
      calls++
      return CONFLICT
    })
    expect(result).toBe(CONFLICT)
    expect(calls).toBe(4)
  })

  it('returns falsy results (undefined, false) as results, not as conflicts', async () => {
    expect(await retryOnConflict({ attempts: 3 }, async () => undefined)).toBeUndefined()
    expect(await retryOnConflict({ attempts: 3 }, async () => false)).toBe(false)
  })

  it('pauses between attempts only, never after the last one', async () => {
    const asked: number[] = []
    await retryOnConflict(
      {
        attempts: 3,
        backoffMs: (attempt) => {
          asked.push(attempt)
          return 1
        },
      },
      async () => CONFLICT,
    )
    expect(asked).toEqual([0, 1])
  })

  it('lets an error of an attempt through without retrying', async () => {
    let calls = 0
    await expect(
      retryOnConflict({ attempts: 3 }, async () => {
        calls++
        throw new Error('not found')
      }),
    ).rejects.toThrow('not found')
    expect(calls).toBe(1)
  })
})
