// Prometheus metrics. One registry per app instance (tests build many apps in one process), with
// the default process metrics. Names and labels are documented in the README's metrics table and
// docs/metrics.md; deploy/ holds the alert rules and the dashboard built on them.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'

export interface Metrics {
  readonly registry: Registry
  /**
   * outcome: `success` or an error code (`consent_required`, `rate_limited` …). Counted with
   * `countObtainToken`; read it with `get()` or a scrape.
   */
  readonly obtainTokenRequests: Counter<'app' | 'outcome'>
  /** One obtain-token answer, by app label and outcome (see {@link deferredCounter}). */
  countObtainToken(app: string, outcome: string): void
  /**
   * result: `hit` | `miss` | `shared` (a waiter took another request's or instance's result).
   * Counted with `countTokenCache`; read it with `get()` or a scrape.
   */
  readonly tokenCache: Counter<'app' | 'result'>
  /** One access-token cache lookup, by app and result (see {@link deferredCounter}). */
  countTokenCache(app: string, result: string): void
  /** grant: `client_credentials` | `refresh_token` | `authorization_code`; outcome: `ok` | failure kind | `deadline`; code: AADSTS or ''. */
  readonly upstreamRequests: Counter<'grant' | 'outcome' | 'code'>
  readonly upstreamLatency: Histogram<'grant' | 'outcome'>
  /** result: `acquired` | `waited` | `timeout`. */
  readonly lockWaits: Counter<'result'>
  readonly lockWaitSeconds: Histogram
  /** stage: `started` | `completed` | `failed`; reason: '' or the failure reason. */
  readonly consents: Counter<'app' | 'kind' | 'stage' | 'reason'>
  readonly registrationsByStatus: Gauge<'status'>
  readonly redisErrors: Counter<'operation'>
  /** 1 when the store answered a PING at scrape time (the `/readyz` check), else 0. */
  readonly ready: Gauge
  /** Webhook attempts by type and outcome: `delivered`, `retry` (failed, will retry), `failed` (gave up). */
  readonly webhookDeliveries: Counter<'type' | 'outcome'>
  /** Webhook deliveries waiting (every instance's, read from the store at scrape time). */
  readonly webhooksPending: Gauge
  /** outcome: `refreshed` | `adopted` | `other_instance` | `backoff` | `rate_capped` | `failed`. */
  readonly refreshAhead: Counter<'app' | 'outcome'>
  /** Cached tokens served while their group's refresh was failing upstream. */
  readonly servedDuringUpstreamFailure: Counter<'app'>
  /** Token groups this instance knows to be backing off, per app (set at scrape time). */
  readonly upstreamBackoffGroups: Gauge<'app'>
  /** priority: `caller` | `background`; one per refresh that had to wait for the rate cap. */
  readonly upstreamRateWaits: Counter<'app' | 'priority'>
  /** Refresh locks taken over from a holder that stopped renewing them without a result. */
  readonly lockTakeovers: Counter
  /** Where the backoff gauge reads its values (the token issuer's guard). */
  observeUpstreamBackoff(source: () => Record<string, number>): void
  /** Seconds until each app credential with a known expiry expires (negative once expired). */
  readonly appCredentialExpiry: Gauge<'app' | 'cloud' | 'credential'>
  /** Refusals of an app credential by Microsoft; code: the AADSTS label. */
  readonly appCredentialFailures: Counter<'app' | 'cloud' | 'credential' | 'code'>
}

/** One app credential's time left, as the expiry gauge exports it. */
export interface CredentialExpiry {
  readonly app: string
  readonly cloud: string
  readonly credential: string
  readonly seconds: number
}

/**
 * What a scrape waits for Redis at most (readiness probe, registrations count): a scrape during an
 * outage must still succeed, quickly, with the readiness gauge at 0 — a scrape that times out
 * would drop every series of the instance and hide the very state an alert should see.
 */
const SCRAPE_WAIT_MS = 1000

/** The value of `work`, or `undefined` when it fails or takes longer than `timeoutMs`. */
async function within<T>(work: () => Promise<T>, timeoutMs: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined
  const timedOut = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), timeoutMs)
  })
  try {
    return await Promise.race([work(), timedOut])
  } catch {
    return undefined
  } finally {
    clearTimeout(timer)
  }
}

