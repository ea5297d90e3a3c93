// The one record shape of a registration in both stores: a flat string hash of metadata, usage,
// sealed secrets and `version`. Encoding seals secrets (sealing.ts) and decoding never opens one
// unless asked (decodeStored), so listings can't leak a Key, refresh token or client secret by
// accident.
import { randomUUID } from 'node:crypto'
import type { KeyRing } from '../crypto/envelope.js'
import { openSecret, sealSecret } from './sealing.js'
import {
  REGISTRATION_STATUSES,
  type Registration,
  type RegistrationPatch,
  type RegistrationSecrets,
  type RegistrationStatus,
  type RegistrationUsage,
  type ResealedRegistration,
  type SecretsPatch,
  type StatusDetail,
  type StoredRegistration,
} from './types.js'
import { isoToMs, requireName } from './validation.js'
import type { OutboxEntry } from './webhook-types.js'

/** A registration as stored: field → string. */
export type RegistrationHash = Record<string, string>

/**
 * The metadata fields of a record (never secret), as hash field names. Each is the property of the
 * same name, except `name`, which holds `userDisplayName` (short: it is in every admin and
 * delegated record).
 */
export const META_FIELDS = [
  'id',
  'app',
  'cloud',
  'tenantId',
  'kind',
  'userOid',
  'userName',
  'name',
  'ownClientId',
  'unshownKey',
  'status',
  'statusDetail',
  'createdAt',
  'updatedAt',
  'consentedAt',
  'version',
] as const

/** The usage fields of a record, written without a version check. */
export const USAGE_FIELDS = ['lastIssuedAt', 'lastClient', 'lastRefreshAt'] as const

/** Every non-secret field, for reads that must never touch a secret. */
export const PUBLIC_FIELDS: readonly string[] = [...META_FIELDS, ...USAGE_FIELDS]

/**
 * The delegated uniqueness key: (app, cloud, tenant, user). Tenant and object ids are GUIDs, which
 * Entra may spell in either case, so they are lower-cased here (only here).
 */
export function uniquenessField(
  registration: Pick<Registration, 'kind' | 'app' | 'cloud' | 'tenantId' | 'userOid' | 'ownClientId'>,
) {
  if (registration.kind !== 'delegated' || registration.userOid === undefined) return undefined
  const key = [
    registration.app,
    registration.cloud,
    registration.tenantId.toLowerCase(),
    registration.userOid.toLowerCase(),
  ]
  // A user's grant to the tenant's own app is another grant than the one to the hosted app.
  if (registration.ownClientId !== undefined) key.push(`own:${registration.ownClientId.toLowerCase()}`)
  return JSON.stringify(key)
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
  if (registration.userDisplayName !== undefined) hash.name = registration.userDisplayName
  if (registration.ownClientId !== undefined) hash.ownClientId = registration.ownClientId
  if (registration.unshownKey !== undefined) hash.unshownKey = registration.unshownKey
  if (registration.statusDetail !== undefined) hash.statusDetail = JSON.stringify(registration.statusDetail)
  if (secrets.refreshToken !== undefined)
    hash.refreshToken = sealSecret(keyRing, id, 'refreshToken', secrets.refreshToken)
  if (secrets.clientSecret !== undefined)
    hash.clientSecret = sealSecret(keyRing, id, 'clientSecret', secrets.clientSecret)
  return hash
}

/** Fields a versioned update sets and deletes. */
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
  if (patch.userDisplayName !== undefined) set.name = patch.userDisplayName
  if (patch.unshownKey === null) del.push('unshownKey')
  else if (patch.unshownKey !== undefined) {
    requireName(patch.unshownKey, 'patch.unshownKey')
    set.unshownKey = patch.unshownKey
  }
  if (secrets?.key !== undefined) {
    requireName(secrets.key, 'secrets.key')
    set.key = sealSecret(keyRing, id, 'key', secrets.key)
  }
  if (secrets?.refreshToken === null) del.push('refreshToken')
  else if (secrets?.refreshToken !== undefined) {
    requireName(secrets.refreshToken, 'secrets.refreshToken')
    set.refreshToken = sealSecret(keyRing, id, 'refreshToken', secrets.refreshToken)
  }
  if (secrets?.clientSecret !== undefined) {
    requireName(secrets.clientSecret, 'secrets.clientSecret')
    set.clientSecret = sealSecret(keyRing, id, 'clientSecret', secrets.clientSecret)
  }
  return { set, del }
}

/** The usage fields to write (timestamps checked); empty when the usage names none. */
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
  if (hash.name !== undefined) registration.userDisplayName = hash.name
  if (hash.ownClientId !== undefined) registration.ownClientId = hash.ownClientId
  if (hash.unshownKey !== undefined) registration.unshownKey = hash.unshownKey
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

/** The metadata of a stored hash, without usage and secrets. */
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
  if (hash.clientSecret !== undefined) {
    secrets.clientSecret = openSecret(keyRing, registration.id, 'clientSecret', hash.clientSecret)
  }
  return { registration, usage, secrets }
}

/** Converts a flat `[field, value, …]` reply into a hash. */
export function pairsToHash(pairs: readonly string[]): RegistrationHash {
  const hash: RegistrationHash = {}
  for (let i = 0; i + 1 < pairs.length; i += 2) hash[pairs[i]!] = pairs[i + 1]!
  return hash
}

/** The `registration.created` outbox entry of a new record: its non-secret fields, a new event id. */
export function createdEntry(hash: RegistrationHash, at: string): OutboxEntry {
  const facts: Record<string, string> = {}
  for (const field of PUBLIC_FIELDS) {
    const value = hash[field]
    if (value !== undefined) facts[field] = value
  }
  return { id: randomUUID(), kind: 'registration.created', at, facts }
}

/**
 * The outbox entry of a versioned update that moved `previous` to the record now in `hash`, or
 * undefined when the move is not announced (no status change, active → active). The Redis store
 * builds the same entry in Lua (UPDATE_RECORD).
 */
export function transitionEntry(
  previous: RegistrationStatus,
  hash: RegistrationHash,
  at: string,
): OutboxEntry | undefined {
  const next = hash.status
  if (next === previous) return undefined
  const kind =
    next === 'revoked'
      ? 'registration.revoked'
      : next === 'needs_consent'
        ? 'registration.needs_consent'
        : next === 'active' && previous === 'needs_consent'
          ? 'registration.renewed'
          : undefined
  if (kind === undefined) return undefined
  const facts: Record<string, string> = { previousStatus: previous }
  for (const [field, value] of Object.entries(hash)) {
    if (field !== 'key' && field !== 'refreshToken') facts[field] = value
  }
  return { id: randomUUID(), kind, at, facts }
}

/** The facts of a logical record hash a re-seal reports (RegistrationStore.resealBatch). */
export function resealedFacts(
  id: string,
  hash: Readonly<Record<string, string | undefined>>,
): ResealedRegistration {
  return {
    id,
    kind: hash.kind as Registration['kind'],
    app: hash.app ?? '',
    cloud: hash.cloud as Registration['cloud'],
    tenantId: hash.tenantId ?? '',
    ...(hash.ownClientId === undefined ? {} : { ownClientId: hash.ownClientId }),
  }
}
