// Expiry for the memory store: entries carry their deadline and are dropped when read after it
// (plus a periodic sweep by the store), and the fixed-window counter every memory limit uses.
import { rateLimitResult } from '../rate-window.js'
import type { RateLimitResult } from '../types.js'

interface Expiring<T> {
  value: T
  expiresAt: number
}

/** A map whose entries expire `ttlMs` after they are set (checked on read, and by `sweep`). */
export class ExpiringMap<T> {
  readonly #entries = new Map<string, Expiring<T>>()
  constructor(private readonly clock: () => number) {}

  get(key: string): T | undefined {
    const entry = this.#entries.get(key)
    if (entry === undefined) return undefined
    if (entry.expiresAt <= this.clock()) {
      this.#entries.delete(key)
      return undefined
    }
    return entry.value
  }

  /** Remaining ms of a live entry. */
  ttl(key: string): number | undefined {
    const entry = this.#entries.get(key)
    if (entry === undefined || this.get(key) === undefined) return undefined
    return entry.expiresAt - this.clock()
  }

  set(key: string, value: T, ttlMs: number): void {
    this.#entries.set(key, { value, expiresAt: this.clock() + ttlMs })
  }

  delete(key: string): boolean {
    const live = this.get(key) !== undefined
    this.#entries.delete(key)
    return live
  }

  get size(): number {
    return this.#entries.size
  }

  sweep(): void {
    const now = this.clock()
    for (const [key, entry] of this.#entries) if (entry.expiresAt <= now) this.#entries.delete(key)
  }
}

/** One hit on the fixed-window counter `key` of `windows`: the first hit starts the window. */
export function hitWindow(
  windows: ExpiringMap<number>,
  key: string,
  limit: number,
  windowMs: number,
): RateLimitResult {
  const count = (windows.get(key) ?? 0) + 1
  const ttl = windows.ttl(key) ?? windowMs
  windows.set(key, count, ttl)
  return rateLimitResult(count, limit, ttl)
}
