// Server-side polling of device code flows. Exactly one instance polls a flow at a time: the one
// holding the flow's lease (a store lock, `device-poll:<hash of the flow id>`). The instance that
// starts a flow takes the lease; every page view of the flow, on any instance, takes it over when
// nobody holds it (the holder died or stopped), so polling resumes wherever the page is served.
// The schedule (interval, next poll, slow_down's +5 s) lives in the flow's record, so a new holder
// goes on where the last one left off. When the person has signed in, the holder creates the
// registration exactly as the browser method's delegated path does (completeConsent), once.
import { setTimeout as sleepFor } from 'node:timers/promises'
import type { FastifyBaseLogger } from 'fastify'
import { type Config, findApp, resolveApp } from '../config.js'
import { IdTokenError } from '../entra/id-token.js'
import { type DevicePoll, type IdentityProvider, UpstreamError } from '../entra/types.js'
import { isTransientOAuthError } from '../entra/upstream-errors.js'
import type { ConsentFailureReason } from '../errors.js'
import type { LockHandle } from '../store/types.js'
import type { ConsentCompletionDependencies } from './consent-completion.js'
import { completeConsent } from './consent-completion.js'
import { createFailFlow, type FailureContext, observeUpstream } from './consent-failures.js'
import { type DeviceFlowRecord, type DeviceFlowRecords, pollLeaseName } from './device-code-records.js'
import { aadstsCode, ownAppRefusal, ownAppResolved } from './own-app.js'

/** RFC 8628: each `slow_down` adds 5 seconds to the polling interval. */
export const SLOW_DOWN_STEP_MS = 5000
/** Slack on top of the wait and the poll's own time before an unrenewed lease lapses. */
const LEASE_SLACK_MS = 5000

/** What the poller runs on. */
export interface DeviceCodePollerDependencies extends ConsentCompletionDependencies {
  idp: IdentityProvider
  records: ConsentCompletionDependencies['records']
  deviceRecords: DeviceFlowRecords
  log: FastifyBaseLogger
  /** Waits between polls; injectable for tests. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>
}

/** What one poll answer does to the flow. */
type Step =
  | { next: 'wait'; record: DeviceFlowRecord }
  | { next: 'completed'; resultHandle: string }
  | { next: 'failed'; reason: ConsentFailureReason; context?: Partial<FailureContext> }
  /** Another poller (after a lapsed lease) already ended the flow: leave its record alone. */
  | { next: 'stop' }

/** The polling loops this instance runs, one per flow whose lease it holds. */
export class DeviceCodePoller {
  readonly #deps: DeviceCodePollerDependencies
  readonly #running = new Map<string, { abort: AbortController; done: Promise<void> }>()
  readonly #sleep: (ms: number, signal: AbortSignal) => Promise<void>
  #stopped = false

  constructor(deps: DeviceCodePollerDependencies) {
    this.#deps = deps
    this.#sleep = deps.sleep ?? ((ms, signal) => sleepFor(ms, undefined, { signal }).catch(() => undefined))
  }

  /** How many flows this instance polls now (tests, metrics). */
  get polling(): number {
    return this.#running.size
  }

