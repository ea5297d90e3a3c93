// Proving an admin consent took effect: after Microsoft redirects back from the tenant-wide consent
// page, ask for a client-credentials token for that tenant until one is issued. Consent propagates
// slowly through Microsoft's directory, so failures are retried with doubling delays (honouring a
// throttle's Retry-After) until the budget (CONSENT_PROOF_BUDGET_MS) is spent; errors that retrying
// cannot fix (our own credentials or request are wrong) stop at once.
import type { Config, ResolvedApp } from '../config.js'
import { type IdentityProvider, UpstreamError } from '../entra/types.js'
import type { Metrics } from '../metrics.js'
import { observeUpstream } from './consent-failures.js'

const PROOF_FIRST_DELAY_MS = 1000
const PROOF_MAX_DELAY_MS = 8000
/** OAuth errors that retrying cannot fix: our own credentials or request are wrong. */
const PROOF_FATAL_ERRORS = new Set(['invalid_client', 'invalid_scope', 'unsupported_grant_type'])

/**
 * How a proof ended: a token (its access token lists the app's roles, and serves listSubscriptions),
 * or the last error with `exhausted` telling whether the budget ran out (else a fatal error stopped it).
 */
export type ConsentProof =
  | { ok: true; accessToken: string }
  | { ok: false; error: UpstreamError | undefined; exhausted: boolean }
  /** Stopped by `signal` (the instance is shutting down) before a token was issued. */
  | { ok: false; interrupted: true }

/** What a proof runs on. */
export interface ConsentProofDependencies {
  config: Config
  idp: IdentityProvider
  metrics: Metrics
  clock: () => number
  /** Waits between attempts. */
  sleep: (ms: number) => Promise<void>
}

/** A promise that settles when `signal` aborts (never, without one). */
function aborted(signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => signal?.addEventListener('abort', () => resolve(), { once: true }))
}

/**
 * Retries client credentials for tenant `tid` with doubling delays until a token is issued, a fatal
 * OAuth error answers, or `config.consent.proofBudgetMs` is spent. Every attempt is counted and timed.
 * `signal` stops it at once, the attempt in flight included (`interrupted`).
 */
export async function proveAdminConsent(
  deps: ConsentProofDependencies,
  resolved: ResolvedApp,
  tid: string,
  signal?: AbortSignal,
): Promise<ConsentProof> {
  const { config, idp, metrics, clock, sleep } = deps
  const deadline = clock() + config.consent.proofBudgetMs
  let delay = PROOF_FIRST_DELAY_MS
  let lastError: UpstreamError | undefined
  const interrupted = aborted(signal)
  for (;;) {
    if (signal?.aborted) return { ok: false, interrupted: true }
    const startedAt = performance.now()
    const remaining = Math.max(deadline - clock(), 0)
    // whole milliseconds: AbortSignal.timeout refuses a fraction
    const timeout = AbortSignal.timeout(Math.ceil(Math.max(remaining, PROOF_FIRST_DELAY_MS)))
    try {
      const grant = await idp.clientCredentials(
        resolved,
        tid,
        resolved.defaultScope,
        signal === undefined ? timeout : AbortSignal.any([timeout, signal]),
      )
      observeUpstream(metrics, 'client_credentials', startedAt)
      return { ok: true, accessToken: grant.accessToken }
    } catch (error) {
      if (signal?.aborted) return { ok: false, interrupted: true }
      observeUpstream(metrics, 'client_credentials', startedAt, error)
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
    await Promise.race([sleep(Math.min(wanted, left)), interrupted])
    delay = Math.min(delay * 2, PROOF_MAX_DELAY_MS)
  }
}
