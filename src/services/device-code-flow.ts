// The device code method of a tenant's own app registration (a public client: its application ID
// only, nothing secret stored but the user's refresh token, sealed). `start` begins the device
// authorization at the tenant's authority and records the flow; `view` is what the flow's page
// shows — the user code and the verification link while the person signs in at Microsoft, then
// the one-time result (or why it failed) — to the browser that started the flow only. Polling is
// server-side (device-code-poller.ts); the state lives in the store, so any instance serves the page.
//
// Admin-consent families are refused up front: the device code grant signs in a user and yields
// delegated tokens, and Microsoft grants application permissions (client credentials) only to a
// confidential app. Those families use the browser method with a client secret.
import type { FastifyBaseLogger } from 'fastify'
import { type CloudName, isCloudName } from '../clouds.js'
import { type AppConfig, appClouds, type Config, findApp, resolveApp } from '../config.js'
import { sha256Hex } from '../crypto/sha256.js'
import { randomToken } from '../crypto/tokens.js'
import { createResourceManager, type ResourceManager } from '../entra/resource-manager.js'
import { type IdentityProvider, UpstreamError } from '../entra/types.js'
import { appNotFound, type ConsentFailureReason, cloudNotOffered, statusOf } from '../errors.js'
import type { Metrics } from '../metrics.js'
import type { Store } from '../store/types.js'
import { createFailFlow, upstreamReason } from './consent-failures.js'
import { ConsentFlowRecords } from './consent-flow-records.js'
import type { ConsentFailure } from './consent-flow-types.js'
import { DeviceCodePoller } from './device-code-poller.js'
import { DeviceFlowRecords, startedBy } from './device-code-records.js'
import { aadstsCode, type OwnAppInput, ownAppRefusal, ownAppResolved } from './own-app.js'
import { signInScopes } from './requested-permissions.js'

/** A started device code flow: its page's id, and the browser secret its cookie carries. */
export type DeviceStartOutcome =
  | { kind: 'started'; flowId: string; browserSecret: string }
  | { kind: 'failed'; failure: ConsentFailure }

/** What the flow's page shows now. */
export type DeviceView =
  /** Still waiting for the person: the code and where to enter it (never the device code). */
  | {
      kind: 'pending'
      app: AppConfig
      cloud: CloudName
      userCode: string
      verificationUri: string
      /** Whole minutes until the code expires (0: less than a minute). */
      minutesLeft: number
      /** Seconds until the page refreshes itself. */
      refreshSeconds: number
    }
  /** Signed in and registered: the one-time result's handle (shown by the result page, once). */
  | { kind: 'completed'; resultHandle: string }
  | { kind: 'failed'; failure: ConsentFailure }

/** What the device code method runs on. */
export interface DeviceCodeFlowDependencies {
  config: Config
  store: Store
  idp: IdentityProvider
  metrics: Metrics
  clock: () => number
  log: FastifyBaseLogger
  resourceManager?: ResourceManager
  /** Waits between polls; injectable for tests. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>
}

const FLOW_ID = /^[A-Za-z0-9_-]{43}$/
/** The page refreshes at least this often, and at most as often as Microsoft lets the poller poll. */
const MAX_REFRESH_SECONDS = 5

/** The device code flows: start, view, and the polling they need (stopped with the app). */
export class DeviceCodeFlow {
  readonly #deps: DeviceCodeFlowDependencies
  readonly #records: DeviceFlowRecords
  readonly #poller: DeviceCodePoller

