// Creating and re-activating registrations after a proven consent. Registration ids and Keys are
// made here so their format is decided in one place.
import { randomBytes, randomUUID } from 'node:crypto'
import type { CloudName } from '../clouds.js'
import { CONFLICT, retryOnConflict } from '../store/compare-and-set.js'
import { listAllRegistrations } from '../store/list-all.js'
import { uniquenessField } from '../store/registration-hash.js'
import type { Registration, Store } from '../store/types.js'
import { requireTenantLabel } from '../store/validation.js'

/** A new registration id: a random UUID (never contains `@`, which the integration splits on). */
export function newRegistrationId(): string {
  return randomUUID()
}

/** A new Key: standard padded base64 of 32 random bytes, as the integration's AES-GCM expects. */
export function newRegistrationKey(): string {
  return randomBytes(32).toString('base64')
}

/** The integration's **ID** field: `<registration_id>@<PUBLIC_URL>/obtain-token`. */
export function integrationId(registrationId: string, publicUrl: string): string {
  return `${registrationId}@${publicUrl}/obtain-token`
}

/** Version conflicts tolerated before giving up (each means someone else wrote in between). */
const MAX_CAS_ATTEMPTS = 5

/**
 * A registration could not be written: a new id was already taken, the delegated registration
 * kept changing under compare-and-set (every attempt lost to another writer), or the store named
 * another grant's registration as the holder of this one's uniqueness slot (a digest collision).
 * The consent fails rather than overwrite a newer state or another user's grant.
 */
export class RegistrationConflictError extends Error {
  override readonly name = 'RegistrationConflictError'
}

/** Who consented, from the verified ID token; empty strings when the token carried no such claim. */
export interface ConsentedBy {
  /** `preferred_username`, else `upn`. */
  upn: string
  /** `name`. */
  name: string
}

/** What an admin-consent registration is made of, once the consent is proven. */
export interface AdminRegistrationInput {
  /** The app's slug. */
  app: string
  /** The cloud chosen on the consent page; the registration keeps it for good. */
  cloud: CloudName
  /** `tid` of the validated ID token (never the callback's `tenant`). */
  tenantId: string
  /** ISO 8601 */
  now: string
  /** The tenant's own app, when it brought one: its client id and (confidential) client secret. */
  ownApp?: OwnAppCredentials
  /** Who consented (the administrator, or the delegated user). */
  consentedBy?: ConsentedBy
}

/** A tenant's own app registration as a registration keeps it. */
export interface OwnAppCredentials {
  clientId: string
  /** Absent for a public client (device code flow): nothing secret is kept for the app. */
  clientSecret?: string
}

function ownAppFields(input: AdminRegistrationInput) {
  if (input.ownApp === undefined) return { meta: {}, secrets: {} }
  return {
    meta: { ownClientId: input.ownApp.clientId },
    secrets: input.ownApp.clientSecret === undefined ? {} : { clientSecret: input.ownApp.clientSecret },
  }
}

function consentedByFields(upn: string | undefined, name: string | undefined) {
  return {
    ...(upn === undefined || upn === '' ? {} : { userName: upn }),
    ...(name === undefined || name === '' ? {} : { userDisplayName: name }),
  }
}

/**
 * The default label of a consenting user's tenant: the domain of their UPN (after the last `@`,
 * lower case), e.g. `contoso.com`; undefined when the UPN has none a label could hold. A guest's
 * UPN (`alice_fabrikam.com#EXT#@contoso.onmicrosoft.com`) names the tenant they consented in; a
 * guest whose `preferred_username` is their home address suggests their home domain (operators
 * correct it).
 */
export function defaultTenantLabel(upn: string | undefined): string | undefined {
  if (upn === undefined) return undefined
  const at = upn.lastIndexOf('@')
  const domain =
    at < 0
      ? ''
      : upn
          .slice(at + 1)
          .trim()
          .toLowerCase()
  try {
    requireTenantLabel(domain)
    return domain
  } catch {
    return undefined
  }
}

/**
 * Suggests the consenting user's domain as the tenant's label (the first suggestion of a tenant
 * wins; an operator's label is never replaced). Runs before the registration is written, so a
 * consent that completes has its tenant labelled.
 */
