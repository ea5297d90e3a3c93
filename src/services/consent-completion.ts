// The end of a successful consent: create (admin consent) or renew (delegated) the registration,
// list an Azure app's subscriptions, keep the one-time result (ID, Token and, for a new
// registration or one whose Key was never shown, its Key) under a fresh handle, then count, log and audit the completion. Whatever
// follows the registration's creation never fails the flow: the values must reach their one-time page.
import type { FastifyBaseLogger } from 'fastify'
import type { AppConfig, Config, ResolvedApp } from '../config.js'
import { randomToken } from '../crypto/tokens.js'
import type { ResourceManager } from '../entra/resource-manager.js'
import type { VerifiedIdToken } from '../entra/types.js'
import type { Metrics } from '../metrics.js'
import type { Store } from '../store/types.js'
import { auditedUser, recordAudit } from './audit.js'
import { findSubscriptions } from './azure-subscriptions.js'
import type { ConsentFlowRecords } from './consent-flow-records.js'
import type { CallbackOutcome, ConsentResult, StoredConsentResult } from './consent-flow-types.js'
import type { OwnAppInput } from './own-app.js'
import {
  createAdminRegistration,
  integrationId,
  markKeyShown,
  reactivateAdminRegistrations,
  upsertDelegatedRegistration,
} from './registrations.js'

/** What completing a consent runs on. */
export interface ConsentCompletionDependencies {
  config: Config
  store: Store
  metrics: Metrics
  clock: () => number
  resourceManager: ResourceManager
  records: ConsentFlowRecords
}

/** Who consented: the validated ID token, or (admin-consent phase) what the flow record kept of it. */
export type ConsentingUser =
  | VerifiedIdToken
  | { tid: string; oid: string; preferredUsername: string; name: string }

/** What was consented, by whom, and what consent obtained. */
export interface ConsentGranted {
  app: AppConfig
  resolved: ResolvedApp
  user: ConsentingUser
  /** Delegated consent: the user's refresh token (required); admin consent: none. */
  refreshToken: string | undefined
  /** The token consent obtained (admin: the proof's; delegated: the code's), for listSubscriptions. */
  consentAccessToken: string | undefined
  /** The tenant's own app registration, when the flow brought one. */
  ownApp?: OwnAppInput | undefined
}

/**
 * Creates or renews the registration for a granted consent and stores its one-time result.
 * Throws what the store throws while creating the registration; nothing after that fails the flow.
 */
export async function completeConsent(
  deps: ConsentCompletionDependencies,
  granted: ConsentGranted,
  log: FastifyBaseLogger,
): Promise<CallbackOutcome> {
  const { config, store, metrics, clock, resourceManager, records } = deps
  const { app, resolved, user, refreshToken, consentAccessToken, ownApp } = granted
  const now = new Date(clock()).toISOString()
  const base = {
    app: app.slug,
    cloud: resolved.cloud,
    tenantId: user.tid,
    now,
    consentedBy: { upn: user.preferredUsername, name: user.name },
    ...(ownApp === undefined
      ? {}
      : {
          ownApp: {
            clientId: ownApp.clientId,
            ...(ownApp.clientSecret === undefined ? {} : { clientSecret: ownApp.clientSecret }),
          },
        }),
  }
  let registrationId: string
  // A renewal's Key is never shown again: the integration has it, and whoever could sign in as the
  // user (an unlocked session, a phished device code) would otherwise walk away with it. A delegated
  // Key that was never shown is re-issued instead (registrations.ts), and carries the id the result
  // page presents to mark it shown.
  let shown: { reused: false; key: string; unshownKey?: string } | { reused: true }
  let reissued = false
  let reactivated: string[] = []
  if (app.consent === 'delegated') {
    const upserted = await upsertDelegatedRegistration(store, {
      ...base,
      userOid: user.oid,
      userName: user.preferredUsername,
      refreshToken: refreshToken as string,
    })
    registrationId = upserted.registration.id
    if (upserted.reused) shown = { reused: true }
    else {
      shown = { reused: false, key: upserted.key, unshownKey: upserted.unshownKey }
      reissued = upserted.reissued
    }
  } else {
    const created = await createAdminRegistration(store, base)
    registrationId = created.registration.id
    shown = { reused: false, key: created.key }
    // The new registration must reach its result page even if re-activating older ones fails.
    try {
      reactivated = await reactivateAdminRegistrations(store, base)
    } catch (err) {
      log.error(
        { err, app: app.slug, tenantId: user.tid },
        're-activating needs_consent registrations failed',
      )
    }
  }
  // After the registration exists, and never failing: the values below must reach their page.
  const subscriptions = app.listSubscriptions
    ? await findSubscriptions({
        resourceManager,
        cloud: resolved.cloud,
        accessToken: consentAccessToken,
        log,
        app: app.slug,
        tenantId: user.tid,
      })
    : undefined
  const result: StoredConsentResult = {
    app: app.slug,
    appName: app.displayName,
    kind: app.consent,
    cloud: resolved.cloud,
    registrationId,
    id: integrationId(registrationId, config.publicUrl),
    token: user.tid,
    ...shown,
    userName: user.preferredUsername,
    ...(subscriptions === undefined ? {} : { subscriptions }),
    ...(subscriptions !== undefined && app.consent === 'admin' ? { clientId: resolved.clientId } : {}),
    ...(ownApp === undefined ? {} : { ownClientId: ownApp.clientId }),
    ...(ownApp !== undefined && ownApp.clientSecret === undefined ? { ownAppPublicClient: true } : {}),
  }
  const resultHandle = randomToken()
  await records.putResult(resultHandle, result)
  metrics.consents.inc({ app: app.slug, kind: app.consent, stage: 'completed', reason: '' })
  log.info(
    {
      app: app.slug,
      kind: app.consent,
      cloud: resolved.cloud,
      tenantId: user.tid,
      registrationId,
      reused: shown.reused,
      ...(reissued ? { keyReissued: true } : {}),
      ...(ownApp === undefined ? {} : { ownClientId: ownApp.clientId }),
    },
    'consent completed',
  )
  await recordAudit(store, log, {
    type: 'consent.completed',
    actor: `user:${user.tid}/${user.oid}`,
    tenantId: user.tid,
    app: app.slug,
    registrationId,
    detail: {
      kind: app.consent,
      cloud: resolved.cloud,
      ...auditedUser(user.preferredUsername),
      reused: shown.reused,
      // The registration existed, but its Key had never been shown: a new one replaced it.
      ...(reissued ? { key_reissued: true } : {}),
      ...(reactivated.length === 0 ? {} : { reactivated: reactivated.length }),
      ...(ownApp === undefined ? {} : { own_client_id: ownApp.clientId }),
    },
  })
  return { kind: 'completed', resultHandle }
}

/**
 * The one-time result as its page shows it, from what was taken under its handle. A delegated Key
 * not yet handed out is marked shown first (`markKeyShown`), so a Key is only ever shown once the
 * store says so; one a later consent replaced (another tab), or whose registration was revoked
 * meanwhile, is not shown: the result says so (`keyWithdrawn`), the live Key being on that
 * consent's page. Throws what the store throws (the Key stays
 * unshown, and the user's next consent issues a new one).
 */
export async function handOutResult(store: Store, raw: string): Promise<ConsentResult> {
  const stored = JSON.parse(raw) as StoredConsentResult
  if (stored.reused || stored.unshownKey === undefined) return stored
  const { unshownKey, key, ...fields } = stored
  if (await markKeyShown(store, stored.registrationId, unshownKey)) return { ...fields, reused: false, key }
  return { ...fields, reused: true, keyWithdrawn: true }
}
