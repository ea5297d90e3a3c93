// The one-time results of the consent flow: a result is looked up under every prefix it may be
// stored under at once (one round trip, not one per prefix), and a failing lookup under another
// prefix does not lose the result that was found (taken, it would be gone for good).
import { setImmediate as nextTurn } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { ConsentFlowRecords } from '../../src/services/consent-flow-records.js'
import { createMemoryStore } from '../../src/store/memory.js'
import type { EphemeralStore } from '../../src/store/types.js'
import { testConfig } from '../support/config.js'

const HANDLE = 'a'.repeat(43)
const TTL_MS = 60_000

/** The records over a memory store whose takes and gets each take a turn, counting how many overlap. */
function recordsWatched(failing?: (key: string) => boolean) {
  const config = testConfig({ authorityUrl: 'http://127.0.0.1:9' })
  const store = createMemoryStore({ keyRing: config.keyRing })
  const inner = store.ephemeral
  const seen = { inFlight: 0, most: 0 }
  const watched =
    <T>(lookup: (key: string, options?: { secret?: boolean }) => Promise<T>) =>
    async (key: string, options?: { secret?: boolean }): Promise<T> => {
      seen.inFlight += 1
      seen.most = Math.max(seen.most, seen.inFlight)
      try {
        await nextTurn()
        if (failing?.(key)) throw new Error(`store unavailable for ${key}`)
        return await lookup(key, options)
      } finally {
        seen.inFlight -= 1
      }
    }
  const ephemeral: EphemeralStore = {
    put: (key, value, ttlMs, options) => inner.put(key, value, ttlMs, options),
    take: watched((key, options) => inner.take(key, options)),
    get: watched((key, options) => inner.get(key, options)),
    claim: (key, ttlMs) => inner.claim(key, ttlMs),
    delete: (key) => inner.delete(key),
  }
  return { records: new ConsentFlowRecords({ ephemeral }, TTL_MS), seen }
}

describe('consent flow results', () => {
  it('looks a result up under every prefix at once, and takes it once', async () => {
    const { records, seen } = recordsWatched()
    const result = { reused: false, unshownKey: 'key-id' }
    await records.putResult(HANDLE, result)
    expect(await records.hasResult(HANDLE)).toBe(true)
    expect(seen.most).toBe(3)
    seen.most = 0
    expect(JSON.parse((await records.takeResult(HANDLE))!)).toEqual(result)
    expect(seen.most).toBe(3)
    expect(await records.takeResult(HANDLE)).toBeNull()
    expect(await records.hasResult(HANDLE)).toBe(false)
  })

  it('hands out the result found though a lookup under another prefix failed', async () => {
    const { records } = recordsWatched((key) => key.startsWith('consent:result:'))
    const result = { reused: true }
    await records.putResult(HANDLE, result)
    expect(await records.hasResult(HANDLE)).toBe(true)
    expect(JSON.parse((await records.takeResult(HANDLE))!)).toEqual(result)
    // Nothing found: the failure is reported, not taken for "no result".
    await expect(records.takeResult(HANDLE)).rejects.toThrow('store unavailable')
    await expect(records.hasResult(HANDLE)).rejects.toThrow('store unavailable')
  })
})
