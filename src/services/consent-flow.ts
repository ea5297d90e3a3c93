// The consent flow: start page → Microsoft sign-in (and, for admin consent, the tenant-wide consent
// page) → one-time result page with ID, Token and Key. HTTP-free: routes hand in the unsigned
// cookie values and query, and turn the outcomes into redirects, cookies and pages.
//
// The flow state lives server-side (sealed, with a TTL; consent-flow-records.ts) under the hash of
// a random flow id that a signed cookie carries. The callback checks the URL's `state` against the
// flow before anything else — a URL that is not this browser's flow changes nothing — then claims
// the flow's "used" marker and takes its record, so each flow ends once. The callback is one URL
// for both phases; the stored phase decides what it means, never the query string.
import { createHash } from 'node:crypto'
import { setTimeout as sleepFor } from 'node:timers/promises'
import type { FastifyBaseLogger } from 'fastify'
import { type CloudName, isCloudName } from '../clouds.js'
import { type AppConfig, appClouds, type Config, findApp, type ResolvedApp, resolveApp } from '../config.js'
import type { ConsentKind } from '../consent-kinds.js'
import { randomToken, tokensMatch } from '../crypto/tokens.js'
import { IdTokenError } from '../entra/id-token.js'
import { createResourceManager, type ResourceManager } from '../entra/resource-manager.js'
import { type IdentityProvider, UpstreamError, type VerifiedIdToken } from '../entra/types.js'
import { isTransientOAuthError } from '../entra/upstream-errors.js'
import { appNotFound, type ConsentFailureReason, cloudNotOffered, statusOf } from '../errors.js'
import type { Metrics } from '../metrics.js'
import type { Store } from '../store/types.js'
import { recordAudit } from './audit.js'
import { findSubscriptions, type SubscriptionsOutcome } from './azure-subscriptions.js'
import { ConsentFlowRecords, type FlowRecord } from './consent-flow-records.js'
import {
  aadstsCode,
  appTokenRoles,
  checkOwnAppSecret,
  type OwnAppInput,
  ownAppRefusal,
  ownAppResolved,
} from './own-app.js'
import {
  createAdminRegistration,
  integrationId,
  reactivateAdminRegistrations,
  upsertDelegatedRegistration,
} from './registrations.js'
import { holdsAdminRole } from './tenant-admin.js'

// Why a flow failed (ConsentFailureReason) and the status of each are catalogued in src/errors.ts.
export type { ConsentFailureReason } from '../errors.js'

/** A failed flow, as the failure page shows it. */
export interface ConsentFailure {
  reason: ConsentFailureReason
  status: number
  /** The app, when known: the failure page links back to its start page. */
  app: AppConfig | undefined
  /** What was attempted: a consent, or a tenant administrator's sign-in to `/{app}/manage`. */
  purpose: FlowPurpose
  /** What the identity provider said (`error_description` or `error`); untrusted text. */
  providerMessage?: string
  /** The OAuth `error` or AADSTS label, for display; untrusted text. */
  providerCode?: string
}

/** Everything the one-time result page shows. Contains the Key: kept sealed, shown once. */
export interface ConsentResult {
  app: string
  appName: string
  kind: ConsentKind
  cloud: CloudName
  registrationId: string
  /** The integration's ID: `<registration_id>@<PUBLIC_URL>/obtain-token`. */
  id: string
  /** The integration's Token: the tenant id. */
  token: string
  /** The integration's Key. */
  key: string
  /** True when an existing registration (and its Key) was renewed instead of a new one made. */
  reused: boolean
  userName: string
  /** Azure apps: the subscriptions the new registration sees (listSubscriptions in the apps file). */
  subscriptions?: SubscriptionsOutcome
  /** Azure admin-consent apps: the app's client id, which an Azure role assignment names. */
  clientId?: string
  /** The tenant's own app registration (client id) the registration uses, when it brought one. */
  ownClientId?: string
}

/** The callback's query parameters the flow reads; Entra's others are ignored. */
export interface CallbackQuery {
  code?: string
  state?: string
  error?: string
  error_description?: string
  admin_consent?: string
  tenant?: string
}

/** A started flow: off to the identity provider with a flow cookie, or a failure page. */
export type StartOutcome =
  | { kind: 'redirect'; location: string; flowHandle: string }
  | { kind: 'failed'; failure: ConsentFailure }

/**
 * A failed callback. `flowKept`: the callback did not belong to the browser's flow (its state did
 * not match), so the flow in progress, and its cookie, stay as they were.
 */
