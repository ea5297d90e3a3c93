// The apps' credential health in memory: failing marks and last successes, expiring like the
// Redis keys (one process only: the demo and unit tests).
import type { CredentialHealthStore } from '../types.js'
import { requireName, requirePositiveMs } from '../validation.js'
import { ExpiringMap } from './expiring-map.js'

/** `CredentialHealthStore` in memory. */
export class MemoryCredentialHealth implements CredentialHealthStore {
  readonly marks: ExpiringMap<string>
  readonly successes: ExpiringMap<number>
  constructor(clock: () => number) {
    this.marks = new ExpiringMap(clock)
    this.successes = new ExpiringMap(clock)
  }

  async markFailing(credential: string, code: string, ttlMs: number): Promise<boolean> {
    requireName(credential, 'credential')
    const ttl = requirePositiveMs(ttlMs, 'ttlMs')
    if (this.marks.get(credential) !== undefined) return false
    this.marks.set(credential, code || 'failed', ttl)
    return true
  }

  async failing(credentials: readonly string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>()
    for (const credential of credentials) {
      const code = this.marks.get(credential)
      if (code !== undefined) out.set(credential, code)
    }
    return out
  }

  async clearFailing(credential: string): Promise<boolean> {
    return this.marks.delete(credential)
  }

  async recordSuccess(credential: string, atMs: number, ttlMs: number): Promise<void> {
    requireName(credential, 'credential')
    this.successes.set(credential, atMs, requirePositiveMs(ttlMs, 'ttlMs'))
  }

  async lastSuccess(credentials: readonly string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>()
    for (const credential of credentials) {
      const at = this.successes.get(credential)
      if (at !== undefined) out.set(credential, at)
    }
    return out
  }
}
