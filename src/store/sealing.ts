// Every secret the store keeps is sealed here with the key ring, under associated data that names
// the record and field it belongs to, so a ciphertext copied to another record or key fails to open.
import type { KeyRing } from '../crypto/envelope.js'
import type { CachedToken } from './types.js'

/** The sealed fields of a registration record. */
export const SECRET_FIELDS = ['key', 'refreshToken', 'clientSecret'] as const

/** One sealed field of a registration record. */
export type SecretField = (typeof SECRET_FIELDS)[number]

const AAD_FIELD_NAMES: Record<SecretField, string> = {
  key: 'key',
  refreshToken: 'refresh_token',
  clientSecret: 'client_secret',
}

/** Associated data of a registration's secret field: binds the ciphertext to record and field. */
export function registrationAad(id: string, field: SecretField): string {
  return `registration:${id}:${AAD_FIELD_NAMES[field]}`
}

/** Associated data of a cached access token: binds it to its group and scope. */
export function tokenAad(group: string, scope: string): string {
  return `token:${group}:${scope}`
}

/** Associated data of a secret ephemeral value: binds it to its key. */
export function ephemeralAad(key: string): string {
  return `ephemeral:${key}`
}

/** Seals one secret field of registration `id`. */
export function sealSecret(keyRing: KeyRing, id: string, field: SecretField, value: string): string {
  return keyRing.seal(value, registrationAad(id, field))
}

/** Opens one secret field of registration `id`; throws (EnvelopeError) when it was sealed elsewhere. */
export function openSecret(keyRing: KeyRing, id: string, field: SecretField, sealed: string): string {
  return keyRing.open(sealed, registrationAad(id, field))
}

/** Associated data of a webhook endpoint's signing secret: binds it to the endpoint. */
export function webhookSecretAad(endpointId: string): string {
  return `webhook-endpoint:${endpointId}:secret`
}

/** Seals a webhook endpoint's signing secret. */
export function sealWebhookSecret(keyRing: KeyRing, endpointId: string, secret: string): string {
  return keyRing.seal(secret, webhookSecretAad(endpointId))
}

/** Opens a webhook endpoint's signing secret; throws when it was sealed for another endpoint. */
export function openWebhookSecret(keyRing: KeyRing, endpointId: string, sealed: string): string {
  return keyRing.open(sealed, webhookSecretAad(endpointId))
}

/** An ephemeral value as stored: sealed for its key when secret. */
export function sealEphemeral(
  keyRing: KeyRing,
  key: string,
  value: string,
  secret: boolean | undefined,
): string {
  return secret ? keyRing.seal(value, ephemeralAad(key)) : value
}

/** An ephemeral value as read back (null when absent), opened when secret. */
export function openEphemeral(
  keyRing: KeyRing,
  key: string,
  stored: string | null | undefined,
  secret: boolean | undefined,
): string | null {
  if (stored === null || stored === undefined) return null
  return secret ? keyRing.open(stored, ephemeralAad(key)) : stored
}

/** A cached access token as stored: only its own fields, sealed for its group and scope. */
export function sealCachedToken(keyRing: KeyRing, group: string, scope: string, token: CachedToken): string {
  const payload: CachedToken = {
    accessToken: token.accessToken,
    expiresAt: token.expiresAt,
    scope: token.scope,
    ...(token.refreshAt === undefined ? {} : { refreshAt: token.refreshAt }),
  }
  return keyRing.seal(JSON.stringify(payload), tokenAad(group, scope))
}

/** A cached access token as read back; null (a cache miss) when it no longer opens. */
export function openCachedToken(
  keyRing: KeyRing,
  group: string,
  scope: string,
  sealed: string,
): CachedToken | null {
  try {
    return JSON.parse(keyRing.open(sealed, tokenAad(group, scope))) as CachedToken
  } catch {
    // sealed under a retired key, or not ours: a cache miss (the caller fetches a new token)
    return null
  }
}
