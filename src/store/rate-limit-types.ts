// The fixed-window counters of the storage contract (src/store/types.ts re-exports them): the
// per-address and per-registration rate limits, shared by every instance.

/** The answer to one hit on a fixed-window counter. */
export interface RateLimitResult {
  /** False once the window's count passed the limit. */
  allowed: boolean
  /** Hits left in this window. */
  remaining: number
  /** ms until a slot frees, when not allowed */
  retryAfterMs: number
}

/** Fixed-window counter shared by every instance. */
export interface RateLimiter {
  /**
   * Counts one hit on `key` (the first hit starts a `windowMs` window) and answers. `limit` is a
   * positive integer (RangeError otherwise), as for `take`.
   */
  hit(key: string, limit: number, windowMs: number): Promise<RateLimitResult>
  /**
   * Takes one slot of `key`'s window only when fewer than `limit` were taken: a refused take is
   * not counted, so callers asking under a lower limit never eat the slots of a higher one.
   */
  take(key: string, limit: number, windowMs: number): Promise<RateLimitResult>
}
