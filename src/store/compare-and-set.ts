// The one compare-and-set retry loop. `RegistrationStore.update` writes only at the version the
// caller read (and Redis re-sealing only over unchanged ciphertexts); a concurrent write makes it
// answer "conflict", and the caller reads again and decides again. Every such loop — in the store
// and in the services — runs here, so the attempt bound and the back-off are stated once.

/** What an attempt returns when its write lost to a concurrent one: read again and retry. */
export const CONFLICT: unique symbol = Symbol('compare-and-set conflict')

/** The type of {@link CONFLICT}. */
export type Conflict = typeof CONFLICT

/** How often to retry, and how long to wait before the next attempt. */
export interface RetryOnConflictOptions {
  /** At most this many attempts (at least 1). */
  readonly attempts: number
  /** Pause before attempt `attempt + 1` after attempt `attempt` (0-based) conflicted; none if absent. */
  readonly backoffMs?: (attempt: number) => number
}

/**
 * Runs `attempt` (read, decide, write at the version read) until it returns anything but
 * {@link CONFLICT}, at most `options.attempts` times, and returns that result; returns CONFLICT
 * when every attempt lost, so the caller says what giving up means (log, refuse, throw).
 * `attempt` gets its 0-based number (e.g. to reuse a first read it already holds).
 */
export async function retryOnConflict<T>(
  options: RetryOnConflictOptions,
  attempt: (attempt: number) => Promise<T | Conflict>,
): Promise<T | Conflict> {
  for (let n = 0; n < options.attempts; n++) {
    const result = await attempt(n)
    if (result !== CONFLICT) return result
    const pause = n + 1 < options.attempts ? options.backoffMs?.(n) : undefined
    if (pause !== undefined && pause > 0) await new Promise((resolve) => setTimeout(resolve, pause))
  }
  return CONFLICT
}
