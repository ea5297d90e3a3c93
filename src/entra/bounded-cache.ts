// A small LRU map with a time-to-live, for discovery documents and JWKS getters: bounded so a
// stream of distinct tenants can't grow memory without limit, expiring so metadata changes are seen.

export class BoundedCache<V> {
  readonly #entries = new Map<string, { value: V; expiresAt: number }>()
  readonly #maxEntries: number
  readonly #ttlMs: number
  readonly #now: () => number

  constructor(options: { maxEntries: number; ttlMs: number; now?: () => number }) {
    if (!Number.isInteger(options.maxEntries) || options.maxEntries < 1)
      throw new RangeError('maxEntries must be a positive integer')
    this.#maxEntries = options.maxEntries
    this.#ttlMs = options.ttlMs
    this.#now = options.now ?? Date.now
  }

  get size(): number {
    return this.#entries.size
  }

  get(key: string): V | undefined {
    const entry = this.#entries.get(key)
    if (entry === undefined) return undefined
    if (entry.expiresAt <= this.#now()) {
      this.#entries.delete(key)
      return undefined
    }
    // Re-insert: Map iteration order is insertion order, so the first key is the least recent.
    this.#entries.delete(key)
    this.#entries.set(key, entry)
    return entry.value
  }

  set(key: string, value: V): void {
    this.#entries.delete(key)
    this.#entries.set(key, { value, expiresAt: this.#now() + this.#ttlMs })
    while (this.#entries.size > this.#maxEntries) {
      const oldest = this.#entries.keys().next().value as string
      this.#entries.delete(oldest)
    }
  }

  delete(key: string, value?: V): void {
    // With `value`, delete only if the entry still holds it (a newer entry must survive).
    if (value !== undefined && this.#entries.get(key)?.value !== value) return
    this.#entries.delete(key)
  }
}