async function suggestTenantLabel(store: Store, input: AdminRegistrationInput): Promise<void> {
  const label = defaultTenantLabel(input.consentedBy?.upn)
  if (label !== undefined) await store.tenantLabels.suggest(input.tenantId, label)
}

/** Creates an admin-consent registration (a tenant may hold several; each has its own Key). */
export async function createAdminRegistration(
  store: Store,
  input: AdminRegistrationInput,
): Promise<{ registration: Registration; key: string }> {
  const key = newRegistrationKey()
  await suggestTenantLabel(store, input)
  const result = await store.registrations.create(
    {
      id: newRegistrationId(),
      app: input.app,
      cloud: input.cloud,
      tenantId: input.tenantId,
      kind: 'admin',
      ...consentedByFields(input.consentedBy?.upn, input.consentedBy?.name),
      ...ownAppFields(input).meta,
      status: 'active',
      createdAt: input.now,
      updatedAt: input.now,
      consentedAt: input.now,
    },
    { key, ...ownAppFields(input).secrets },
  )
  // Admin registrations have no uniqueness constraint; `created: false` would be a store bug.
  if (!result.created) throw new RegistrationConflictError('admin registration was not created')
  return { registration: result.registration, key }
}

/**
 * Consent for an app, cloud and tenant was just proven again: every admin registration of theirs
 * that waits for consent becomes active (compare-and-set, so a concurrent revocation wins).
 * Returns the ids it re-activated.
 */
export async function reactivateAdminRegistrations(
  store: Store,
  input: AdminRegistrationInput,
): Promise<string[]> {
  // The needs_consent index is read to decide: first complete the moves status changes left
  // pending (a Redis Cluster writes the record, then its index entry), or a registration whose
  // move to needs_consent was interrupted would wait for a consent that already came.
  await store.registrations.repairIndexes()
  const candidates: string[] = []
  for await (const item of listAllRegistrations(store.registrations, {
    tenantId: input.tenantId,
    app: input.app,
    status: 'needs_consent',
  })) {
    // Consent to the hosted app says nothing about a tenant's own app, and the other way round.
    if (
      item.kind === 'admin' &&
      item.cloud === input.cloud &&
      item.status === 'needs_consent' &&
      item.ownClientId === input.ownApp?.clientId
    )
      candidates.push(item.id)
  }

  const reactivated: string[] = []
  for (const id of candidates) {
    const outcome = await retryOnConflict({ attempts: MAX_CAS_ATTEMPTS }, async () => {
      const current = await store.registrations.getMeta(id)
      if (current === null) return false
      if (current.status !== 'needs_consent') {
        // Re-activated meanwhile: should that change have failed after its record's write, this
        // completes its index move.
        if (current.status === 'active') await store.registrations.syncIndexes(id)
        return false
      }
      const updated = await store.registrations.update(id, current.version, {
        status: 'active',
        statusDetail: null,
        consentedAt: input.now,
      })
      return updated === null ? CONFLICT : true
    })
    if (outcome === true) reactivated.push(id)
  }
  return reactivated
}

/** A delegated registration: the admin-consent fields plus the user and their grant. */
export interface DelegatedRegistrationInput extends AdminRegistrationInput {
  /** `oid` of the validated ID token: with app, cloud and tenant it identifies the registration. */
  userOid: string
  /** `preferred_username`, for display. */
  userName: string
  /** Microsoft's refresh token; stored sealed, never returned to anyone. */
  refreshToken: string
}

/**
 * A delegated consent's registration: a new one with its new Key, an existing one whose Key was
 * never handed out given a new Key (`reissued`), or an existing one renewed. A new or re-issued Key
 * comes with `unshownKey`, the id its one-time result must present to be shown ({@link markKeyShown}).
 */
export type UpsertedDelegatedRegistration =
  | { registration: Registration; reused: false; key: string; unshownKey: string; reissued: boolean }
  /** Renewed: its Key is unchanged and not returned, so no caller can show it again. */
  | { registration: Registration; reused: true }

/**
 * Creates the delegated registration of (app, cloud, tenant, user), or — when a non-revoked one
 * exists — stores the new refresh token in it and makes it active again, keeping its ID and Key so
 * integrations already configured with them keep working. An existing one whose Key was never handed
 * out (its result was lost: the store failed, or the process died, before the page took it) gets a
 * new Key instead, in the same compare-and-set write: the unshown Key is discarded, so the only Key
 * ever shown is one that no integration can be using yet.
 */