  /**
   * Polls the flow from this instance unless someone polls it already: takes its lease when free
   * and starts the loop. Never throws (a page view must render whatever happens here).
   */
  async ensure(flowId: string): Promise<void> {
    if (this.#stopped || this.#running.has(flowId)) return
    const { store, config, log } = this.#deps
    let lease: LockHandle | null
    try {
      lease = await store.locks.acquire(pollLeaseName(flowId), this.#leaseMs(0, config))
    } catch (err) {
      log.warn({ err }, 'device code poll lease not taken')
      return
    }
    if (lease === null || this.#stopped || this.#running.has(flowId)) {
      if (lease !== null) await store.locks.release(lease).catch(() => false)
      return
    }
    const abort = new AbortController()
    const done = this.#loop(flowId, lease, abort.signal)
      .catch((err: unknown) => log.error({ err }, 'device code polling stopped on an error'))
      .finally(async () => {
        this.#running.delete(flowId)
        await store.locks.release(lease).catch(() => false)
      })
    this.#running.set(flowId, { abort, done })
  }

  /** Stops every loop and releases their leases, so another instance takes over at once. */
  async stop(): Promise<void> {
    this.#stopped = true
    const loops = [...this.#running.values()]
    for (const loop of loops) loop.abort.abort()
    await Promise.all(loops.map((loop) => loop.done))
  }

  #leaseMs(waitMs: number, config: Config): number {
    return waitMs + config.tokens.upstreamTimeoutMs + LEASE_SLACK_MS
  }

  async #loop(flowId: string, lease: LockHandle, signal: AbortSignal): Promise<void> {
    const { store, config, clock, deviceRecords } = this.#deps
    while (!signal.aborted) {
      const record = await deviceRecords.get(flowId)
      if (record === undefined || record.state !== 'pending') return
      const waitMs = Math.max(record.nextPollAt - clock(), 0)
      // Renewed before each wait, for the wait and the poll: a holder that dies loses it soon after.
      if (!(await store.locks.renew(lease, this.#leaseMs(waitMs, config)))) return
      if (waitMs > 0) await this.#sleep(waitMs, signal)
      if (signal.aborted) return
      const step = await this.#pollOnce(flowId, record)
      if (step.next === 'wait') {
        await deviceRecords.put(flowId, step.record)
        continue
      }
      if (step.next === 'completed') {
        await deviceRecords.put(flowId, { ...record, state: 'completed', resultHandle: step.resultHandle })
      } else if (step.next === 'failed') {
        const failure = await this.#fail(record, step.reason, step.context ?? {})
        await deviceRecords.put(flowId, { ...record, state: 'failed', failure })
      }
      return
    }
  }

  /** One poll and what it means for the flow. */
  async #pollOnce(flowId: string, record: DeviceFlowRecord): Promise<Step> {
    const { idp, clock, config, deviceRecords, log } = this.#deps
    const app = findApp(config, record.app)
    const hosted = app === undefined ? undefined : resolveApp(config, app, record.cloud)
    if (app === undefined || hosted === undefined) return { next: 'failed', reason: 'session_expired' }
    if (clock() >= record.expiresAt) return { next: 'failed', reason: 'device_code_expired' }
    const ownApp = { tenantId: record.tenantId, clientId: record.clientId }
    const resolved = ownAppResolved(hosted, ownApp)
    let answer: DevicePoll
    const startedAt = performance.now()
    try {
      answer = await idp.pollDeviceAuthorization(resolved, record.tenantId, record.deviceCode)
    } catch (error) {
      observeUpstream(this.#deps.metrics, 'device_code', startedAt, error)
      return this.#refused(record, error)
    }
    observeUpstream(
      this.#deps.metrics,
      'device_code',
      startedAt,
      undefined,
      answer.status === 'granted' ? undefined : answer.status,
    )
    const now = clock()
    if (answer.status === 'pending')
      return { next: 'wait', record: { ...record, nextPollAt: now + record.intervalMs } }
    if (answer.status === 'slow_down') {
      const intervalMs = record.intervalMs + SLOW_DOWN_STEP_MS
      return { next: 'wait', record: { ...record, intervalMs, nextPollAt: now + intervalMs } }
    }
    const { idToken, refreshToken, accessToken } = answer.tokens
    const user = { tid: idToken.tid, oid: idToken.oid }
    // The tenant's own app is only for its tenant; a delegated registration needs a refresh token.
    if (idToken.tid !== record.tenantId)
      return { next: 'failed', reason: 'tenant_mismatch', context: { user } }
    if (refreshToken === undefined) return { next: 'failed', reason: 'no_refresh_token', context: { user } }
    // Once per flow, even if a lapsed lease let a second poller get this far.
    if (!(await deviceRecords.claimEnd(flowId, Math.max(record.expiresAt - now, 0) + 60_000))) {
      return { next: 'stop' }
    }
    const completed = await completeConsent(
      this.#deps,
      { app, resolved, user: idToken, refreshToken, consentAccessToken: accessToken, ownApp },
      log,
    )
    if (completed.kind !== 'completed') return { next: 'failed', reason: 'idp_error' }
    return { next: 'completed', resultHandle: completed.resultHandle }
  }

  /** A poll Microsoft refused, or could not answer: retried when transient, else the flow's end. */
  #refused(record: DeviceFlowRecord, error: unknown): Step {
    const { clock, log } = this.#deps
    if (error instanceof IdTokenError)
      return { next: 'failed', reason: 'invalid_id_token', context: { error } }
    if (!(error instanceof UpstreamError)) throw error
    const transient =
      error.kind !== 'oauth' || (error.error !== undefined && isTransientOAuthError(error.error))
    if (transient) {
      // Try again at the next interval (or after Retry-After); the device code's end bounds it.
      const retryMs = Math.max(record.intervalMs, (error.retryAfterSeconds ?? 0) * 1000)
      log.info({ upstream: error.label, upstreamKind: error.kind }, 'device code poll failed; polling on')
      return { next: 'wait', record: { ...record, nextPollAt: clock() + retryMs } }
    }
    const context: Partial<FailureContext> = {
      error,
      providerCode: error.label,
      providerMessage: `${error.error ?? error.kind} (${error.label})`,
    }
    switch (error.error) {
      case 'authorization_declined':
        return { next: 'failed', reason: 'cancelled', context }
      case 'expired_token':
        return { next: 'failed', reason: 'device_code_expired', context }
      case 'bad_verification_code':
        return { next: 'failed', reason: 'session_expired', context }
    }
    const reason = ownAppRefusal(aadstsCode(error), error.error) ?? 'idp_error'
    return { next: 'failed', reason, context }
  }

  /** Reports the failure (metrics, log, audit when someone signed in) and keeps what the page shows. */
  async #fail(
    record: DeviceFlowRecord,
    reason: ConsentFailureReason,
    context: Partial<FailureContext>,
  ): Promise<NonNullable<DeviceFlowRecord['failure']>> {
    const { config, store, metrics, log } = this.#deps
    const app = findApp(config, record.app)
    const failed = await createFailFlow(store, metrics)(reason, { app, kind: app?.consent, ...context }, log)
    const { providerCode, providerMessage } = failed.failure
    return {
      reason,
      ...(providerCode === undefined ? {} : { providerCode }),
      ...(providerMessage === undefined ? {} : { providerMessage }),
    }
  }
}