  constructor(deps: DeviceCodeFlowDependencies) {
    this.#deps = deps
    this.#records = new DeviceFlowRecords(deps.store, deps.clock)
    this.#poller = new DeviceCodePoller({
      ...deps,
      resourceManager: deps.resourceManager ?? createResourceManager(deps.config),
      records: new ConsentFlowRecords(deps.store, deps.config.consent.flowTtlMs),
      deviceRecords: this.#records,
    })
  }

  /** Flows this instance polls now. */
  get polling(): number {
    return this.#poller.polling
  }

  /**
   * Starts the device authorization for `ownApp` (tenant and client id; no secret) at its tenant.
   * `browserSecret`: the secret this browser already holds (reused: several tabs work), if any.
   * Throws BrokerError `not_found` / `invalid_request` for an unknown app or cloud.
   */
  async start(
    slug: string,
    cloudInput: string | undefined,
    ownApp: OwnAppInput,
    browserSecret: string | undefined,
    log: FastifyBaseLogger,
  ): Promise<DeviceStartOutcome> {
    const { config, idp, metrics, clock } = this.#deps
    const app = findApp(config, slug)
    if (app === undefined) throw appNotFound(slug)
    const offered = appClouds(app)
    const cloud = cloudInput === undefined || cloudInput === '' ? offered[0] : cloudInput
    if (!isCloudName(cloud) || !offered.includes(cloud)) throw cloudNotOffered(String(cloud), app.displayName)
    if (app.consent === 'admin') return this.#failed('own_app_needs_secret', app, log)
    const resolved = ownAppResolved(resolveApp(config, app, cloud)!, { ...ownApp, clientSecret: undefined })
    // The same scopes the own-app page lists (requested-permissions.ts).
    const scopes = signInScopes(app, resolved.consentScopes)
    let started: Awaited<ReturnType<IdentityProvider['startDeviceAuthorization']>>
    try {
      started = await idp.startDeviceAuthorization(resolved, ownApp.tenantId, scopes)
    } catch (error) {
      if (!(error instanceof UpstreamError)) throw error
      const reason = ownAppRefusal(aadstsCode(error), error.error) ?? upstreamReason(error)
      return this.#failed(reason, app, log, error)
    }
    const flowId = randomToken()
    const secret = browserSecret !== undefined && FLOW_ID.test(browserSecret) ? browserSecret : randomToken()
    const now = clock()
    await this.#records.put(flowId, {
      v: 1,
      app: app.slug,
      cloud,
      tenantId: ownApp.tenantId,
      clientId: ownApp.clientId,
      browser: sha256Hex(secret),
      deviceCode: started.deviceCode,
      userCode: started.userCode,
      verificationUri: started.verificationUri,
      expiresAt: now + started.expiresIn * 1000,
      intervalMs: started.interval * 1000,
      // The first poll at once: a refusal Microsoft gives before anyone signs in (public client
      // flows turned off) reaches the page on its first refresh.
      nextPollAt: now,
      state: 'pending',
    })
    metrics.consents.inc({ app: app.slug, kind: app.consent, stage: 'started', reason: '' })
    log.info({ app: app.slug, kind: app.consent, ownClientId: ownApp.clientId }, 'device code flow started')
    await this.#poller.ensure(flowId)
    return { kind: 'started', flowId, browserSecret: secret }
  }

  /**
   * What the flow's page shows to the browser holding `browserSecret`. Another browser (or a flow
   * that is gone) gets `session_missing`: the flow id alone opens nothing. An ended flow is shown
   * once: its record is taken by the view that shows the end.
   */
  async view(slug: string, flowId: string, browserSecret: string | undefined): Promise<DeviceView> {
    const missing = (): DeviceView => ({
      kind: 'failed',
      failure: this.#failure('session_missing', undefined),
    })
    if (!FLOW_ID.test(flowId)) return missing()
    const record = await this.#records.get(flowId)
    if (record === undefined || record.app !== slug || !startedBy(record, browserSecret)) return missing()
    const app = findApp(this.#deps.config, record.app)
    if (record.state === 'pending') {
      if (app === undefined) return missing()
      // Whoever serves the page makes sure someone polls (takes over a lapsed lease).
      await this.#poller.ensure(flowId)
      return {
        kind: 'pending',
        app,
        cloud: record.cloud,
        userCode: record.userCode,
        verificationUri: record.verificationUri,
        minutesLeft: Math.floor(Math.max(record.expiresAt - this.#deps.clock(), 0) / 60_000),
        refreshSeconds: Math.min(Math.max(Math.ceil(record.intervalMs / 1000), 1), MAX_REFRESH_SECONDS),
      }
    }
    const ended = await this.#records.take(flowId)
    if (ended === undefined || ended.state === 'pending') return missing()
    if (ended.state === 'completed' && ended.resultHandle !== undefined) {
      return { kind: 'completed', resultHandle: ended.resultHandle }
    }
    const failure = ended.failure ?? { reason: 'idp_error' as const }
    return {
      kind: 'failed',
      failure: {
        ...this.#failure(failure.reason, app),
        ...(failure.providerCode === undefined ? {} : { providerCode: failure.providerCode }),
        ...(failure.providerMessage === undefined ? {} : { providerMessage: failure.providerMessage }),
      },
    }
  }

  /** Stops this instance's polling and releases its leases (another instance takes over). */
  async stop(): Promise<void> {
    await this.#poller.stop()
  }

  #failure(reason: ConsentFailureReason, app: AppConfig | undefined): ConsentFailure {
    return { reason, status: statusOf(reason), app, purpose: 'consent' }
  }

  async #failed(
    reason: ConsentFailureReason,
    app: AppConfig,
    log: FastifyBaseLogger,
    error?: UpstreamError,
  ): Promise<DeviceStartOutcome> {
    const { store, metrics } = this.#deps
    const failed = await createFailFlow(store, metrics)(
      reason,
      {
        app,
        kind: app.consent,
        ...(error === undefined
          ? {}
          : {
              error,
              providerCode: error.label,
              providerMessage: `${error.error ?? error.kind} (${error.label})`,
            }),
      },
      log,
    )
    return { kind: 'failed', failure: failed.failure }
  }
}
