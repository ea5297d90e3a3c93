// Shared by redis.ts and memory.ts so the two stores keep the same record shape: a registration is
// one flat string hash (metadata, usage, sealed secrets, version). Secrets are sealed here, with
// associated data naming the record and field, so a ciphertext copied elsewhere fails to open.
import { isCloudName } from '../clouds.js'
import { CONSENT_KINDS } from '../consent-kinds.js'
import type { KeyRing } from '../crypto/envelope.js'
import { BrokerError } from '../errors.js'
import {
  type AdmitRequest,
  type AuditEvent,
  type AuditRecord,
  type AuditType,
  type CachedToken,
  type RateLimitResult,
  REGISTRATION_STATUSES,
  type Registration,
  type RegistrationPatch,
  type RegistrationQuery,
  type RegistrationSecrets,
  type RegistrationStatus,
  type RegistrationUsage,
  type SecretsPatch,
  type StatusDetail,
  type StoredRegistration,
} from './types.js'

/** A registration as stored: field → string. */
export type RegistrationHash = Record<string, string>

export const META_FIELDS = [
  'id',
  'app',
  'cloud',
  'tenantId',
  'kind',
  'userOid',
  'userName',
  'status',
  'statusDetail',
  'createdAt',
  'updatedAt',
  'consentedAt',
  'version',
] as const
export const USAGE_FIELDS = ['lastIssuedAt', 'lastClient', 'lastRefreshAt'] as const
export const SECRET_FIELDS = ['key', 'refreshToken'] as const
export type SecretField = (typeof SECRET_FIELDS)[number]
/** Every non-secret field, for reads that must never touch a secret. */
export const PUBLIC_FIELDS: readonly string[] = [...META_FIELDS, ...USAGE_FIELDS]

const AAD_FIELD_NAMES: Record<SecretField, string> = { key: 'key', refreshToken: 'refresh_token' }

export function registrationAad(id: string, field: SecretField): string {
  return `registration:${id}:${AAD_FIELD_NAMES[field]}`
}

export function tokenAad(group: string, scope: string): string {
  return `token:${group}:${scope}`
}

export function ephemeralAad(key: string): string {
  return `ephemeral:${key}`
}

// ---- arguments and sealed values, checked and encoded alike by both stores -----------------

export function requirePositiveMs(value: number, what: string): number {
  if (!Number.isFinite(value) || value < 1) throw new RangeError(`${what} must be at least 1 ms`)
  return Math.ceil(value)
}

export function requireName(value: unknown, what: string): asserts value is string {
  if (typeof value !== 'string' || value.length === 0)
    throw new TypeError(`${what} must be a non-empty string`)
}

function requirePositiveInteger(value: number, what: string): void {
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

/** A fixed-window answer from the window's count after this hit and its remaining ms. */
export function rateLimitResult(count: number, limit: number, ttlMs: number): RateLimitResult {
  const allowed = count <= limit
  return { allowed, remaining: Math.max(0, limit - count), retryAfterMs: allowed ? 0 : Math.max(1, ttlMs) }
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
  }
  return keyRing.seal(JSON.stringify(payload), tokenAad(group, scope))
}

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

/** The error thrown when a patch tries to bring a revoked registration back. */
export function revokedIsFinal(id: string): BrokerError {
  return new BrokerError('conflict', `registration ${id} is revoked; revocation is final`)
}

export function isoToMs(iso: string, what: string): number {
  const ms = Date.parse(iso)
  if (!Number.isFinite(ms))
    throw new TypeError(`${what} is not an ISO 8601 timestamp: ${JSON.stringify(iso)}`)
  return ms
}

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
}

/**
 * The delegated uniqueness key: (app, cloud, tenant, user). Tenant and object ids are GUIDs, which
 * Entra may spell in either case, so they are lower-cased here (only here).
 */
export function uniquenessField(
  registration: Pick<Registration, 'kind' | 'app' | 'cloud' | 'tenantId' | 'userOid'>,
) {
  if (registration.kind !== 'delegated' || registration.userOid === undefined) return undefined
  return JSON.stringify([
    registration.app,
    registration.cloud,
    registration.tenantId.toLowerCase(),
    registration.userOid.toLowerCase(),
  ])
}

export function sealSecret(keyRing: KeyRing, id: string, field: SecretField, value: string): string {
  return keyRing.seal(value, registrationAad(id, field))
}

export function openSecret(keyRing: KeyRing, id: string, field: SecretField, sealed: string): string {
  return keyRing.open(sealed, registrationAad(id, field))
}

