// Revocation: a registration (or every registration of a tenant) becomes `revoked` for good. One
// compare-and-set in the store flips the status and bumps the registration's version; the same write
// deletes the refresh token, and the cached access tokens are deleted right after. Obtain-token does
// not re-read the status on each request: each instance trusts its own cache of registrations (and
// of access tokens) only after the atomic admit call has confirmed, in the store and in the same
// request, that the registration is still active at the version checked. A revoke on any instance
// therefore refuses the very next request on every instance.
import type { FastifyBaseLogger } from 'fastify'
import {
  emptyReason,
  isBrokerError,
  registrationNotFound,
  revocationKeptConflicting,
  tenantWithoutRegistrations,
} from '../errors.js'
import { CONFLICT, type Conflict, retryOnConflict } from '../store/compare-and-set.js'
import { listAllRegistrations } from '../store/list-all.js'
import type { Registration, RegistrationUsage, StatusDetail, Store } from '../store/types.js'
import { type Actor, actorDisplayName, actorLabel, recordAudit } from './audit.js'
import { registrationTokenGroup, tenantTokenGroup } from './token-groups.js'

/** A registration's metadata with its usage (what listings and revocations show; no secret). */
export type RegistrationMeta = Registration & RegistrationUsage

/** What revocation needs: the store, the clock of `statusDetail.at`, a logger for the audit fallback. */
export interface RevocationDeps {
  readonly store: Store
  readonly clock: () => number
  readonly log: FastifyBaseLogger
}

/** Who revokes, why, and (for tenant self-service) within which tenant. */
export interface RevokeOptions {
  readonly actor: Actor
  /** Free text shown to the integration's admin in the `revoked` error and kept in the audit trail. */
  readonly reason: string
  /**
   * Tenant self-service: the registration must belong to this tenant (and app, when given), else it
   * is reported as not found, exactly like an id that doesn't exist.
   */
  readonly scope?: { readonly tenantId: string; readonly app?: string }
}

/** The outcome of revoking one registration (idempotent: revoking again reports the first revocation). */
export interface RevokeResult {
  readonly registration: RegistrationMeta
  /** True when it was revoked before this call; `registration.statusDetail` is the original one. */
  readonly alreadyRevoked: boolean
}

/** The outcome of revoking every registration of a tenant (of one app, when `app` is given). */
export interface TenantRevokeResult {
  readonly tenantId: string
  readonly app?: string
  /** Registrations this call revoked. */
  readonly revoked: RegistrationMeta[]
  /** Registrations of the tenant (and app) that were revoked before. */
  readonly alreadyRevoked: number
}

const CAS_ATTEMPTS = 8

/** The `statusDetail.code` of a revocation: `tenant_admin_revoked` or `operator_revoked`. */
export function revocationCode(actor: Actor): string {
  return actor.kind === 'tenant_admin' ? 'tenant_admin_revoked' : 'operator_revoked'
}

function inScope(meta: RegistrationMeta, scope: RevokeOptions['scope']): boolean {
  if (scope === undefined) return true
  if (meta.tenantId.toLowerCase() !== scope.tenantId.toLowerCase()) return false
  return scope.app === undefined || meta.app === scope.app
}

/**
 * Moves one registration to `revoked` with compare-and-set (retried when a token refresh bumped the
 * version in between), deleting its refresh token in the same write. Never records an audit event;
 * callers do.
 */
async function transition(
  deps: RevocationDeps,
  id: string,
  detail: StatusDetail,
  scope: RevokeOptions['scope'],
): Promise<RevokeResult> {
  const outcome = await retryOnConflict(
    { attempts: CAS_ATTEMPTS, backoffMs: (attempt) => 5 * (attempt + 1) },
    async (): Promise<RevokeResult | Conflict> => {
      const meta = await deps.store.registrations.getMeta(id)
      if (meta === null || !inScope(meta, scope)) throw registrationNotFound(id)
      if (meta.status === 'revoked') {
        // A revocation that failed after its record's write (its index move, on a Redis Cluster)
        // is retried here: the retry writes nothing, so it completes that move.
        await deps.store.registrations.syncIndexes(id)
        return { registration: meta, alreadyRevoked: true }
      }
      const updated = await deps.store.registrations.update(
        id,
        meta.version,
        { status: 'revoked', statusDetail: detail },
        { refreshToken: null },
      )
      if (updated !== null) return { registration: { ...meta, ...updated }, alreadyRevoked: false }
      // A concurrent write (typically a refresh storing a rotated refresh token) won; read again.
      return CONFLICT
    },
  )
  if (outcome !== CONFLICT) return outcome
  throw revocationKeptConflicting(id)
}

/** True when another registration still issues tokens from the app+tenant cache group. */
async function tenantGroupStillUsed(deps: RevocationDeps, registration: Registration): Promise<boolean> {
  for await (const item of listAllRegistrations(deps.store.registrations, {
    tenantId: registration.tenantId,
    app: registration.app,
    status: 'active',
  })) {
    if (item.id !== registration.id && item.kind === 'admin' && item.cloud === registration.cloud) return true
  }
  return false
}

/**
 * Deletes cached access tokens. Also run for an already revoked registration, so a revocation that
 * was interrupted between the status write and this step is completed by repeating it.
 */
