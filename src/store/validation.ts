// Argument checks both stores run before touching storage, so bad input gets the same TypeError or
// RangeError (same message) from Redis and memory alike, and nothing half-valid is ever written.
import { isCloudName } from '../clouds.js'
import { CONSENT_KINDS } from '../consent-kinds.js'
import { isOneLineText, REFUSED_CHARACTERS_WORDS } from '../one-line-text.js'
import {
  type AdmitRequest,
  REGISTRATION_STATUSES,
  type Registration,
  type RegistrationSecrets,
} from './types.js'

/** A TTL or window in whole ms (rounded up); RangeError below 1 ms or when not finite. */
export function requirePositiveMs(value: number, what: string): number {
  if (!Number.isFinite(value) || value < 1) throw new RangeError(`${what} must be at least 1 ms`)
  return Math.ceil(value)
}

/** Asserts a non-empty string (ids, keys, names); TypeError otherwise. */
export function requireName(value: unknown, what: string): asserts value is string {
  if (typeof value !== 'string' || value.length === 0)
    throw new TypeError(`${what} must be a non-empty string`)
}

/** Asserts a safe integer of at least 1 (versions, limits); RangeError otherwise. */
export function requirePositiveInteger(value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${what} must be a positive integer`)
}

/** Checks the arguments of `RegistrationStore.admit`; the TTLs come back in whole ms. */
export function admitArguments(
  id: string,
  request: AdmitRequest,
): { replayTtlMs: number; windowMs: number; clientWindowMs: number | undefined } {
  requireName(id, 'registration id')
  requireName(request.replayMarker, 'replay marker')
  requirePositiveInteger(request.version, 'version')
  requirePositiveInteger(request.limit, 'limit')
  if (request.client !== undefined) {
    requireName(request.client.key, 'rate-limit key')
    requirePositiveInteger(request.client.limit, 'client.limit')
  }
  return {
    replayTtlMs: requirePositiveMs(request.replayTtlMs, 'replayTtlMs'),
    windowMs: requirePositiveMs(request.windowMs, 'windowMs'),
    clientWindowMs:
      request.client === undefined
        ? undefined
        : requirePositiveMs(request.client.windowMs, 'client.windowMs'),
  }
}

/** Epoch ms of an ISO 8601 timestamp; TypeError naming `what` when it doesn't parse. */
export function isoToMs(iso: string, what: string): number {
  const ms = Date.parse(iso)
  if (!Number.isFinite(ms))
    throw new TypeError(`${what} is not an ISO 8601 timestamp: ${JSON.stringify(iso)}`)
  return ms
}

/** Checks a registration and its secrets before `RegistrationStore.create` writes anything. */
export function validateNewRegistration(
  registration: Omit<Registration, 'version'>,
  secrets: RegistrationSecrets,
): void {
  requireName(registration.id, 'registration.id')
  requireName(registration.app, 'registration.app')
  requireName(registration.tenantId, 'registration.tenantId')
  if (!isCloudName(registration.cloud))
    throw new TypeError(`unknown cloud ${JSON.stringify(registration.cloud)}`)
  if (!CONSENT_KINDS.includes(registration.kind)) {
    throw new TypeError(`unknown consent kind ${JSON.stringify(registration.kind)}`)
  }
  if (registration.kind === 'delegated') requireName(registration.userOid, 'registration.userOid (delegated)')
  if (!REGISTRATION_STATUSES.includes(registration.status)) {
    throw new TypeError(`unknown status ${JSON.stringify(registration.status)}`)
  }
  isoToMs(registration.createdAt, 'registration.createdAt')
  isoToMs(registration.updatedAt, 'registration.updatedAt')
  isoToMs(registration.consentedAt, 'registration.consentedAt')
  requireName(secrets.key, 'secrets.key')
  if (secrets.refreshToken !== undefined) requireName(secrets.refreshToken, 'secrets.refreshToken')
  if (registration.ownClientId !== undefined)
    requireName(registration.ownClientId, 'registration.ownClientId')
  if (secrets.clientSecret !== undefined) {
    if (registration.ownClientId === undefined)
      throw new TypeError('secrets.clientSecret needs registration.ownClientId')
    requireName(secrets.clientSecret, 'secrets.clientSecret')
  }
}

/**
 * Longest tenant label, in characters as JavaScript counts them (UTF-16 code units: a character
 * outside the Basic Multilingual Plane, e.g. an emoji, counts two).
 */
export const TENANT_LABEL_MAX = 100

/** Whether `value` is a tenant label: 1..TENANT_LABEL_MAX characters of one-line text. */
export function isTenantLabel(value: unknown): value is string {
  return typeof value === 'string' && value.length <= TENANT_LABEL_MAX && isOneLineText(value)
}

/** Asserts a tenant label (see {@link isTenantLabel}); TypeError otherwise. */
export function requireTenantLabel(value: unknown): asserts value is string {
  if (!isTenantLabel(value))
    throw new TypeError(
      `a tenant label must be 1 to ${TENANT_LABEL_MAX} characters, without ${REFUSED_CHARACTERS_WORDS}`,
    )
}
