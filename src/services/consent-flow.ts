// The consent flow: start page → Microsoft sign-in (and, for admin consent, the tenant-wide consent
// page) → one-time result page with ID, Token and Key. HTTP-free: routes hand in the unsigned
// cookie values and query, and turn the outcomes into redirects, cookies and pages.
//
// The flow state lives server-side (sealed, with a TTL; consent-flow-records.ts) under the hash of
// a random flow id that a signed cookie carries. The callback checks the URL's `state` against the
// flow before anything else — a URL that is not this browser's flow changes nothing — then claims
// the flow's "used" marker and takes its record, so each flow ends once. The callback is one URL
// for both phases; the stored phase decides what it means, never the query string.
//
// This file holds the steps and their order (start, callback, result). Beside it: the shapes
// (consent-flow-types.ts), how a failure is reported (consent-failures.ts), the admin-consent proof
// (consent-proof.ts) and what a successful consent creates (consent-completion.ts).
import { createHash } from 'node:crypto'
import { setTimeout as sleepFor } from 'node:timers/promises'
import type { FastifyBaseLogger } from 'fastify'
import { isCloudName } from '../clouds.js'
import { type AppConfig, appClouds, findApp, type ResolvedApp, resolveApp } from '../config.js'
import { randomToken, tokensMatch } from '../crypto/tokens.js'
import { IdTokenError } from '../entra/id-token.js'
import { createResourceManager } from '../entra/resource-manager.js'
import { type IdentityProvider, UpstreamError } from '../entra/types.js'
import { isOAuthErrorCode, isTransientOAuthError } from '../entra/upstream-errors.js'
import { appNotFound, cloudNotOffered } from '../errors.js'
import { completeConsent, handOutResult } from './consent-completion.js'
import { createFailFlow, type FailureContext, observeUpstream, upstreamReason } from './consent-failures.js'
import { ConsentFlowRecords, type FlowRecord } from './consent-flow-records.js'
import type { ConsentFlow, ConsentFlowDependencies } from './consent-flow-types.js'
import { proveAdminConsent } from './consent-proof.js'
import { ConsentProofRuns, PROOF_INTERRUPTED, type ProofWork } from './consent-proof-runs.js'
import { aadstsCode, appTokenRoles, checkOwnAppSecret, ownAppRefusal, ownAppResolved } from './own-app.js'
import { signInScopes } from './requested-permissions.js'
import { holdsAdminRole } from './tenant-admin.js'

export type {
  CallbackOutcome,
  CallbackQuery,
  ConsentFailure,
  ConsentFailureReason,
  ConsentFlow,
  ConsentFlowDependencies,
  ConsentResult,
  FailedOutcome,
  FlowPurpose,
  StartOutcome,
} from './consent-flow-types.js'

const HANDLE = /^([a-z0-9]+(?:-[a-z0-9]+)*)\.([A-Za-z0-9_-]{43})$/
const RESULT_HANDLE = /^[A-Za-z0-9_-]{43}$/

function parseFlowHandle(handle: string | undefined): { slug: string; flowId: string } | undefined {
  const match = handle === undefined ? null : HANDLE.exec(handle)
  return match === null ? undefined : { slug: match[1]!, flowId: match[2]! }
}

/** The app a flow record is for, as its callback and its proof use it. */
interface FlowTarget {
  app: AppConfig
  resolved: ResolvedApp
  ownApp: FlowRecord['ownApp']
  context: FailureContext
}

/**
 * The consent flow over its dependencies. It keeps no state of its own: each flow lives in the
 * ephemeral store under its id, so any instance can serve its callback.
 */