/**
 * A two-label counter whose increments are plain additions kept here and added to the prom-client
 * counter when it is read (a scrape, or `get()`, both run its `collect`). prom-client hashes and
 * validates the labels on every `inc`, a cost a cache hit would pay twice; this costs two Map
 * lookups with strings the caller already holds. Label values must come from a bounded set, as for
 * any counter.
 */
export function deferredCounter<A extends string, B extends string>(options: {
  name: string
  help: string
  labelNames: readonly [A, B]
  registers: Registry[]
}): { counter: Counter<A | B>; count(a: string, b: string): void } {
  const [first, second] = options.labelNames
  // value of `first` → value of `second` → increments not yet added (0 once added: no allocation
  // on the hot path once every label pair has been seen)
  const pending = new Map<string, Map<string, number>>()
  const counter = new Counter<A | B>({
    name: options.name,
    help: options.help,
    labelNames: options.labelNames,
    registers: options.registers,
    collect() {
      for (const [a, byB] of pending) {
        for (const [b, n] of byB) {
          if (n === 0) continue
          this.inc({ [first]: a, [second]: b } as Partial<Record<A | B, string>>, n)
          byB.set(b, 0)
        }
      }
    },
  })
  return {
    counter,
    count(a, b) {
      let byB = pending.get(a)
      if (byB === undefined) {
        byB = new Map()
        pending.set(a, byB)
      }
      byB.set(b, (byB.get(b) ?? 0) + 1)
    },
  }
}