/** The full hash of a new registration (version 1), secrets sealed. */
export function encodeNewRegistration(
  keyRing: KeyRing,
  registration: Omit<Registration, 'version'>,
  secrets: RegistrationSecrets,
): RegistrationHash {
  const id = registration.id
  const hash: RegistrationHash = {
    id,
    app: registration.app,
    cloud: registration.cloud,
    tenantId: registration.tenantId,
    kind: registration.kind,
    status: registration.status,
    createdAt: registration.createdAt,
    updatedAt: registration.updatedAt,
    consentedAt: registration.consentedAt,
    version: '1',
    key: sealSecret(keyRing, id, 'key', secrets.key),
  }
  if (registration.userOid !== undefined) hash.userOid = registration.userOid
  if (registration.userName !== undefined) hash.userName = registration.userName
  if (registration.statusDetail !== undefined) hash.statusDetail = JSON.stringify(registration.statusDetail)
  if (secrets.refreshToken !== undefined)
    hash.refreshToken = sealSecret(keyRing, id, 'refreshToken', secrets.refreshToken)
  return hash
}

export interface HashChanges {
  set: RegistrationHash
  del: string[]
}

/** Field changes of a versioned update (the version bump itself is the store's job). */
export function encodeUpdate(
  keyRing: KeyRing,
  id: string,
  patch: RegistrationPatch,
  secrets: SecretsPatch | undefined,
  updatedAt: string,
): HashChanges {
  const set: RegistrationHash = { updatedAt }
  const del: string[] = []
  if (patch.status !== undefined) {
    if (!REGISTRATION_STATUSES.includes(patch.status))
      throw new TypeError(`unknown status ${JSON.stringify(patch.status)}`)
    set.status = patch.status
  }
  if (patch.statusDetail === null) del.push('statusDetail')
  else if (patch.statusDetail !== undefined) set.statusDetail = JSON.stringify(patch.statusDetail)
  if (patch.consentedAt !== undefined) {
    isoToMs(patch.consentedAt, 'patch.consentedAt')
    set.consentedAt = patch.consentedAt
  }
  if (patch.userName !== undefined) set.userName = patch.userName
  if (secrets?.key !== undefined) {
    requireName(secrets.key, 'secrets.key')
    set.key = sealSecret(keyRing, id, 'key', secrets.key)
  }
  if (secrets?.refreshToken === null) del.push('refreshToken')
  else if (secrets?.refreshToken !== undefined) {
    requireName(secrets.refreshToken, 'secrets.refreshToken')
    set.refreshToken = sealSecret(keyRing, id, 'refreshToken', secrets.refreshToken)
  }
  return { set, del }
}

export function encodeUsage(usage: RegistrationUsage): RegistrationHash {
  const set: RegistrationHash = {}
  if (usage.lastIssuedAt !== undefined) {
    isoToMs(usage.lastIssuedAt, 'usage.lastIssuedAt')
    set.lastIssuedAt = usage.lastIssuedAt
  }
  if (usage.lastClient !== undefined) set.lastClient = usage.lastClient
  if (usage.lastRefreshAt !== undefined) {
    isoToMs(usage.lastRefreshAt, 'usage.lastRefreshAt')
    set.lastRefreshAt = usage.lastRefreshAt
  }
  return set
}

/** Metadata and usage of a stored hash; never touches a secret field. */
export function decodeMeta(
  hash: Readonly<Record<string, string | undefined>>,
): Registration & RegistrationUsage {
  const registration: Registration & RegistrationUsage = {
    id: hash.id ?? '',
    app: hash.app ?? '',
    cloud: hash.cloud as Registration['cloud'],
    tenantId: hash.tenantId ?? '',
    kind: hash.kind as Registration['kind'],
    status: hash.status as RegistrationStatus,
    createdAt: hash.createdAt ?? '',
    updatedAt: hash.updatedAt ?? '',
    consentedAt: hash.consentedAt ?? '',
    version: Number(hash.version ?? '0'),
  }
  if (hash.userOid !== undefined) registration.userOid = hash.userOid
  if (hash.userName !== undefined) registration.userName = hash.userName
  if (hash.statusDetail !== undefined)
    registration.statusDetail = JSON.parse(hash.statusDetail) as StatusDetail
  for (const field of USAGE_FIELDS) {
    const value = hash[field]
    if (value !== undefined) registration[field] = value
  }
  return registration
}

/** Splits metadata and usage apart (the store API returns both shapes). */
export function splitMeta(meta: Registration & RegistrationUsage): {
  registration: Registration
  usage: RegistrationUsage
} {
  const { lastIssuedAt, lastClient, lastRefreshAt, ...registration } = meta
  const usage: RegistrationUsage = {}
  if (lastIssuedAt !== undefined) usage.lastIssuedAt = lastIssuedAt
  if (lastClient !== undefined) usage.lastClient = lastClient
  if (lastRefreshAt !== undefined) usage.lastRefreshAt = lastRefreshAt
  return { registration, usage }
}

export function decodeRegistration(hash: Readonly<Record<string, string | undefined>>): Registration {
  return splitMeta(decodeMeta(hash)).registration
}