export type FailedOutcome = { kind: 'failed'; failure: ConsentFailure; flowKept?: true }

/** What the callback route does next. */
export type CallbackOutcome =
  /** Admin consent, phase 2: on to the tenant-wide consent page with a re-issued flow cookie. */
  | { kind: 'redirect'; location: string; flowHandle: string }
  | { kind: 'completed'; resultHandle: string }
  | FailedOutcome
  /** A `manage` sign-in: a tenant administrator (admin role checked), for `/{app}/manage`. */
  | { kind: 'manage-signed-in'; app: string; cloud: CloudName; user: VerifiedIdToken }

/**
 * `consent` (default): the consent flow. `manage`: only the OIDC sign-in, with the admin-role rule of
 * admin consent, for the tenant self-service pages; nothing is consented or created.
 */
export type FlowPurpose = 'consent' | 'manage'

/** The consent flow and the manage sign-in: start, callback, one-time result. */
export interface ConsentFlow {
  /** Starts a flow for an app (and cloud); throws BrokerError `not_found` / `invalid_request`. */
  start(
    slug: string,
    cloud: string | undefined,
    log: FastifyBaseLogger,
    purpose?: FlowPurpose,
    /** The tenant's own app (browser method): its secret is checked before the flow starts. */
    ownApp?: OwnAppInput,
  ): Promise<StartOutcome>
  /** Handles `/callback`; `flowHandle` is the verified flow cookie value, if any. */
  callback(
    flowHandle: string | undefined,
    query: CallbackQuery,
    log: FastifyBaseLogger,
  ): Promise<CallbackOutcome>
  /** The one-time result, deleted as it is read; null when already shown or expired. */
  takeResult(resultHandle: string | undefined): Promise<ConsentResult | null>
  /** Whether the one-time result is still there; does not take it (HEAD /result). */
  hasResult(resultHandle: string | undefined): Promise<boolean>
}

/** What a consent flow runs on. */
export interface ConsentFlowDependencies {
  config: Config
  store: Store
  idp: IdentityProvider
  metrics: Metrics
  clock: () => number
  /** Waits between consent-proof attempts; injectable for tests. */
  sleep?: (ms: number) => Promise<void>
  /** Lists an Azure app's subscriptions after consent; default: Resource Manager per config. */
  resourceManager?: ResourceManager
}

