// The identity provider's signing keys (JWKS), one remote key set per JWKS URI (per cloud), for
// ID-token validation. A failure to fetch them is the identity provider's, not the token's: it is
// reported as an UpstreamError (timeout or unavailable), never as a bad token.
import { createRemoteJWKSet, type JWTVerifyGetKey, errors as joseErrors } from 'jose'
import type * as oidc from 'openid-client'
import { BoundedCache } from '../bounded-cache.js'
import { UpstreamError } from './types.js'

const JWKS_COOLDOWN_MS = 30_000
const JWKS_MAX_AGE_MS = 60 * 60_000

/** The key getter for a discovery document's `jwks_uri`, cached per URI. */
export type SigningKeys = (metadata: Readonly<oidc.ServerMetadata>) => JWTVerifyGetKey

/** Signing keys fetched within `timeoutMs`; a handful of key sets (one per cloud) are kept. */
export function createSigningKeys(timeoutMs: number): SigningKeys {
  const jwksCache = new BoundedCache<JWTVerifyGetKey>({ maxEntries: 32, evict: 'least-recently-used' })
  return (metadata) => {
    const jwksUri = metadata.jwks_uri as string
    let keys = jwksCache.get(jwksUri)
    if (keys === undefined) {
      const remote = createRemoteJWKSet(new URL(jwksUri), {
        timeoutDuration: Math.ceil(timeoutMs),
        cooldownDuration: JWKS_COOLDOWN_MS,
        cacheMaxAge: JWKS_MAX_AGE_MS,
      })
      keys = async (header, token) => {
        try {
          return await remote(header, token)
        } catch (error) {
          if (
            error instanceof joseErrors.JWKSNoMatchingKey ||
            error instanceof joseErrors.JWKSMultipleMatchingKeys
          )
            throw error
          if (error instanceof joseErrors.JWKSTimeout) {
            throw new UpstreamError('timeout', 'signing keys: no answer from the identity provider in time', {
              cause: error,
            })
          }
          throw new UpstreamError('unavailable', 'signing keys: could not fetch the identity provider keys', {
            cause: error,
          })
        }
      }
      jwksCache.set(jwksUri, keys)
    }
    return keys
  }
}