/** Metadata, usage and opened secrets. Throws (EnvelopeError) when a secret fails to open. */
export function decodeStored(
  keyRing: KeyRing,
  hash: Readonly<Record<string, string | undefined>>,
): StoredRegistration {
  const { registration, usage } = splitMeta(decodeMeta(hash))
  const sealedKey = hash.key
  if (sealedKey === undefined) throw new Error(`registration ${registration.id} has no key`)
  const secrets: RegistrationSecrets = { key: openSecret(keyRing, registration.id, 'key', sealedKey) }
  if (hash.refreshToken !== undefined) {
    secrets.refreshToken = openSecret(keyRing, registration.id, 'refreshToken', hash.refreshToken)
  }
  return { registration, usage, secrets }
}

/** Converts a flat `[field, value, …]` reply into a hash. */
export function pairsToHash(pairs: readonly string[]): RegistrationHash {
  const hash: RegistrationHash = {}
  for (let i = 0; i + 1 < pairs.length; i += 2) hash[pairs[i]!] = pairs[i + 1]!
  return hash
}

// ---- pagination ----------------------------------------------------------------------------

/** Whether a registration passes a listing's filters (tenant, app, status). */
export function matchesQuery(
  registration: { readonly tenantId?: string; readonly app?: string; readonly status?: string },
  query: RegistrationQuery,
): boolean {
  return (
    (query.tenantId === undefined || registration.tenantId === query.tenantId) &&
    (query.app === undefined || registration.app === query.app) &&
    (query.status === undefined || registration.status === query.status)
  )
}

/** A position in an index ordered by (creation time, id). */
export interface IndexPosition {
  score: number
  id: string
}

export const DEFAULT_PAGE_SIZE = 50
export const MAX_PAGE_SIZE = 500

/** 1..max (default when absent); fractional and out-of-range values are clamped. */
export function clampLimit(
  limit: number | undefined,
  fallback = DEFAULT_PAGE_SIZE,
  max = MAX_PAGE_SIZE,
): number {
  if (limit === undefined || !Number.isFinite(limit)) return fallback
  return Math.min(max, Math.max(1, Math.trunc(limit)))
}

/** Ids compare as Redis compares sorted-set members with equal scores: bytewise. */
export function compareIds(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'))
}

export function comparePositions(a: IndexPosition, b: IndexPosition): number {
  return a.score === b.score ? compareIds(a.id, b.id) : a.score < b.score ? -1 : 1
}

export function encodeCursor(position: IndexPosition): string {
  return Buffer.from(JSON.stringify([position.score, position.id]), 'utf8').toString('base64url')
}

export function decodeCursor(cursor: string): IndexPosition {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
    if (
      Array.isArray(value) &&
      value.length === 2 &&
      typeof value[0] === 'number' &&
      Number.isFinite(value[0]) &&
      typeof value[1] === 'string'
    ) {
      return { score: value[0], id: value[1] }
    }
  } catch {
    // fall through
  }
  throw new BrokerError('invalid_request', 'cursor is malformed')
}

// ---- audit ---------------------------------------------------------------------------------

const AUDIT_ID = /^\d+-\d+$/

export function assertAuditCursor(cursor: string): void {
  if (!AUDIT_ID.test(cursor)) throw new BrokerError('invalid_request', 'audit cursor is malformed')
}

/** A page of audit records; a full page carries its last id as the cursor of the next. */
export function auditPage(
  items: AuditRecord[],
  limit: number,
): { items: AuditRecord[]; nextCursor?: string } {
  const last = items[items.length - 1]
  return { items, ...(items.length === limit && last !== undefined ? { nextCursor: last.id } : {}) }
}

/** An audit event as flat stream fields (detail as JSON). */
export function encodeAuditFields(event: AuditEvent, at: string): string[] {
  const fields = ['type', event.type, 'actor', event.actor, 'at', at]
  if (event.tenantId !== undefined) fields.push('tenantId', event.tenantId)
  if (event.app !== undefined) fields.push('app', event.app)
  if (event.registrationId !== undefined) fields.push('registrationId', event.registrationId)
  if (event.detail !== undefined) fields.push('detail', JSON.stringify(event.detail))
  return fields
}

export function decodeAuditFields(id: string, fields: readonly string[]): AuditRecord {
  const hash = pairsToHash(fields)
  const record: AuditRecord = {
    id,
    type: hash.type as AuditType,
    actor: hash.actor ?? '',
    at: hash.at ?? '',
  }
  if (hash.tenantId !== undefined) record.tenantId = hash.tenantId
  if (hash.app !== undefined) record.app = hash.app
  if (hash.registrationId !== undefined) record.registrationId = hash.registrationId
  if (hash.detail !== undefined) record.detail = JSON.parse(hash.detail) as AuditRecord['detail']
  return record
}