export function createConsentFlow(deps: ConsentFlowDependencies): ConsentFlow {
  const { config, store, idp, metrics, clock } = deps
  const sleep = deps.sleep ?? ((ms: number) => sleepFor(ms))
  const resourceManager = deps.resourceManager ?? createResourceManager(config)
  const redirectUri = `${config.publicUrl}/callback`
  const records = new ConsentFlowRecords(store, config.consent.flowTtlMs)
  const fail = createFailFlow(store, metrics)
  const completion = { config, store, metrics, clock, resourceManager, records }
  const proofDeps = { config, idp, metrics, clock, sleep }
  const proofRuns = new ConsentProofRuns({
    config,
    store,
    clock,
    ...(deps.proofInlineWaitMs === undefined ? {} : { inlineWaitMs: deps.proofInlineWaitMs }),
    resume: (record, log) => proveAndComplete(record, log),
  })

  /** Who a flow record says is signed in (admin-consent phase) and what the flow is for. */
  const flowContext = (record: FlowRecord): Pick<FailureContext, 'purpose' | 'user'> => ({
    purpose: record.phase === 'manage-sign-in' ? 'manage' : 'consent',
    ...(record.tid !== undefined && record.oid !== undefined
      ? { user: { tid: record.tid, oid: record.oid, upn: record.userName } }
      : {}),
  })

  /**
   * What a flow record is for: its app, resolved for its cloud (as the tenant's own app when it
   * brought one), and the context its failures report. `expired`, with the context to report, when
   * the configuration no longer has the app (`appGone`: the callback's names the cookie's app) or no
   * longer offers it in the record's cloud.
   */
  const flowTarget = (
    record: FlowRecord,
    appGone: FailureContext,
  ): FlowTarget | { expired: FailureContext } => {
    const app = findApp(config, record.app)
    if (app === undefined) return { expired: appGone }
    const hosted = resolveApp(config, app, record.cloud)
    if (hosted === undefined) return { expired: { app, kind: app.consent } }
    const ownApp = record.ownApp
    const resolved = ownApp === undefined ? hosted : ownAppResolved(hosted, ownApp)
    return { app, resolved, ownApp, context: { app, kind: app.consent, ...flowContext(record) } }
  }

  /**
   * The admin-consent phase after its checks: prove the consent, then create the registration. Built
   * from the flow record alone, so an instance can resume a proof another one handed over.
   */
  const proveAndComplete =
    (record: FlowRecord, log: FastifyBaseLogger): ProofWork =>
    async (signal) => {
      const target = flowTarget(record, { app: undefined, kind: undefined })
      if ('expired' in target) return fail('session_expired', target.expired, log)
      const { app, resolved, ownApp, context } = target
      const user = context.user
      if (user === undefined) return fail('session_expired', context, log)
      const proof = await proveAdminConsent(proofDeps, resolved, user.tid, signal)
      if (!proof.ok) {
        if ('interrupted' in proof) return PROOF_INTERRUPTED
        const refusal = ownApp === undefined ? undefined : ownAppRefusal(aadstsCode(proof.error))
        const reason = refusal ?? (proof.exhausted ? 'consent_not_effective' : 'idp_error')
        return fail(reason, { ...context, error: proof.error }, log)
      }
      // A tenant's own app gets a token even without application permissions: it must carry some.
      if (ownApp !== undefined && appTokenRoles(proof.accessToken).length === 0) {
        return fail('own_app_missing_permissions', context, log)
      }
      return completeConsent(
        completion,
        {
          app,
          resolved,
          user: { ...user, preferredUsername: record.userName ?? '', name: record.name ?? '' },
          refreshToken: undefined,
          consentAccessToken: proof.accessToken,
          ownApp,
        },
        log,
      )
    }

  return {
    async start(slug, cloudInput, log, purpose = 'consent', ownApp = undefined) {
      const app = findApp(config, slug)
      if (app === undefined) throw appNotFound(slug)
      const offered = appClouds(app)
      const cloud = cloudInput === undefined || cloudInput === '' ? offered[0] : cloudInput
      if (!isCloudName(cloud) || !offered.includes(cloud)) {
        throw cloudNotOffered(String(cloud), app.displayName)
      }
      const hosted = resolveApp(config, app, cloud)!
      const resolved = ownApp === undefined ? hosted : ownAppResolved(hosted, ownApp)
      if (ownApp !== undefined) {
        // The secret first: a wrong one (or an app not in that tenant) stops here, nothing stored.
        const checked = await checkOwnAppSecret(idp, resolved, ownApp.tenantId)
        if (!checked.ok) {
          const reason = checked.reason ?? upstreamReason(checked.error)
          return fail(reason, { app, kind: app.consent, purpose, error: checked.error }, log)
        }
      }
      const flowId = randomToken()
      const state = randomToken()
      const nonce = randomToken()
      const codeVerifier = randomToken()
      const codeChallenge = createHash('sha256').update(codeVerifier).digest('base64url')
      // The same scopes the app's page lists (requested-permissions.ts).
      const scopes = signInScopes(app, resolved.consentScopes, purpose)
      let location: string
      try {
        location = await idp.signInUrl(resolved, {
          state,
          nonce,
          codeChallenge,
          scopes,
          redirectUri,
          prompt: 'select_account',
        })
      } catch (error) {
        if (!(error instanceof UpstreamError)) throw error
        return fail(upstreamReason(error), { app, kind: app.consent, purpose, error }, log)
      }
      await records.putFlow(flowId, {
        v: 1,
        app: app.slug,
        cloud,
        kind: app.consent,
        phase: purpose === 'manage' ? 'manage-sign-in' : 'sign-in',
        state,
        nonce,
        codeVerifier,
        scopes,
        ...(ownApp === undefined ? {} : { ownApp }),
      })
      if (purpose === 'consent') {
        metrics.consents.inc({ app: app.slug, kind: app.consent, stage: 'started', reason: '' })
      }
      return { kind: 'redirect', location, flowHandle: `${app.slug}.${flowId}` }
    },

    async callback(flowHandle, query, log) {
      const handle = parseFlowHandle(flowHandle)
      if (handle === undefined) return fail('session_missing', { app: undefined, kind: undefined }, log)
      const cookieApp = findApp(config, handle.slug)
      const cookieContext = { app: cookieApp, kind: cookieApp?.consent }
      // 1. state before anything else: a URL that is not this browser's flow (a cross-site link
      // to `/callback?error=…`, a stale tab) neither ends the flow nor shows the URL's text.
      const pending = await records.peekFlow(handle.flowId)
      if (pending === undefined) {
        if (await records.flowEnded(handle.flowId)) return fail('replayed', cookieContext, log)
        return fail('session_expired', cookieContext, log)
      }
      if (!tokensMatch(pending.state, query.state)) {
        const mismatch = await fail('state_mismatch', { ...cookieContext, ...flowContext(pending) }, log)
        return { ...mismatch, flowKept: true }
      }
      // 2. then end the flow: one use, whoever wins a race between two callbacks of it.
      const ended = await records.endFlow(handle.flowId)
      if ('replayed' in ended) return fail('replayed', cookieContext, log)
      if ('expired' in ended) return fail('session_expired', cookieContext, log)
      const { record } = ended
      const target = flowTarget(record, cookieContext)
      if ('expired' in target) return fail('session_expired', target.expired, log)
      const { app, resolved, ownApp, context } = target
      const user = context.user

      // 3. then the error: Microsoft (or the user) ended this flow; its text is shown only now,
      // under the page's own explanation.
      if (query.error !== undefined && query.error !== '') {
        // An `error` no authorization server sends is a malformed callback (400), not Microsoft
        // failing (5xx); its text is not shown as what Microsoft said.
        if (!isOAuthErrorCode(query.error)) return fail('invalid_callback', context, log)
        const providerMessage = query.error_description ?? query.error
        const withProvider = { ...context, providerMessage, providerCode: query.error }
        // The tenant's own app: Microsoft's refusal usually names what to fix on the registration.
        const refusal = ownApp === undefined ? undefined : ownAppRefusal(aadstsCode(providerMessage))
        if (refusal !== undefined) return fail(refusal, withProvider, log)
        if (query.error === 'access_denied') return fail('cancelled', withProvider, log)
        if (isTransientOAuthError(query.error)) {
          return fail('idp_unavailable', withProvider, log)
        }
        return fail('idp_error', withProvider, log)
      }

      if (record.phase === 'admin-consent') {
        // 4. then the tenant: only the one whose administrator signed in (the value can be forged).
        if (user === undefined) return fail('session_expired', context, log)
        if (query.tenant === undefined || query.tenant.toLowerCase() !== user.tid) {
          return fail('tenant_mismatch', context, log)
        }
        // 5. prove the consent took effect: in the background once it takes longer than a moment
        // (Microsoft may need up to a minute), the browser waiting on /callback/status meanwhile.
        const proofId = randomToken()
        const proving = await proofRuns.run(proofId, proveAndComplete(record, log), record, log)
        return proving.kind === 'pending'
          ? { kind: 'proving', flowHandle: `${app.slug}.${proofId}` }
          : proving
      }

      // Sign-in phase: redeem the code at the authority it was issued for.
      if (query.code === undefined || query.code === '') return fail('invalid_callback', context, log)
      const startedAt = performance.now()
      let redeemed: Awaited<ReturnType<IdentityProvider['redeemCode']>>
      try {
        redeemed = await idp.redeemCode(resolved, {
          code: query.code,
          codeVerifier: record.codeVerifier ?? '',
          redirectUri,
          nonce: record.nonce ?? '',
          scopes: record.scopes ?? [],
        })
        observeUpstream(metrics, 'authorization_code', startedAt)
      } catch (error) {
        observeUpstream(metrics, 'authorization_code', startedAt, error)
        if (error instanceof IdTokenError) return fail('invalid_id_token', { ...context, error }, log)
        if (error instanceof UpstreamError) {
          const refusal = ownApp === undefined ? undefined : ownAppRefusal(aadstsCode(error))
          return fail(refusal ?? upstreamReason(error), { ...context, error }, log)
        }
        throw error
      }
      const idToken = redeemed.idToken
      const signedIn: FailureContext = {
        ...context,
        user: { tid: idToken.tid, oid: idToken.oid, upn: idToken.preferredUsername },
      }
      // The tenant's own app is only for the tenant it belongs to.
      if (ownApp !== undefined && idToken.tid !== ownApp.tenantId)
        return fail('tenant_mismatch', signedIn, log)

      // Tenant self-service (`/{app}/manage`): the admin-role rule of admin consent, then hand over.
      if (record.phase === 'manage-sign-in') {
        if (!holdsAdminRole(config, idToken.wids)) return fail('not_admin', signedIn, log)
        return { kind: 'manage-signed-in', app: app.slug, cloud: record.cloud, user: idToken }
      }

      if (app.consent === 'delegated') {
        if (redeemed.refreshToken === undefined) return fail('no_refresh_token', signedIn, log)
        return completeConsent(
          completion,
          {
            app,
            resolved,
            user: idToken,
            refreshToken: redeemed.refreshToken,
            consentAccessToken: redeemed.accessToken,
            ownApp,
          },
          log,
        )
      }

      // Admin consent: only a directory role that may grant tenant-wide consent goes on.
      if (!holdsAdminRole(config, idToken.wids)) return fail('not_admin', signedIn, log)
      const flowId = randomToken()
      const state = randomToken()
      const location = await idp.adminConsentUrl(resolved, {
        tenantId: idToken.tid,
        state,
        scope: resolved.defaultScope,
        redirectUri,
      })
      await records.putFlow(flowId, {
        v: 1,
        app: app.slug,
        cloud: record.cloud,
        kind: app.consent,
        phase: 'admin-consent',
        state,
        tid: idToken.tid,
        oid: idToken.oid,
        userName: idToken.preferredUsername,
        name: idToken.name,
        ...(ownApp === undefined ? {} : { ownApp }),
      })
      return { kind: 'redirect', location, flowHandle: `${app.slug}.${flowId}` }
    },

    async proofStatus(flowHandle, log) {
      const handle = parseFlowHandle(flowHandle)
      return handle === undefined ? { kind: 'unknown' } : proofRuns.status(handle.flowId, log)
    },

    async stop() {
      await proofRuns.stop()
    },

    async takeResult(resultHandle) {
      if (resultHandle === undefined || !RESULT_HANDLE.test(resultHandle)) return null
      const raw = await records.takeResult(resultHandle)
      return raw === null ? null : handOutResult(store, raw)
    },

    async hasResult(resultHandle) {
      if (resultHandle === undefined || !RESULT_HANDLE.test(resultHandle)) return false
      return records.hasResult(resultHandle)
    },
  }
}
