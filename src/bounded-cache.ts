// The one bounded in-process cache: a Map that never holds more than `maxEntries` (a stream of
// distinct keys — tenants, registrations, client addresses — must not grow memory without limit),
// evicting the oldest entry first, with an optional time-to-live. Used by obtain-token's caches,
// the token issuer's per-instance token cache and the identity provider's metadata/JWKS caches.

/** Which entry is "oldest" when the cache is full. */
export type EvictionOrder =
  /** The entry written longest ago (reads don't count): the cheapest, for caches read on a hot path. */
  | 'first-written'
  /** The entry read or written longest ago (LRU): a read moves the entry to the back. */
  | 'least-recently-used'

/** Options of a {@link BoundedCache}. */
export interface BoundedCacheOptions {
  /** Most entries held; writing one more evicts the oldest. A positive integer. */
  maxEntries: number
  /** Entries expire this long after they were written; default: never. */
  ttlMs?: number
  /** Default `first-written`. */
  evict?: EvictionOrder
  /** Epoch ms, for the time-to-live; default `Date.now`. */
  now?: () => number
}

/**
 * A string-keyed cache bounded in size (and optionally in time). Reads cost one Map lookup (plus,
 * with a time-to-live, a clock read and a second lookup; in LRU order, a re-insert): obtain-token
 * reads several per request. `undefined` is not a storable value (it means "absent").
 */
export class BoundedCache<V> {
  readonly #entries = new Map<string, V>()
  /** Expiry (epoch ms) per key; only with a time-to-live. */
  readonly #expiresAt: Map<string, number> | undefined
  readonly #maxEntries: number
  readonly #ttlMs: number
  readonly #lru: boolean
  readonly #now: () => number

  constructor(options: BoundedCacheOptions) {
    if (!Number.isInteger(options.maxEntries) || options.maxEntries < 1)
      throw new RangeError('maxEntries must be a positive integer')
    this.#maxEntries = options.maxEntries
    this.#ttlMs = options.ttlMs ?? Number.POSITIVE_INFINITY
    this.#expiresAt = this.#ttlMs === Number.POSITIVE_INFINITY ? undefined : new Map()
    this.#lru = options.evict === 'least-recently-used'
    this.#now = options.now ?? Date.now
  }

  /** Entries held, expired ones not yet dropped included. */
  get size(): number {
    return this.#entries.size
  }

  /** The value under `key`; undefined when absent or expired (an expired entry is dropped). */
  get(key: string): V | undefined {
    const value = this.#entries.get(key)
    if (value === undefined) return undefined
    if (this.#expiresAt !== undefined && (this.#expiresAt.get(key) as number) <= this.#now()) {
      this.#entries.delete(key)
      this.#expiresAt.delete(key)
      return undefined
    }
    if (this.#lru) {
      // Map iteration order is insertion order: re-inserting makes this the most recent entry.
      this.#entries.delete(key)
      this.#entries.set(key, value)
    }
    return value
  }

  /** Writes `value` under `key` as the newest entry, evicting the oldest ones past `maxEntries`. */
  set(key: string, value: V): void {
    this.#entries.delete(key)
    while (this.#entries.size >= this.#maxEntries) {
      this.#drop(this.#entries.keys().next().value as string)
    }
    this.#entries.set(key, value)
    this.#expiresAt?.set(key, this.#now() + this.#ttlMs)
  }

  /** Drops `key`; with `value`, only while the entry still holds that value (a newer one survives). */
  delete(key: string, value?: V): void {
    if (value !== undefined && this.#entries.get(key) !== value) return
    this.#drop(key)
  }

  #drop(key: string): void {
    this.#entries.delete(key)
    this.#expiresAt?.delete(key)
  }
}