export function createMetrics(
  options: {
    collectRegistrations?: () => Promise<Record<string, number>>
    /** Resolves when the instance is ready (the store answers); without it the gauge reads 1. */
    probeReady?: () => Promise<void>
    /** Pending webhook deliveries in the store. */
    countWebhooksPending?: () => Promise<number>
    /** The app credentials' expiries at scrape time (the apps file may have been reloaded). */
    credentialExpiries?: () => readonly CredentialExpiry[]
  } = {},
): Metrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'consent_broker_' })
  const registers = [registry]
  const collectRegistrations = options.collectRegistrations
  const probeReady = options.probeReady
  const countWebhooksPending = options.countWebhooksPending
  let backoffSource: (() => Record<string, number>) | undefined
  const credentialExpiries = options.credentialExpiries
  const obtainToken = deferredCounter({
    name: 'consent_broker_obtain_token_requests_total',
    help: 'obtain-token requests by app and outcome',
    labelNames: ['app', 'outcome'],
    registers,
  })
  const tokenCache = deferredCounter({
    name: 'consent_broker_token_cache_total',
    help: 'access-token cache lookups by app and result (hit, miss, shared)',
    labelNames: ['app', 'result'],
    registers,
  })
  return {
    registry,
    obtainTokenRequests: obtainToken.counter,
    countObtainToken: obtainToken.count,
    tokenCache: tokenCache.counter,
    countTokenCache: tokenCache.count,
    upstreamRequests: new Counter({
      name: 'consent_broker_upstream_requests_total',
      help: 'token requests to the identity provider by grant, outcome and AADSTS code',
      labelNames: ['grant', 'outcome', 'code'],
      registers,
    }),
    upstreamLatency: new Histogram({
      name: 'consent_broker_upstream_request_duration_seconds',
      help: 'latency of token requests to the identity provider',
      labelNames: ['grant', 'outcome'],
      buckets: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    lockWaits: new Counter({
      name: 'consent_broker_lock_waits_total',
      help: 'refresh-lock acquisitions by result (acquired, waited for another holder, timeout)',
      labelNames: ['result'],
      registers,
    }),
    lockWaitSeconds: new Histogram({
      name: 'consent_broker_lock_wait_seconds',
      help: 'time spent waiting for another instance to refresh a token',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    consents: new Counter({
      name: 'consent_broker_consents_total',
      help: 'consent flows by app, kind, stage (started, completed, failed) and failure reason',
      labelNames: ['app', 'kind', 'stage', 'reason'],
      registers,
    }),
    registrationsByStatus: new Gauge({
      name: 'consent_broker_registrations',
      help: 'registrations by status (counted at most every METRICS_REGISTRATIONS_INTERVAL_SECONDS)',
      labelNames: ['status'],
      registers,
      async collect() {
        if (collectRegistrations === undefined) return
        // During a Redis outage (or a count slower than the wait) the last values stay.
        const counts = await within(collectRegistrations, SCRAPE_WAIT_MS)
        if (counts === undefined) return
        for (const [status, count] of Object.entries(counts)) this.set({ status }, count)
      },
    }),
    redisErrors: new Counter({
      name: 'consent_broker_redis_errors_total',
      help: 'Redis connection and command errors',
      labelNames: ['operation'],
      registers,
    }),
    // Prometheus only sees /metrics, not /readyz: readiness is exported so that alerts can tell
    // "this instance runs but cannot reach Redis" from "this instance is gone" (`up == 0`).
    ready: new Gauge({
      name: 'consent_broker_ready',
      help: '1 when this instance is ready (its store answered a PING at scrape time, as /readyz checks), else 0',
      registers,
      async collect() {
        const ready =
          probeReady === undefined ||
          (await within(async () => {
            await probeReady()
            return true
          }, SCRAPE_WAIT_MS)) === true
        this.set(ready ? 1 : 0)
      },
    }),
    webhookDeliveries: new Counter({
      name: 'consent_broker_webhook_deliveries_total',
      help: 'webhook delivery attempts by event type and outcome (delivered, retry, failed)',
      labelNames: ['type', 'outcome'],
      registers,
    }),
    webhooksPending: new Gauge({
      name: 'consent_broker_webhooks_pending',
      help: 'webhook deliveries waiting for their next attempt (all instances)',
      registers,
      async collect() {
        if (countWebhooksPending === undefined) return
        const pending = await within(countWebhooksPending, SCRAPE_WAIT_MS)
        if (pending !== undefined) this.set(pending)
      },
    }),
    refreshAhead: new Counter({
      name: 'consent_broker_refresh_ahead_total',
      help: 'background refreshes of tokens in use past their refresh-ahead point, by app and outcome',
      labelNames: ['app', 'outcome'],
      registers,
    }),
    servedDuringUpstreamFailure: new Counter({
      name: 'consent_broker_tokens_served_during_upstream_failure_total',
      help: 'cached tokens served while the refresh of their token group was failing upstream',
      labelNames: ['app'],
      registers,
    }),
    upstreamBackoffGroups: new Gauge({
      name: 'consent_broker_upstream_backoff_groups',
      help: 'token groups this instance knows to be backing off after upstream failures, by app',
      labelNames: ['app'],
      registers,
      collect() {
        this.reset()
        for (const [app, count] of Object.entries(backoffSource?.() ?? {})) this.set({ app }, count)
      },
    }),
    upstreamRateWaits: new Counter({
      name: 'consent_broker_upstream_rate_waits_total',
      help: 'upstream token requests that waited for the per-app rate cap, by app and priority',
      labelNames: ['app', 'priority'],
      registers,
    }),
    lockTakeovers: new Counter({
      name: 'consent_broker_lock_takeovers_total',
      help: 'refresh locks taken over after their holder stopped renewing them without a result',
      registers,
    }),
    observeUpstreamBackoff(source) {
      backoffSource = source
    },
    appCredentialExpiry: new Gauge({
      name: 'consent_broker_app_credential_expiry_seconds',
      help: 'seconds until an app credential expires (certificates: notAfter; secrets: expiresAt in the apps file)',
      labelNames: ['app', 'cloud', 'credential'],
      registers,
      collect() {
        if (credentialExpiries === undefined) return
        // Reset first: a credential removed by a reload must stop being exported.
        this.reset()
        for (const { app, cloud, credential, seconds } of credentialExpiries()) {
          this.set({ app, cloud, credential }, seconds)
        }
      },
    }),
    appCredentialFailures: new Counter({
      name: 'consent_broker_app_credential_failures_total',
      help: 'app credentials refused by Microsoft, by app, cloud, credential and AADSTS code',
      labelNames: ['app', 'cloud', 'credential', 'code'],
      registers,
    }),
  }
}