async function purgeTokens(deps: RevocationDeps, registration: Registration): Promise<void> {
  await deps.store.tokens.deleteGroup(registrationTokenGroup(registration.id))
  if (registration.kind === 'admin' && !(await tenantGroupStillUsed(deps, registration))) {
    await deps.store.tokens.deleteGroup(tenantTokenGroup(registration))
  }
}

/** The status detail of a revocation by `actor`; the reason trimmed and not blank. */
function revocationDetail(
  deps: RevocationDeps,
  options: { readonly actor: Actor; readonly reason: string },
): StatusDetail & { reason: string } {
  const reason = options.reason.trim()
  if (reason === '') throw emptyReason()
  return {
    code: revocationCode(options.actor),
    at: new Date(deps.clock()).toISOString(),
    by: actorDisplayName(options.actor),
    reason,
  }
}

/** Revokes one registration. Idempotent: a revoked registration is returned with its original detail. */
export async function revokeRegistration(
  deps: RevocationDeps,
  id: string,
  options: RevokeOptions,
): Promise<RevokeResult> {
  const detail = revocationDetail(deps, options)
  const reason = detail.reason
  const result = await transition(deps, id, detail, options.scope)
  await purgeTokens(deps, result.registration)
  if (!result.alreadyRevoked) {
    const registration = result.registration
    await recordAudit(deps.store, deps.log, {
      type: 'registration.revoked',
      actor: actorLabel(options.actor),
      tenantId: registration.tenantId,
      app: registration.app,
      registrationId: registration.id,
      detail: { reason, code: detail.code, kind: registration.kind, cloud: registration.cloud },
    })
    deps.log.info(
      {
        registrationId: registration.id,
        tenantId: registration.tenantId,
        app: registration.app,
        by: detail.by,
      },
      'registration revoked',
    )
  }
  return result
}

/**
 * Revokes every registration of a tenant (of one app when `app` is given). Registrations created
 * while this runs (a new consent) are not revoked: a new consent is a new registration.
 * Throws not_found when the tenant has no registration at all (for that app).
 */
export async function revokeTenant(
  deps: RevocationDeps,
  tenantId: string,
  options: { readonly actor: Actor; readonly reason: string; readonly app?: string },
): Promise<TenantRevokeResult> {
  const detail = revocationDetail(deps, options)
  const reason = detail.reason
  const scope = { tenantId, ...(options.app === undefined ? {} : { app: options.app }) }
  const targets: string[] = []
  const sharedGroups = new Set<string>()
  let total = 0
  for await (const item of listAllRegistrations(deps.store.registrations, scope)) {
    total++
    if (item.status !== 'revoked') targets.push(item.id)
    if (item.kind === 'admin') sharedGroups.add(tenantTokenGroup(item))
  }
  if (total === 0) {
    throw tenantWithoutRegistrations(tenantId, options.app)
  }

  const revoked: RegistrationMeta[] = []
  let alreadyRevoked = total - targets.length
  for (const id of targets) {
    let result: RevokeResult
    try {
      result = await transition(deps, id, detail, scope)
    } catch (error) {
      // Deleted meanwhile: nothing left to revoke.
      if (isBrokerError(error) && error.code === 'not_found') continue
      throw error
    }
    if (result.alreadyRevoked) {
      alreadyRevoked++
      continue
    }
    revoked.push(result.registration)
    await deps.store.tokens.deleteGroup(registrationTokenGroup(id))
    await recordAudit(deps.store, deps.log, {
      type: 'registration.revoked',
      actor: actorLabel(options.actor),
      tenantId: result.registration.tenantId,
      app: result.registration.app,
      registrationId: id,
      detail: { reason, code: detail.code, kind: result.registration.kind, via: 'tenant' },
    })
  }
  // Every admin registration of these app+tenant pairs is revoked now: drop their shared tokens
  // (also when they were revoked before, to complete an interrupted revocation).
  for (const group of sharedGroups) await deps.store.tokens.deleteGroup(group)

  await recordAudit(deps.store, deps.log, {
    type: 'tenant.revoked',
    actor: actorLabel(options.actor),
    tenantId,
    ...(options.app === undefined ? {} : { app: options.app }),
    detail: { reason, code: detail.code, revoked: revoked.length, alreadyRevoked },
  })
  deps.log.info(
    { tenantId, app: options.app, revoked: revoked.length, alreadyRevoked, by: detail.by },
    'tenant revoked',
  )
  return {
    tenantId,
    ...(options.app === undefined ? {} : { app: options.app }),
    revoked,
    alreadyRevoked,
  }
}

/**
 * Revocation bound to the app's store and clock, built once by createServices; each call takes the
 * request's logger.
 */
export class Revocation {
  readonly #store: Store
  readonly #clock: () => number

  constructor(deps: { readonly store: Store; readonly clock: () => number }) {
    this.#store = deps.store
    this.#clock = deps.clock
  }

  /** {@link revokeRegistration} with this app's store and clock. */
  registration(id: string, options: RevokeOptions, log: FastifyBaseLogger): Promise<RevokeResult> {
    return revokeRegistration({ store: this.#store, clock: this.#clock, log }, id, options)
  }

  /** {@link revokeTenant} with this app's store and clock. */
  tenant(
    tenantId: string,
    options: { readonly actor: Actor; readonly reason: string; readonly app?: string },
    log: FastifyBaseLogger,
  ): Promise<TenantRevokeResult> {
    return revokeTenant({ store: this.#store, clock: this.#clock, log }, tenantId, options)
  }
}