const HANDLE = /^([a-z0-9]+(?:-[a-z0-9]+)*)\.([A-Za-z0-9_-]{43})$/
const RESULT_HANDLE = /^[A-Za-z0-9_-]{43}$/
/** Longest provider text shown on a failure page. */
const MAX_PROVIDER_MESSAGE = 400
const PROOF_FIRST_DELAY_MS = 1000
const PROOF_MAX_DELAY_MS = 8000
/** OAuth errors that retrying cannot fix: our own credentials or request are wrong. */
const PROOF_FATAL_ERRORS = new Set(['invalid_client', 'invalid_scope', 'unsupported_grant_type'])

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`
}

function upstreamReason(error: UpstreamError): ConsentFailureReason {
  return error.kind === 'oauth' ? 'idp_error' : 'idp_unavailable'
}

function parseFlowHandle(handle: string | undefined): { slug: string; flowId: string } | undefined {
  const match = handle === undefined ? null : HANDLE.exec(handle)
  return match === null ? undefined : { slug: match[1]!, flowId: match[2]! }
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

  /** Who a flow record says is signed in (admin-consent phase) and what the flow is for. */
  const flowContext = (record: FlowRecord): Pick<FailureContext, 'purpose' | 'user'> => ({
    purpose: record.phase === 'manage-sign-in' ? 'manage' : 'consent',
    ...(record.tid !== undefined && record.oid !== undefined
      ? { user: { tid: record.tid, oid: record.oid } }
      : {}),
  })

  interface FailureContext {
    app: AppConfig | undefined
    kind: ConsentKind | undefined
    /** Default `consent`. */
    purpose?: FlowPurpose
    user?: { tid: string; oid: string }
    error?: UpstreamError | IdTokenError | undefined
    providerMessage?: string
    providerCode?: string
  }

  async function fail(
    reason: ConsentFailureReason,
    context: FailureContext,
    log: FastifyBaseLogger,
  ): Promise<FailedOutcome> {
    const kind = context.kind ?? context.app?.consent ?? 'unknown'
    const upstream = context.error instanceof UpstreamError ? context.error : undefined
    metrics.consents.inc({ app: context.app?.slug ?? 'unknown', kind, stage: 'failed', reason })
    log.info(
      {
        app: context.app?.slug,
        kind,
        reason,
        ...(upstream === undefined
          ? {}
          : { upstream: upstream.label, upstreamKind: upstream.kind, traceId: upstream.traceId }),
        ...(context.error instanceof IdTokenError ? { idToken: context.error.reason } : {}),
        ...(context.providerCode === undefined ? {} : { providerError: context.providerCode }),
      },
      'consent failed',
    )
    // The audit trail keeps failures of someone Microsoft signed in, whose flow this callback was
    // (its state matched). Anyone can start flows and send callbacks without signing in: those
    // failures are counted (metrics) and logged above, never audited, so anonymous traffic can't
    // push operator and tenant-administrator events out of the capped audit stream.
    if (context.user !== undefined && reason !== 'state_mismatch')
      await recordAudit(store, log, {
        type: 'consent.failed',
        actor: `user:${context.user.tid}/${context.user.oid}`,
        tenantId: context.user.tid,
        ...(context.app === undefined ? {} : { app: context.app.slug }),
        detail: {
          reason,
          kind,
          ...(upstream === undefined ? {} : { upstream: upstream.label }),
          ...(context.providerCode === undefined
            ? {}
            : { provider_error: truncate(context.providerCode, 64) }),
        },
      })
    return {
      kind: 'failed',
      failure: {
        reason,
        status: statusOf(reason),
        app: context.app,
        purpose: context.purpose ?? 'consent',
        ...(context.providerMessage === undefined
          ? {}
          : { providerMessage: truncate(context.providerMessage, MAX_PROVIDER_MESSAGE) }),
        ...(context.providerCode === undefined ? {} : { providerCode: truncate(context.providerCode, 64) }),
      },
    }
  }

  function observeUpstream(
    grant: 'authorization_code' | 'client_credentials',
    startedAt: number,
    error?: unknown,
  ) {
    const outcome =
      error === undefined ? 'ok' : error instanceof UpstreamError ? error.kind : 'invalid_id_token'
    const code =
      error instanceof UpstreamError && error.errorCodes[0] !== undefined
        ? `AADSTS${error.errorCodes[0]}`
        : ''
    metrics.upstreamRequests.inc({ grant, outcome, code })
    metrics.upstreamLatency.observe({ grant, outcome }, (performance.now() - startedAt) / 1000)
  }

  async function complete(
    app: AppConfig,
    resolved: ResolvedApp,
    user: VerifiedIdToken | { tid: string; oid: string; preferredUsername: string },
    log: FastifyBaseLogger,
    refreshToken: string | undefined,
    /** The token consent obtained (admin: the proof's; delegated: the code's), for listSubscriptions. */
    consentAccessToken: string | undefined,
    ownApp?: OwnAppInput,
  ): Promise<CallbackOutcome> {
    const now = new Date(clock()).toISOString()
    const base = {
      app: app.slug,
      cloud: resolved.cloud,
      tenantId: user.tid,
      now,
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
    let key: string
    let reused = false
    let reactivated: string[] = []
    if (app.consent === 'delegated') {
      const upserted = await upsertDelegatedRegistration(store, {
        ...base,
        userOid: user.oid,
        userName: user.preferredUsername,
        refreshToken: refreshToken as string,
      })
      registrationId = upserted.registration.id
      key = upserted.key
      reused = upserted.reused
    } else {
      const created = await createAdminRegistration(store, base)
      registrationId = created.registration.id
      key = created.key
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
      key,
      reused,
      userName: user.preferredUsername,
      ...(subscriptions === undefined ? {} : { subscriptions }),
      ...(subscriptions !== undefined && app.consent === 'admin' ? { clientId: resolved.clientId } : {}),
      ...(ownApp === undefined ? {} : { ownClientId: ownApp.clientId }),
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
        reused,
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
        reused,
        ...(reactivated.length === 0 ? {} : { reactivated: reactivated.length }),
        ...(ownApp === undefined ? {} : { own_client_id: ownApp.clientId }),
      },
    })
    return { kind: 'completed', resultHandle }
  }

  /**
   * Consent propagates slowly through Microsoft's directory: retry client credentials for the
   * tenant with doubling delays until it works or the budget is spent.
   */
  async function proveAdminConsent(
    resolved: ResolvedApp,
    tid: string,
  ): Promise<
    { ok: true; accessToken: string } | { ok: false; error: UpstreamError | undefined; exhausted: boolean }
  > {
    const deadline = clock() + config.consent.proofBudgetMs
    let delay = PROOF_FIRST_DELAY_MS
    let lastError: UpstreamError | undefined
    for (;;) {
      const startedAt = performance.now()
      const remaining = Math.max(deadline - clock(), 0)
      try {
        const grant = await idp.clientCredentials(
          resolved,
          tid,
          resolved.defaultScope,
          AbortSignal.timeout(Math.max(remaining, PROOF_FIRST_DELAY_MS)),
        )
        observeUpstream('client_credentials', startedAt)
        return { ok: true, accessToken: grant.accessToken }
      } catch (error) {
        observeUpstream('client_credentials', startedAt, error)
        if (!(error instanceof UpstreamError)) throw error
        lastError = error
        if (error.kind === 'oauth' && error.error !== undefined && PROOF_FATAL_ERRORS.has(error.error)) {
          return { ok: false, error, exhausted: false }
        }
      }
      const left = deadline - clock()
      if (left <= 0) return { ok: false, error: lastError, exhausted: true }
      const wanted =
        lastError?.kind === 'throttled' && lastError.retryAfterSeconds !== undefined
          ? Math.max(lastError.retryAfterSeconds * 1000, delay)
          : delay
      await sleep(Math.min(wanted, left))
      delay = Math.min(delay * 2, PROOF_MAX_DELAY_MS)
    }
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
      const scopes =
        app.consent === 'admin' || purpose === 'manage'
          ? ['openid', 'profile']
          : ['openid', 'profile', 'offline_access', ...resolved.consentScopes]
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
      const app = findApp(config, record.app)
      if (app === undefined) return fail('session_expired', cookieContext, log)
      const hosted = resolveApp(config, app, record.cloud)
      if (hosted === undefined) return fail('session_expired', { app, kind: app.consent }, log)
      const ownApp = record.ownApp
      const resolved = ownApp === undefined ? hosted : ownAppResolved(hosted, ownApp)
      const context: FailureContext = { app, kind: app.consent, ...flowContext(record) }
      const user = context.user

      // 3. then the error: Microsoft (or the user) ended this flow; its text is shown only now,
      // under the page's own explanation.
      if (query.error !== undefined && query.error !== '') {
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
        // 5. prove the consent took effect.
        const proof = await proveAdminConsent(resolved, user.tid)
        if (!proof.ok) {
          const refusal = ownApp === undefined ? undefined : ownAppRefusal(aadstsCode(proof.error))
          const reason = refusal ?? (proof.exhausted ? 'consent_not_effective' : 'idp_error')
          return fail(reason, { ...context, error: proof.error }, log)
        }
        // A tenant's own app gets a token even without application permissions: it must carry some.
        if (ownApp !== undefined && appTokenRoles(proof.accessToken).length === 0) {
          return fail('own_app_missing_permissions', context, log)
        }
        return complete(
          app,
          resolved,
          { ...user, preferredUsername: record.userName ?? '' },
          log,
          undefined,
          proof.accessToken,
          ownApp,
        )
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
        observeUpstream('authorization_code', startedAt)
      } catch (error) {
        observeUpstream('authorization_code', startedAt, error)
        if (error instanceof IdTokenError) return fail('invalid_id_token', { ...context, error }, log)
        if (error instanceof UpstreamError) {
          const refusal = ownApp === undefined ? undefined : ownAppRefusal(aadstsCode(error))
          return fail(refusal ?? upstreamReason(error), { ...context, error }, log)
        }
        throw error
      }
      const idToken = redeemed.idToken
      const signedIn: FailureContext = { ...context, user: { tid: idToken.tid, oid: idToken.oid } }
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
        return complete(app, resolved, idToken, log, redeemed.refreshToken, redeemed.accessToken, ownApp)
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
        ...(ownApp === undefined ? {} : { ownApp }),
      })
      return { kind: 'redirect', location, flowHandle: `${app.slug}.${flowId}` }
    },

    async takeResult(resultHandle) {
      if (resultHandle === undefined || !RESULT_HANDLE.test(resultHandle)) return null
      const raw = await records.takeResult(resultHandle)
      return raw === null ? null : (JSON.parse(raw) as ConsentResult)
    },

    async hasResult(resultHandle) {
      if (resultHandle === undefined || !RESULT_HANDLE.test(resultHandle)) return false
      return records.hasResult(resultHandle)
    },
  }
}
