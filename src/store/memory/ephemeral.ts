// Short-lived values in memory, sealed for their key when secret, expiring like Redis keys.
import type { KeyRing } from '../../crypto/envelope.js'
import { openEphemeral, sealEphemeral } from '../sealing.js'
import type { EphemeralStore } from '../types.js'
import { requireName, requirePositiveMs } from '../validation.js'
import { ExpiringMap } from './expiring-map.js'

/** `EphemeralStore` in memory. */
export class MemoryEphemeral implements EphemeralStore {
  readonly values: ExpiringMap<string>
  constructor(
    private readonly keyRing: KeyRing,
    clock: () => number,
  ) {
    this.values = new ExpiringMap(clock)
  }

  async put(key: string, value: string, ttlMs: number, options?: { secret?: boolean }): Promise<void> {
    requireName(key, 'ephemeral key')
    const stored = sealEphemeral(this.keyRing, key, value, options?.secret)
    this.values.set(key, stored, requirePositiveMs(ttlMs, 'ttlMs'))
  }

  async take(key: string, options?: { secret?: boolean }): Promise<string | null> {
    const stored = this.values.get(key)
    this.values.delete(key)
    return openEphemeral(this.keyRing, key, stored, options?.secret)
  }

  async get(key: string, options?: { secret?: boolean }): Promise<string | null> {
    return openEphemeral(this.keyRing, key, this.values.get(key), options?.secret)
  }

  async claim(key: string, ttlMs: number): Promise<boolean> {
    requireName(key, 'ephemeral key')
    const ttl = requirePositiveMs(ttlMs, 'ttlMs')
    if (this.values.get(key) !== undefined) return false
    this.values.set(key, '1', ttl)
    return true
  }

  async delete(key: string): Promise<void> {
    this.values.delete(key)
  }
}
