// The small pieces of ObtainToken's checks that need no state: decoding and opening the
// encrypted_token with the broker's error codes, importing a stored Key, what a registration's
// checks need prepared once, the errors it answers, and the client label recorded as usage.
import type { Config } from '../config.js'
import {
  decodeEncryptedToken,
  type ImportedKey,
  importRegistrationKey,
  ObtainTokenCryptoError,
  type OpenedToken,
  openEncryptedToken,
} from '../crypto/obtain-token.js'
import {
  type BrokerError,
  encryptedTokenRejected,
  toBrokerError,
  tokenRequestsRateLimited,
  unknownRegistration,
  unusableKey,
} from '../errors.js'
import { displayableText } from '../one-line-text.js'
import type { Registration, RegistrationUsage } from '../store/types.js'
import { tokenGroup } from './token-groups.js'
import { registrationStatusError } from './token-registration.js'
import type { AppScopes, ScopeResolver } from './token-scope.js'

/** A crypto failure as the broker answers it: `invalid_key` when the tag fails, else `invalid_request`. */
export function cryptoError(error: unknown): BrokerError {
  if (error instanceof ObtainTokenCryptoError) {
    return encryptedTokenRejected(error.reason === 'bad_key', error.message)
  }
  return toBrokerError(error)
}

/** The raw bytes of an `encrypted_token`; throws the BrokerError of {@link cryptoError}. */
export function decodeOrThrow(encryptedToken: string): Buffer {
  try {
    return decodeEncryptedToken(encryptedToken)
  } catch (error) {
    throw cryptoError(error)
  }
}

/** The timestamp and content of an `encrypted_token` under `key`; throws the BrokerError of {@link cryptoError}. */
export function openOrThrow(raw: Buffer, key: ImportedKey): OpenedToken {
  try {
    return openEncryptedToken(raw, key)
  } catch (error) {
    throw cryptoError(error)
  }
}

/**
 * Imports a registration's stored Key. An unusable one is the registration's status error when it
 * is not active (a revoked registration may have lost its Key: say so rather than fail), otherwise
 * logged for the operator and answered `internal_error`.
 */
export function importKeyOrThrow(
  storedKey: string,
  meta: Registration,
  config: Config,
  log: { error(object: Record<string, unknown>, message: string): void },
): ImportedKey {
  try {
    return importRegistrationKey(storedKey)
  } catch (cause) {
    if (meta.status !== 'active') throw registrationStatusError(config, meta)
    log.error(
      { registrationId: meta.id, reason: (cause as Error).message },
      'stored registration Key is unusable',
    )
    throw unusableKey(cause)
  }
}

/** Missing, and belonging to another app, look the same to the caller. */
export function unknownRegistrationError(config: Config, slug: string, registrationId?: string): BrokerError {
  return unknownRegistration(slug, config.publicUrl, registrationId)
}

/** The 429 of a rate limit, with Retry-After in whole seconds (at least 1). */
export function rateLimitedError(retryAfterMs: number, what: string): BrokerError {
  return tokenRequestsRateLimited(retryAfterMs, what)
}

/** `X-Content-Name/X-Content-Version`, printable and bounded; undefined when neither is sent. */
export function clientOf(name: string | undefined, version: string | undefined): string | undefined {
  if (name === undefined && version === undefined) return undefined
  return displayableText(`${name ?? '?'}/${version ?? '?'}`, 160)
}

/** A registration's metadata with its usage, as the store's `getMeta` returns it. */
export type RegistrationMeta = Registration & RegistrationUsage

/**
 * A registration at one version with what its checks need, prepared once: a registration admitted
 * before is served from one cache read, without importing, encoding or looking anything up again.
 */
export interface Prepared {
  readonly meta: RegistrationMeta
  readonly key: ImportedKey
  /** The Token (the tenant id) as UTF-8, for the constant-time comparison. */
  readonly token: Buffer
  /** Undefined when the app no longer offers the registration's cloud (answered after the status). */
  readonly appScopes: AppScopes | undefined
  /** Its token cache group ({@link tokenGroup}). */
  readonly group: string
  /** Its per-registration rate limit key (the shared limiter's, and the local block's). */
  readonly limitKey: string
}

/** What the checks of `meta` at this version need, with its imported Key. */
export function prepare(meta: RegistrationMeta, key: ImportedKey, scopes: ScopeResolver): Prepared {
  return {
    meta,
    key,
    token: Buffer.from(meta.tenantId, 'utf8'),
    appScopes: scopes.forApp(meta.app, meta.cloud),
    group: tokenGroup(meta),
    limitKey: `obtain-token:reg:${meta.id}`,
  }
}

/** Entry of the imported-Key cache: a registration's Key as of one version. */
export interface VersionedKey {
  version: number
  key: ImportedKey
}
