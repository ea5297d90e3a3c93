// A registration's life as the token issuer sees it: the answer for one that is not `active`,
// reading a delegated registration's newest state and refresh token under the refresh lock, moving
// it to `needs_consent` when Entra no longer accepts the grant, storing the refresh token Entra
// rotated, and recording when it was last refreshed (the keep-alive's clock).
import type { FastifyBaseLogger } from 'fastify'
import type { Config } from '../config.js'
import { type BrokerError, consentRequired, registrationGone, registrationRevoked } from '../errors.js'
import { CONFLICT, retryOnConflict } from '../store/compare-and-set.js'
import type { Registration, Store } from '../store/types.js'
import { consentReason } from './consent-reasons.js'
import { tokenGroup } from './token-groups.js'

/** Where the user or admin consents (again) to an app. */
export function consentUrl(config: Config, app: string): string {
  return `${config.publicUrl}/${app}`
}

/** The 401 `consent_required`: `why` (a consent-reasons.ts text), who must consent again and where. */
export function consentRequiredError(config: Config, registration: Registration, why: string): BrokerError {
  return consentRequired(why, registration.kind, consentUrl(config, registration.app))
}

/** The 401 for a registration that is not `active`. */
export function registrationStatusError(config: Config, registration: Registration): BrokerError {
  const url = consentUrl(config, registration.app)
  if (registration.status === 'revoked') {
    const detail = registration.statusDetail
    const at = detail?.at ?? registration.updatedAt
    const reason = detail?.reason ?? detail?.message
    const by = detail?.by
    return registrationRevoked({ at, by, reason, consentUrl: url })
  }
  return consentRequiredError(config, registration, consentReason(registration.statusDetail?.code).reason)
}

/** What the registration lifecycle needs. */
export interface RegistrationLifecycleDeps {
  config: Config
  store: Store
  logger: FastifyBaseLogger
  clock: () => number
  /** Called when a registration's cached tokens are dropped (the issuer's own copies go too). */
  onTokensDropped: (group: string) => void
}

/** The registration state changes a token refresh causes; each is compare-and-set on `version`. */
export class RegistrationLifecycle {
  readonly #deps: RegistrationLifecycleDeps

  constructor(deps: RegistrationLifecycleDeps) {
    this.#deps = deps
  }

  /**
   * A delegated registration's newest state and refresh token, read under the refresh lock: it may
   * have been revoked meanwhile, and another instance may have rotated the refresh token. Throws
   * the status error when it is no longer active, and marks it `needs_consent` when no refresh
   * token is stored.
   */
  async readForRefresh(
    id: string,
  ): Promise<{ registration: Registration; refreshToken: string; clientSecret?: string }> {
    const { store, config } = this.#deps
    const stored = await store.registrations.get(id)
    if (stored === null) throw registrationGone()
    const registration = stored.registration
    if (registration.status !== 'active') throw registrationStatusError(config, registration)
    const refreshToken = stored.secrets.refreshToken
    if (refreshToken === undefined || refreshToken === '') {
      await this.markNeedsConsent(registration, 'no_refresh_token', 'no refresh token is stored')
      throw consentRequiredError(config, registration, consentReason('no_refresh_token').reason)
    }
    const clientSecret = stored.secrets.clientSecret
    return { registration, refreshToken, ...(clientSecret === undefined ? {} : { clientSecret }) }
  }

  /** An own-app admin registration's client secret (sealed in the store), read under the lock. */
  async readOwnAppSecret(id: string): Promise<{ registration: Registration; clientSecret?: string }> {
    const { store, config } = this.#deps
    const stored = await store.registrations.get(id)
    if (stored === null) throw registrationGone()
    if (stored.registration.status !== 'active') throw registrationStatusError(config, stored.registration)
    const clientSecret = stored.secrets.clientSecret
    return { registration: stored.registration, ...(clientSecret === undefined ? {} : { clientSecret }) }
  }

