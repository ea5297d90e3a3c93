// The end of a successful consent: create (admin consent) or renew (delegated) the registration,
// list an Azure app's subscriptions, keep the one-time result (ID, Token and, for a new
// registration, its Key) under a fresh handle, then count, log and audit the completion. Whatever
// follows the registration's creation never fails the flow: the values must reach their one-time page.
import type { FastifyBaseLogger } from 'fastify'
import type { AppConfig, Config, ResolvedApp } from '../config.js'
import { randomToken } from '../crypto/tokens.js'
import type { ResourceManager } from '../entra/resource-manager.js'
import type { VerifiedIdToken } from '../entra/types.js'
import type { Metrics } from '../metrics.js'
import type { Store } from '../store/types.js'
import { recordAudit } from './audit.js'
import { findSubscriptions } from './azure-subscriptions.js'
import type { ConsentFlowRecords } from './consent-flow-records.js'
import type { CallbackOutcome, ConsentResult } from './consent-flow-types.js'
import type { OwnAppInput } from './own-app.js'
import {
  createAdminRegistration,
  integrationId,
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
  // user (an unlocked session, a phished device code) would otherwise walk away with it.
  let shown: { reused: false; key: string } | { reused: true }
  let reactivated: string[] = []
  if (app.consent === 'delegated') {
    const upserted = await upsertDelegatedRegistration(store, {
      ...base,
      userOid: user.oid,
      userName: user.preferredUsername,
      refreshToken: refreshToken as string,
    })
    registrationId = upserted.registration.id
    shown = upserted.reused ? { reused: true } : { reused: false, key: upserted.key }
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
  const result: ConsentResult = {
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
      reused: shown.reused,
      ...(reactivated.length === 0 ? {} : { reactivated: reactivated.length }),
      ...(ownApp === undefined ? {} : { own_client_id: ownApp.clientId }),
    },
  })
  return { kind: 'completed', resultHandle }
}