export async function upsertDelegatedRegistration(
  store: Store,
  input: DelegatedRegistrationInput,
): Promise<UpsertedDelegatedRegistration> {
  const key = newRegistrationKey()
  const unshownKey = randomUUID()
  const who = consentedByFields(input.userName, input.consentedBy?.name)
  await suggestTenantLabel(store, { ...input, consentedBy: { upn: input.userName, name: '' } })
  const outcome = await retryOnConflict({ attempts: MAX_CAS_ATTEMPTS }, async () => {
    const candidate = {
      id: newRegistrationId(),
      app: input.app,
      cloud: input.cloud,
      tenantId: input.tenantId,
      kind: 'delegated' as const,
      userOid: input.userOid,
      ...who,
      ...ownAppFields(input).meta,
      // In the record from its first write: a create that fails after it (a lost claim re-check, a
      // dropped connection) leaves a registration the next consent knows was never shown.
      unshownKey,
      status: 'active' as const,
      createdAt: input.now,
      updatedAt: input.now,
      consentedAt: input.now,
    }
    const result = await store.registrations.create(candidate, {
      key,
      refreshToken: input.refreshToken,
      ...ownAppFields(input).secrets,
    })
    if (result.created)
      return { registration: result.registration, key, unshownKey, reused: false as const, reissued: false }
    const existing = await store.registrations.get(result.existingId)
    if (existing === null) return CONFLICT // gone in between: its uniqueness slot is free again
    // The Redis store finds the holder by a digest of (app, cloud, tenant, user): should two
    // grants ever share one, this user's refresh token must not go into the other's registration.
    if (uniquenessField(existing.registration) !== uniquenessField(candidate)) {
      throw new RegistrationConflictError(
        `registration ${existing.registration.id} holds the uniqueness slot of another delegated grant`,
      )
    }
    // Revoked in between: its uniqueness slot is free again, so create anew.
    if (existing.registration.status === 'revoked') return CONFLICT
    // Never handed out (a record of the previous release has no marker: it counts as shown).
    const reissue = existing.registration.unshownKey !== undefined
    const updated = await store.registrations.update(
      existing.registration.id,
      existing.registration.version,
      {
        status: 'active',
        statusDetail: null,
        consentedAt: input.now,
        ...who,
        ...(reissue ? { unshownKey } : {}),
      },
      { refreshToken: input.refreshToken, ...ownAppFields(input).secrets, ...(reissue ? { key } : {}) },
    )
    // A concurrent write (e.g. a token refresh, the other tab's page showing the Key) bumped the
    // version: read again and retry, so a Key handed out meanwhile is never replaced.
    if (updated === null) return CONFLICT
    if (reissue) return { registration: updated, key, unshownKey, reused: false as const, reissued: true }
    return { registration: updated, reused: true as const }
  })
  if (outcome !== CONFLICT) return outcome
  throw new RegistrationConflictError('delegated registration kept changing during consent')
}

/**
 * Marks the Key named by `unshownKey` as handed out, just before its one-time result page shows it:
 * true when it is still the registration's unshown Key (now marked shown, compare-and-set), false
 * when it is not — a later consent re-issued the Key (it was never shown either: two tabs), or the
 * registration is gone or revoked — and the page must not show it. Throws what the store throws:
 * the page fails, the Key stays unshown and the next consent by the user issues a new one.
 */
export async function markKeyShown(
  store: Store,
  registrationId: string,
  unshownKey: string,
): Promise<boolean> {
  const outcome = await retryOnConflict({ attempts: MAX_CAS_ATTEMPTS }, async () => {
    const current = await store.registrations.getMeta(registrationId)
    if (current === null || current.status === 'revoked' || current.unshownKey !== unshownKey) return false
    const updated = await store.registrations.update(registrationId, current.version, { unshownKey: null })
    return updated === null ? CONFLICT : true
  })
  if (outcome !== CONFLICT) return outcome
  throw new RegistrationConflictError(`registration ${registrationId} kept changing while its Key was shown`)
}
