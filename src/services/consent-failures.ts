// How the consent flow reports: a failed flow (counted, logged, audited when someone signed in, and
// turned into what the failure page shows) and each upstream call it makes (counted and timed).
// One place, so every way a flow can end badly is reported the same way.
import type { FastifyBaseLogger } from 'fastify'
import type { AppConfig } from '../config.js'
import type { ConsentKind } from '../consent-kinds.js'
import { IdTokenError } from '../entra/id-token.js'
import { UpstreamError } from '../entra/types.js'
import { type ConsentFailureReason, statusOf } from '../errors.js'
import type { Metrics } from '../metrics.js'
import { displayableText } from '../one-line-text.js'
import type { Store } from '../store/types.js'
import { auditedUser, recordAudit } from './audit.js'
import type { FailedOutcome, FlowPurpose } from './consent-flow-types.js'

/** Longest provider text shown on a failure page. */
const MAX_PROVIDER_MESSAGE = 400
/** Longest provider error code shown on a failure page or kept in the audit trail. */
const MAX_PROVIDER_CODE = 64

/** What is known about a flow when it fails: the failure page, the log and the audit use it. */
export interface FailureContext {
  app: AppConfig | undefined
  kind: ConsentKind | undefined
  /** Default `consent`. */
  purpose?: FlowPurpose
  /**
   * Who Microsoft signed in, when someone did: only then is the failure audited. `upn` (the ID
   * token's preferred_username) lets an operator reading the trail tell who it was.
   */
  user?: { tid: string; oid: string; upn?: string | undefined }
  error?: UpstreamError | IdTokenError | undefined
  /**
   * What the identity provider said; untrusted text (a callback's `error_description` can be
   * forged), shown and audited only through displayableText: bounded, without controls, bidi
   * controls or lone surrogates, so it can neither reorder the page's words nor reach a terminal raw.
   */
  providerMessage?: string
  /** The OAuth `error` or AADSTS label; untrusted text, shown the same way. */
  providerCode?: string
}

/** Ends a flow as failed: counts, logs, audits (when someone signed in) and builds the page's data. */
export type FailFlow = (
  reason: ConsentFailureReason,
  context: FailureContext,
  log: FastifyBaseLogger,
) => Promise<FailedOutcome>

/** The failure reason for an identity provider's error: it refused (`oauth`) or could not answer. */
export function upstreamReason(error: UpstreamError): ConsentFailureReason {
  return error.kind === 'oauth' ? 'idp_error' : 'idp_unavailable'
}

/** The consent flow's failure reporter over its store (audit) and metrics. */
export function createFailFlow(store: Store, metrics: Metrics): FailFlow {
  return async (reason, context, log) => {
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
          ...auditedUser(context.user.upn),
          ...(upstream === undefined ? {} : { upstream: upstream.label }),
          ...(context.providerCode === undefined
            ? {}
            : { provider_error: displayableText(context.providerCode, MAX_PROVIDER_CODE) }),
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
          : { providerMessage: displayableText(context.providerMessage, MAX_PROVIDER_MESSAGE) }),
        ...(context.providerCode === undefined
          ? {}
          : { providerCode: displayableText(context.providerCode, MAX_PROVIDER_CODE) }),
      },
    }
  }
}

/**
 * Counts and times one upstream call of the consent flow (`consent_broker_upstream_*`): `ok`, the
 * UpstreamError's kind, or `invalid_id_token`; the first AADSTS code when Microsoft gave one.
 */
export function observeUpstream(
  metrics: Metrics,
  grant: 'authorization_code' | 'client_credentials' | 'device_code',
  startedAt: number,
  error?: unknown,
  /** An answer that is neither success nor error: a device code poll's `pending` or `slow_down`. */
  answered?: 'pending' | 'slow_down',
): void {
  const outcome =
    error === undefined
      ? (answered ?? 'ok')
      : error instanceof UpstreamError
        ? error.kind
        : 'invalid_id_token'
  const code =
    error instanceof UpstreamError && error.errorCodes[0] !== undefined ? `AADSTS${error.errorCodes[0]}` : ''
  metrics.upstreamRequests.inc({ grant, outcome, code })
  metrics.upstreamLatency.observe({ grant, outcome }, (performance.now() - startedAt) / 1000)
}
