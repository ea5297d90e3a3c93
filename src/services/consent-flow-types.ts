// The consent flow's vocabulary: what the routes hand in (callback query), what they get back
// (start and callback outcomes, failures, the one-time result) and what the flow runs on. Kept apart
// from the flow's steps so views and routes depend on the shapes, not on the behaviour.

import type { FastifyBaseLogger } from 'fastify'
import type { CloudName } from '../clouds.js'
import type { AppConfig, Config } from '../config.js'
import type { ConsentKind } from '../consent-kinds.js'
import type { ResourceManager } from '../entra/resource-manager.js'
import type { IdentityProvider, VerifiedIdToken } from '../entra/types.js'
import type { ConsentFailureReason } from '../errors.js'
import type { Metrics } from '../metrics.js'
import type { Store } from '../store/types.js'
import type { SubscriptionsOutcome } from './azure-subscriptions.js'
import type { OwnAppInput } from './own-app.js'

// Why a flow failed (ConsentFailureReason) and the status of each are catalogued in src/errors/.
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

/**
 * Everything the one-time result page shows. A new registration's holds its Key (kept sealed, shown
 * once); a renewed one's does not: its integration already has the Key, and a result that showed it
 * again would hand the live Key to anyone who can sign in as that user.
 */
export type ConsentResult = ConsentResultFields &
  (
    | {
        /** A new registration. */
        reused: false
        /** The integration's Key. */
        key: string
      }
    | {
        /** An existing (delegated) registration was renewed: same ID and Key, the Key not shown. */
        reused: true
        /**
         * Set when this result was a new Key that can no longer be shown: a later consent by the
         * same user replaced it (another tab), or the registration was revoked meanwhile.
         */
        keyWithdrawn?: true
      }
  )

/**
 * A one-time result as stored: a delegated Key not yet handed out also names itself
 * (`unshownKey`, see `markKeyShown` in registrations.ts); taking the result strips it.
 */
export type StoredConsentResult = ConsentResult & { unshownKey?: string }

/** What every one-time result holds, Key or not. */
export interface ConsentResultFields {
  app: string
  appName: string
  kind: ConsentKind
  cloud: CloudName
  registrationId: string
  /** The integration's ID: `<registration_id>@<PUBLIC_URL>/obtain-token`. */
  id: string
  /** The integration's Token: the tenant id. */
  token: string
  userName: string
  /** Azure apps: the subscriptions the new registration sees (listSubscriptions in the apps file). */
  subscriptions?: SubscriptionsOutcome
  /** Azure admin-consent apps: the app's client id, which an Azure role assignment names. */
  clientId?: string
  /** The tenant's own app registration (client id) the registration uses, when it brought one. */
  ownClientId?: string
  /** The tenant's own app is a public client (device code method): no client secret at all. */
  ownAppPublicClient?: true
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

/** What the waiting page's status check finds (`ConsentFlow.proofStatus`). */
export type ProofStatus =
  /** Still proving: show the waiting page again. */
  | { kind: 'pending' }
  | { kind: 'completed'; resultHandle: string }
  | FailedOutcome
  /** No proof under this handle (never, expired or already shown). */
  | { kind: 'unknown' }

/** What the callback route does next. */
export type CallbackOutcome =
  /** Admin consent, phase 2: on to the tenant-wide consent page with a re-issued flow cookie. */
  | { kind: 'redirect'; location: string; flowHandle: string }
  | { kind: 'completed'; resultHandle: string }
  | FailedOutcome
  /**
   * Admin consent, after Microsoft's redirect: the proof takes a while and goes on in the
   * background; the browser waits on `/callback/status` with this flow cookie.
   */
  | { kind: 'proving'; flowHandle: string }
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
  /**
   * Where a proof the callback left running stands (`flowHandle`: the verified flow cookie). A
   * finished one is handed out once: the result handle, or the failure.
   */
  proofStatus(flowHandle: string | undefined, log: FastifyBaseLogger): Promise<ProofStatus>
  /** The one-time result, deleted as it is read; null when already shown or expired. */
  takeResult(resultHandle: string | undefined): Promise<ConsentResult | null>
  /** Whether the one-time result is still there; does not take it (HEAD /result). */
  hasResult(resultHandle: string | undefined): Promise<boolean>
  /**
   * Graceful shutdown: interrupts the admin-consent proofs running on this instance and hands them
   * over to the waiting page's next poll (on any instance), which resumes them.
   */
  stop(): Promise<void>
}

/** What a consent flow runs on. */
export interface ConsentFlowDependencies {
  config: Config
  store: Store
  idp: IdentityProvider
  metrics: Metrics
  clock: () => number
  /** How long the callback waits for a proof before sending the browser to the waiting page; 2 s. */
  proofInlineWaitMs?: number
  /** Waits between consent-proof attempts; injectable for tests. */
  sleep?: (ms: number) => Promise<void>
  /** Lists an Azure app's subscriptions after consent; default: Resource Manager per config. */
  resourceManager?: ResourceManager
}