  /**
   * Moves an active registration to `needs_consent` (compare-and-set, re-read on conflict). Given
   * the refresh token Entra refused, it first checks that the registration still holds it: one
   * written meanwhile (a new consent, or another instance's refresh after a lost lock lease) may
   * well work, so nothing is marked and it returns false.
   */
  async markNeedsConsent(
    registration: Registration,
    code: string,
    message: string,
    refusedRefreshToken?: string,
  ): Promise<boolean> {
    const { store, clock, logger } = this.#deps
    let superseded = false
    const marked = await retryOnConflict({ attempts: 5 }, async (attempt) => {
      let current: Registration | null
      if (refusedRefreshToken !== undefined) {
        const stored = await store.registrations.get(registration.id)
        superseded =
          stored !== null &&
          stored.registration.status === 'active' &&
          stored.secrets.refreshToken !== refusedRefreshToken
        if (superseded) return undefined
        current = stored?.registration ?? null
      } else {
        current = attempt === 0 ? registration : await store.registrations.getMeta(registration.id)
      }
      if (current === null || current.status !== 'active') return undefined
      const at = new Date(clock()).toISOString()
      const updated = await store.registrations.update(current.id, current.version, {
        status: 'needs_consent',
        statusDetail: { code, message, at },
      })
      return updated === null ? CONFLICT : current
    })
    if (superseded) {
      logger.info(
        { registrationId: registration.id, code },
        'Entra refused a refresh token the registration no longer holds: left active',
      )
      return false
    }
    if (marked === undefined) return true
    if (marked === CONFLICT) {
      logger.warn(
        { registrationId: registration.id },
        'could not mark the registration needs_consent (conflicts)',
      )
      return true
    }
    const current = marked
    logger.warn(
      { registrationId: current.id, app: current.app, tenantId: current.tenantId, code },
      'registration needs consent again',
    )
    await Promise.all([
      store.audit
        .append({
          type: 'registration.status_changed',
          actor: 'system',
          tenantId: current.tenantId,
          app: current.app,
          registrationId: current.id,
          detail: { from: 'active', to: 'needs_consent', code },
        })
        .catch((e: unknown) => logger.warn({ err: e }, 'could not append the audit event')),
      (async () => {
        this.#deps.onTokensDropped(tokenGroup(current))
        await store.tokens.deleteGroup(tokenGroup(current))
      })().catch((e: unknown) => logger.warn({ err: e }, 'could not drop cached tokens')),
    ])
    return true
  }

  /**
   * Stores the rotated refresh token with compare-and-set on the version `registration` was read at
   * together with `used` (under the refresh lock). On a conflict it re-reads: a revoked registration
   * is never given a token back, and a refresh token written by someone else after we read ours (a
   * new consent) is kept; otherwise ours — the newest — is written on the new version.
   */
  async storeRotatedRefreshToken(registration: Registration, used: string, rotated: string): Promise<void> {
    const { store, logger } = this.#deps
    const id = registration.id
    let current: Registration = registration
    // true: stored, or rightly left alone
    const settled = await retryOnConflict({ attempts: 8 }, async () => {
      if (current.status === 'revoked') return true
      const updated = await store.registrations.update(id, current.version, {}, { refreshToken: rotated })
      if (updated !== null) return true
      const again = await store.registrations.get(id)
      if (again === null) return true
      if (again.secrets.refreshToken !== used && again.secrets.refreshToken !== rotated) {
        logger.info(
          { registrationId: id },
          'kept a refresh token written by another writer during the refresh',
        )
        return true
      }
      if (again.secrets.refreshToken === rotated) return true
      current = again.registration
      return CONFLICT
    })
    if (settled === true) return
    logger.warn(
      { registrationId: id },
      'could not store the rotated refresh token (conflicts); the previous one still works',
    )
  }

  /** Records `lastRefreshAt` in the background (the keep-alive's clock); a failure is only logged. */
  recordRefresh(id: string): void {
    const { store, clock, logger } = this.#deps
    store.registrations
      .touch(id, { lastRefreshAt: new Date(clock()).toISOString() })
      .catch((e: unknown) => logger.warn({ err: e, registrationId: id }, 'could not record lastRefreshAt'))
  }
}
