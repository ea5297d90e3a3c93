// The `encrypted_token` of an obtain-token request (docs/obtain-token-protocol.md, encryption):
// standard padded base64 of nonce(12) || ciphertext || tag(16), AES-GCM under the registration's
// Key, no AAD, plaintext UTF-8 `"<unix seconds>:<content>"` split at the first colon.
//
// Nothing here logs or keeps a secret; errors carry a reason code and a safe message only.
import { createDecipheriv, createSecretKey, type KeyObject, timingSafeEqual } from 'node:crypto'

export const NONCE_BYTES = 12
export const TAG_BYTES = 16
/** Longest `encrypted_token` we look at (the body limit is 16 KiB anyway). */
export const MAX_ENCRYPTED_TOKEN_CHARS = 8192

const STANDARD_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/
const TIMESTAMP = /^\d{1,12}$/

export type ObtainTokenCryptoFailure =
  /** Not standard padded base64, or too short to hold nonce + tag. */
  | 'malformed'
  /** The AES-GCM tag does not verify under this Key (wrong Key, or tampered). */
  | 'bad_key'
  /** It authenticated, but the plaintext is not `<unix seconds>:<content>`. */
  | 'bad_plaintext'

export class ObtainTokenCryptoError extends Error {
  override readonly name = 'ObtainTokenCryptoError'
  constructor(
    readonly reason: ObtainTokenCryptoFailure,
    message: string,
  ) {
    super(message)
  }
}

/** A registration Key (standard base64 of 16, 24 or 32 bytes) imported once. */
export interface ImportedKey {
  readonly key: KeyObject
  readonly algorithm: 'aes-128-gcm' | 'aes-192-gcm' | 'aes-256-gcm'
}

/** Imports a Key; throws when it is not standard base64 of 16, 24 or 32 bytes. */
export function importRegistrationKey(base64Key: string): ImportedKey {
  if (!STANDARD_BASE64.test(base64Key) || base64Key.length === 0) {
    throw new Error('registration key is not standard base64')
  }
  const raw = Buffer.from(base64Key, 'base64')
  let algorithm: ImportedKey['algorithm']
  switch (raw.length) {
    case 16:
      algorithm = 'aes-128-gcm'
      break
    case 24:
      algorithm = 'aes-192-gcm'
      break
    case 32:
      algorithm = 'aes-256-gcm'
      break
    default:
      throw new Error(`registration key decodes to ${raw.length} bytes, expected 16, 24 or 32`)
  }
  const key = createSecretKey(raw)
  raw.fill(0)
  return { key, algorithm }
}

/** Decodes `encrypted_token` without a key (format check only). Throws ObtainTokenCryptoError. */
export function decodeEncryptedToken(encryptedToken: string): Buffer {
  if (encryptedToken.length > MAX_ENCRYPTED_TOKEN_CHARS) throw malformedBase64()
  // Node's decoder skips what isn't base64 instead of refusing it; a decoding that encodes back to
  // the very same text was canonical padded standard base64 (the regular expression's language and
  // more strictly: no stray bits after the last byte). Anything else gets the full check, so what
  // is accepted is exactly what the expression accepts — at a fraction of its cost per request.
  const raw = Buffer.from(encryptedToken, 'base64')
  if (raw.toString('base64') !== encryptedToken && !STANDARD_BASE64.test(encryptedToken)) {
    throw malformedBase64()
  }
  if (raw.length < NONCE_BYTES + TAG_BYTES) {
    throw new ObtainTokenCryptoError(
      'malformed',
      'encrypted_token is too short to hold a 12-byte nonce and a 16-byte tag',
    )
  }
  return raw
}

function malformedBase64(): ObtainTokenCryptoError {
  return new ObtainTokenCryptoError(
    'malformed',
    'encrypted_token is not standard padded base64 (the integration builds it from the Key; check the Key field)',
  )
}

export interface OpenedToken {
  /** Unix seconds claimed by the client. */
  readonly timestamp: number
  /** What follows the first colon: the Token (tenant id) or the last refresh_token we returned. */
  readonly content: string
}

/** Opens a decoded `encrypted_token` under an imported Key. Throws ObtainTokenCryptoError. */
export function openEncryptedToken(raw: Buffer, key: ImportedKey): OpenedToken {
  const nonce = raw.subarray(0, NONCE_BYTES)
  const tag = raw.subarray(raw.length - TAG_BYTES)
  const ciphertext = raw.subarray(NONCE_BYTES, raw.length - TAG_BYTES)
  let plaintext: string
  try {
    const decipher = createDecipheriv(key.algorithm, key.key, nonce, { authTagLength: TAG_BYTES })
    decipher.setAuthTag(tag)
    const opened = decipher.update(ciphertext)
    // GCM yields every byte from update; final only checks the tag (and returns nothing).
    decipher.final()
    plaintext = opened.toString('utf8')
  } catch {
    throw new ObtainTokenCryptoError(
      'bad_key',
      "encrypted_token does not decrypt with this registration's Key: paste the Key shown on the consent page into the Key field",
    )
  }
  const colon = plaintext.indexOf(':')
  const stamp = colon < 0 ? '' : plaintext.slice(0, colon)
  if (!TIMESTAMP.test(stamp)) {
    // A client written against Date.now() sends milliseconds: say so rather than only the shape.
    const milliseconds = /^\d{13}$/.test(stamp)
    throw new ObtainTokenCryptoError(
      'bad_plaintext',
      milliseconds
        ? 'encrypted_token holds a timestamp in milliseconds; send "<unix seconds>:<content>" (seconds, e.g. Math.floor(Date.now() / 1000))'
        : 'encrypted_token does not hold "<unix seconds>:<content>"',
    )
  }
  return { timestamp: Number(stamp), content: plaintext.slice(colon + 1) }
}

/**
 * The replay-cache key of an `encrypted_token` that authenticated: its nonce and GCM tag
 * (base64url). Under one Key, two different ciphertexts that both authenticate share a tag only by
 * forgery, so no hash is needed. Only for tokens `openEncryptedToken` accepted: a tampered one
 * keeps the tag of the original.
 */
export function replayMarker(raw: Buffer): string {
  // The nonce's 12 bytes are exactly 16 base64 characters (no padding, no bits carried over), so
  // the two encodings side by side are the encoding of nonce || tag, without copying them together.
  return raw.toString('base64url', 0, NONCE_BYTES) + raw.toString('base64url', raw.length - TAG_BYTES)
}

/**
 * Whether `content` (an opened token's) is the Token whose UTF-8 bytes are `token`: constant time
 * for equal lengths (unequal lengths return at once: the Token's length, a tenant GUID's, is no
 * secret), with the Token's side encoded once by the caller.
 */
export function matchesToken(content: string, token: Buffer): boolean {
  const bytes = Buffer.from(content, 'utf8')
  return bytes.length === token.length && timingSafeEqual(bytes, token)
}
