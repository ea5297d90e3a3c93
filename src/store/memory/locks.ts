// Locks in memory: a random token per holder and a lease, as on Redis.
import { randomBytes } from 'node:crypto'
import type { LockHandle, LockManager } from '../types.js'
import { requireName, requirePositiveMs } from '../validation.js'
import { ExpiringMap } from './expiring-map.js'

/** `LockManager` in memory. */
export class MemoryLocks implements LockManager {
  readonly held: ExpiringMap<string>
  constructor(clock: () => number) {
    this.held = new ExpiringMap(clock)
  }

  async acquire(name: string, ttlMs: number): Promise<LockHandle | null> {
    requireName(name, 'lock name')
    const ttl = requirePositiveMs(ttlMs, 'ttlMs')
    if (this.held.get(name) !== undefined) return null
    const token = randomBytes(20).toString('hex')
    this.held.set(name, token, ttl)
    return { name, token }
  }

  async renew(handle: LockHandle, ttlMs: number): Promise<boolean> {
    const ttl = requirePositiveMs(ttlMs, 'ttlMs')
    if (this.held.get(handle.name) !== handle.token) return false
    this.held.set(handle.name, handle.token, ttl)
    return true
  }

  async release(handle: LockHandle): Promise<boolean> {
    if (this.held.get(handle.name) !== handle.token) return false
    return this.held.delete(handle.name)
  }
}
