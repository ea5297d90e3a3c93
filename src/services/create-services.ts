// createServices: every service of one app instance, built once from the app's config, store,
// identity provider, metrics, clock and logger. buildApp (app.ts) calls it, decorates the result on
// the Fastify instance (`app.services`) and starts/stops the background work with the app; routes
// only take services from there. Tests build the same services without HTTP.
import type { FastifyBaseLogger } from 'fastify'
import type { Config } from '../config.js'
import { AppCredentials } from '../entra/app-credentials.js'
import type { IdentityProvider } from '../entra/types.js'
import type { Metrics } from '../metrics.js'
import type { Store } from '../store/types.js'
import type { BrowserSessions } from './browser-sessions.js'
import { type ConsentFlow, createConsentFlow } from './consent-flow.js'
import { CredentialExpiryWatch } from './credential-expiry.js'
import { DeviceCodeFlow } from './device-code-flow.js'
import { IndexRebuild } from './index-rebuild.js'
import { KeyRotation } from './key-rotation.js'
import { ObtainToken } from './obtain-token.js'
import { consoleSessions, type OperatorIdentity } from './operator-auth.js'
import { Revocation } from './revocation.js'
import { manageSessions, type TenantAdminIdentity } from './tenant-admin.js'
import { TokenIssuer } from './token-issuer.js'
import { KeepAlive } from './token-keep-alive.js'
import { ScopeResolver } from './token-scope.js'
import { WebhookDispatcher } from './webhooks/dispatcher.js'
import { WebhookEndpoints } from './webhooks/endpoints.js'

/** What every service is built from. */
export interface ServiceDependencies {
  config: Config
  store: Store
  idp: IdentityProvider
  metrics: Metrics
  /** Epoch ms. */
  clock: () => number
  log: FastifyBaseLogger
  /**
   * The apps' credentials, the same object the identity provider authenticates with (broker.ts
   * builds both); default: built here from the configuration and the store.
   */
  credentials?: AppCredentials
}

/** The services of one app instance; each exists once. */
export interface Services {
  /** The scopes each hosted app and cloud may ask for. */
  readonly scopes: ScopeResolver
  /** Access tokens: cache, single-flight, Redis lock, upstream calls. */
  readonly issuer: TokenIssuer
  /** POST /obtain-token's checks and answer. */
  readonly obtainToken: ObtainToken
  /** Background refresh of idle delegated grants; started and stopped with the app. */
  readonly keepAlive: KeepAlive
  /** Re-sealing every registration under the newest key; paused when the app closes. */
  readonly keyRotation: KeyRotation
  /** Consent pages and the manage sign-in: one flow, ending at the same callback. */
  readonly consentFlow: ConsentFlow
  /** A tenant's own public-client app, device code method: start, page, server-side polling. */
  readonly deviceCodeFlow: DeviceCodeFlow
  /** Revoking a registration or a tenant's registrations. */
  readonly revocation: Revocation
  /** Notifications: the operators' endpoints, and the dispatcher started and stopped with the app. */
  readonly webhooks: {
    readonly endpoints: WebhookEndpoints
    readonly dispatcher: WebhookDispatcher
  }
  /** The apps' own credentials: their health, expiry and reloads. */
  readonly credentials: AppCredentials
  /** `app_credential.expiring` notifications; started and stopped with the app. */
  readonly credentialExpiry: CredentialExpiryWatch
  /** The browser sessions of the signed-in areas: the admin console's and `/{app}/manage`'s. */
  readonly sessions: {
    readonly console: BrowserSessions<OperatorIdentity>
    readonly manage: BrowserSessions<TenantAdminIdentity>
  }
  /**
   * The store's index maintenance: the one-time indexing of registrations written before its
   * listing and tenant indexes, the upgrade's finish, and the periodic repair of index moves a
   * Redis Cluster's status change left undone.
   */
  readonly indexRebuild: IndexRebuild
}

/** Builds every service once. Nothing starts here: see {@link startServices}. */
export function createServices(deps: ServiceDependencies): Services {
  const { config, store, idp, metrics, clock, log } = deps
  const scopes = new ScopeResolver(config)
  const issuer = new TokenIssuer({ config, store, idp, metrics, logger: log, clock, scopes })
  const credentials = deps.credentials ?? appCredentialsFor(config, store, log, clock)
  return {
    scopes,
    issuer,
    obtainToken: new ObtainToken({ config, store, issuer, scopes, log, clock }),
    keepAlive: new KeepAlive({ config, store, issuer, scopes, logger: log, clock }),
    keyRotation: new KeyRotation({
      store,
      keyRing: config.keyRing,
      log: log.child({ component: 'key-rotation' }),
      clock,
    }),
    consentFlow: createConsentFlow({ config, store, idp, metrics, clock }),
    deviceCodeFlow: new DeviceCodeFlow({
      config,
      store,
      idp,
      metrics,
      clock,
      log: log.child({ component: 'device-code' }),
    }),
    revocation: new Revocation({ store, clock }),
    credentials,
    credentialExpiry: new CredentialExpiryWatch({
      config,
      store,
      credentials,
      clock,
      log: log.child({ component: 'credential-expiry' }),
    }),
    sessions: { console: consoleSessions(store, clock, config), manage: manageSessions(store, clock) },
    indexRebuild: new IndexRebuild({ store, logger: log }),
    webhooks: {
      endpoints: new WebhookEndpoints({ config, store, clock, log }),
      dispatcher: new WebhookDispatcher({
        config,
        store,
        metrics,
        clock,
        log: log.child({ component: 'webhooks' }),
      }),
    },
  }
}

/** The apps' credentials as the configuration lists them, their health shared through `store`. */
export function appCredentialsFor(
  config: Config,
  store: Store,
  log: FastifyBaseLogger,
  clock: () => number,
): AppCredentials {
  return new AppCredentials(config.apps, {
    health: store.credentialHealth,
    logger: log.child({ component: 'app-credentials' }),
    clock,
    failingTtlMs: config.credentials.failingMs,
  })
}

/**
 * Starts the background work (the keep-alive timer, the index maintenance, webhook delivery); the
 * app calls it when ready.
 */
export function startServices(services: Services): void {
  services.keepAlive.start()
  services.indexRebuild.start()
  services.webhooks.dispatcher.start()
  services.credentialExpiry.start()
}

/**
 * Stops the background work and waits for it: the keep-alive's run in progress, a key-rotation
 * pass, which pauses at a batch boundary so the next start resumes it, and the webhook attempts in
 * flight (bounded by WEBHOOK_TIMEOUT_MS; an unfinished delivery's lease lets another instance retry),
 * the device code polling, whose leases are released so another instance polls on, and the
 * admin-consent proofs, interrupted and handed over to the waiting page's next poll (which any
 * instance resumes) once what they were writing is written.
 */
export async function stopServices(services: Services): Promise<void> {
  await Promise.all([
    services.keepAlive.stop(),
    services.keyRotation.stop(),
    services.indexRebuild.stop(),
    services.webhooks.dispatcher.stop(),
    services.credentialExpiry.stop(),
    services.deviceCodeFlow.stop(),
    services.consentFlow.stop(),
  ])
}
