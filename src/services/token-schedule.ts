// When the issuer talks to Entra ID, as pure functions of the clock and a random source (unit-tested
// with both injected): the refresh-ahead point of a new token (a jittered share of its lifetime),
// whether a served token is due for it, and the exponential backoff with jitter after transient
// failures, which a Retry-After longer than it overrides.

/** Jitter of the refresh-ahead point: ±10 % of the share of the lifetime. */
export const REFRESH_AHEAD_JITTER = 0.1
/** First backoff delay after a transient failure; doubled per consecutive failure. */
export const BACKOFF_BASE_MS = 1_000
/** Longest backoff delay (before jitter). */
export const BACKOFF_MAX_MS = 60_000
/** Jitter of a backoff delay: ±25 %, so instances and groups failing together spread out. */
export const BACKOFF_JITTER = 0.25

/** A number in [0, 1). */
export type Random = () => number

/**
 * Epoch ms at which a token fetched at `startedAt` with `lifetimeMs` of life should be refreshed in
 * the background: `fraction` of its life, ±10 % jitter, never past the point it stops being served
 * (`marginMs` before expiry). Undefined when refresh-ahead is off (`fraction` 0) or there's no room.
 */
export function refreshAheadAt(
  startedAt: number,
  lifetimeMs: number,
  fraction: number,
  marginMs: number,
  random: Random,
): number | undefined {
  if (!(fraction > 0) || !(lifetimeMs > 0)) return undefined
  const jitter = 1 + REFRESH_AHEAD_JITTER * (2 * random() - 1)
  const at = startedAt + Math.floor(lifetimeMs * fraction * jitter)
  const lastServed = startedAt + lifetimeMs - marginMs
  if (lastServed <= startedAt) return undefined
  return Math.min(at, lastServed)
}

/** A token due for a background refresh: past its refresh-ahead point and still served. */
export function isRefreshAheadDue(
  token: { expiresAt: number; refreshAt?: number | undefined },
  now: number,
  marginMs: number,
): boolean {
  return token.refreshAt !== undefined && token.refreshAt <= now && token.expiresAt - marginMs > now
}

/** Delay before the next attempt after `failures` consecutive transient failures (1 = the first). */
export function backoffDelayMs(failures: number, random: Random): number {
  const exponent = Math.max(0, Math.min(failures - 1, 20))
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** exponent)
  return Math.round(base * (1 + BACKOFF_JITTER * (2 * random() - 1)))
}

/** Epoch ms of the next allowed attempt: the backoff, or Retry-After when that is longer. */
export function nextAttemptAt(
  now: number,
  failures: number,
  retryAfterSeconds: number | undefined,
  random: Random,
): number {
  const backoff = backoffDelayMs(failures, random)
  const retryAfter = retryAfterSeconds === undefined ? 0 : retryAfterSeconds * 1000
  return now + Math.max(backoff, retryAfter)
}
