// RS256 signing keys of the emulator. The first key of the ring signs; all are published.

import type { CryptoKey, JWK, JWTPayload } from 'jose'
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT } from 'jose'

export interface SigningKey {
  readonly kid: string
  readonly privateKey: CryptoKey
  readonly publicJwk: JWK
}

export async function createSigningKey(): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true })
  const jwk = await exportJWK(publicKey)
  const kid = await calculateJwkThumbprint(jwk)
  return { kid, privateKey, publicJwk: { kty: jwk.kty, n: jwk.n, e: jwk.e } }
}

/** JWKS entry in Entra's shape (plus `alg`), with the issuer the key is valid for. */
export function publicJwks(keys: readonly SigningKey[], issuer: string): { keys: JWK[] } {
  return {
    keys: keys.map((k) => ({ ...k.publicJwk, use: 'sig', alg: 'RS256', kid: k.kid, issuer })),
  }
}

export async function signJwt(key: SigningKey, payload: JWTPayload): Promise<string> {
  return new SignJWT(payload)
    .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: key.kid })
    .sign(key.privateKey)
}
