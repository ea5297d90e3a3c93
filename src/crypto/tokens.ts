// Random tokens (session ids, CSRF tokens, flow ids, OAuth state, nonces, PKCE verifiers, result
// handles) and the constant-time comparison of a submitted token with the expected one.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'

/** A fresh random token: `bytes` random bytes (default 32, i.e. 43 characters), base64url. */
export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url')
}

/**
 * Whether `submitted` equals `expected`, in time independent of where they differ: both are hashed
 * first, so even their lengths don't show. A missing, empty or oversized (> 256 characters) value
 * never matches.
 */
export function tokensMatch(expected: string, submitted: unknown): boolean {
  if (typeof submitted !== 'string' || submitted.length === 0 || submitted.length > 256) return false
  const a = createHash('sha256').update(expected, 'utf8').digest()
  const b = createHash('sha256').update(submitted, 'utf8').digest()
  return timingSafeEqual(a, b)
}
