// Keep-alive for delegated grants: Microsoft lets a refresh token lapse after ~90 days without use,
// so a delegated registration whose token has not been refreshed for `keepAliveIdleMs` is
// refreshed in the background. One instance at a time (a lock), a few registrations at once,
// through the issuer (so a foreground request and the keep-alive never refresh the same grant
// twice, and the keep-alive waits behind callers for the app's upstream rate cap), and a failure
// here never reaches the process: it is logged and retried on the next tick.
import type { FastifyBaseLogger } from 'fastify'
import type { Config } from '../config.js'
import type { IdlePosition, Store } from '../store/types.js'
import type { TokenIssuer } from './token-issuer.js'
import type { ScopeResolver } from './token-scope.js'

/** What the keep-alive needs; it refreshes through the instance's one TokenIssuer. */
export interface KeepAliveDeps {
  config: Config
  store: Store
  issuer: TokenIssuer
  scopes: ScopeResolver
  logger: FastifyBaseLogger
  clock: () => number
}

/** What one pass did. */
export interface KeepAliveRun {
  /** False when another instance holds the keep-alive lock. */
  ran: boolean
  refreshed: number
  failed: number
  skipped: number
}

const LOCK_NAME = 'token-keep-alive'
/** Idle registrations read per page. */
const BATCH = 200
/** Registrations refreshed at once within a page (each also waits for the upstream rate cap). */
export const KEEPALIVE_CONCURRENCY = 4

/** Refreshes idle delegated grants in the background, on one instance at a time. */
export class KeepAlive {
  readonly #deps: KeepAliveDeps
  #timer: NodeJS.Timeout | undefined
  #running: Promise<KeepAliveRun> | undefined
  #stopped = false

  constructor(deps: KeepAliveDeps) {
    this.#deps = deps
  }

  /** Runs a pass every `keepAliveIntervalMs` (never two at once); does nothing once stopped. */
  start(): void {
    if (this.#timer !== undefined || this.#stopped) return
    this.#timer = setInterval(() => {
      if (this.#running !== undefined) return
      this.#running = this.runOnce()
        .catch((error: unknown) => {
          this.#deps.logger.warn({ err: error }, 'keep-alive run failed; retrying on the next tick')
          return { ran: false, refreshed: 0, failed: 0, skipped: 0 }
        })
        .finally(() => {
          this.#running = undefined
        })
    }, this.#deps.config.tokens.keepAliveIntervalMs)
    this.#timer.unref()
  }

  /** Stops the timer and waits for a run in progress. */
  async stop(): Promise<void> {
    this.#stopped = true
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
    await this.#running
  }

  /** One pass: refreshes every idle delegated registration, a page at a time. */
  async runOnce(): Promise<KeepAliveRun> {
    const { config, store, logger, clock } = this.#deps
    const result: KeepAliveRun = { ran: false, refreshed: 0, failed: 0, skipped: 0 }
    const lockTtl = Math.max(60_000, config.tokens.responseDeadlineMs * 4)
    const handle = await store.locks.acquire(LOCK_NAME, lockTtl)
    if (handle === null) return result
    result.ran = true
    const renewal = setInterval(
      () => {
        store.locks.renew(handle, lockTtl).catch(() => {})
      },
      Math.floor(lockTtl / 3),
    )
    renewal.unref()
    try {
      const before = new Date(clock() - config.tokens.keepAliveIdleMs).toISOString()
      // Page through every idle registration: those refreshed leave the range, those that can't be
      // (waiting for consent, app gone, upstream failing) stay behind the cursor instead of filling
      // every page and starving the rest.
      // A registration refreshed during the pass moves ahead of the cursor; should it still look
      // idle (clocks apart), `visited` keeps the pass from taking it again.
      let after: IdlePosition | undefined
      const visited = new Set<string>()
      while (!this.#stopped) {
        const page = await store.registrations.listIdleDelegated(before, BATCH, after)
        if (page.length === 0) break
        after = page[page.length - 1]
        const ids = page.map(({ id }) => id).filter((id) => !visited.has(id))
        for (const id of ids) visited.add(id)
        // A few workers share the page: bounded concurrency, in page order.
        let next = 0
        const worker = async () => {
          while (!this.#stopped && next < ids.length) {
            const id = ids[next++] as string
            await this.#keepAlive(id, result)
          }
        }
        await Promise.all(Array.from({ length: Math.min(KEEPALIVE_CONCURRENCY, ids.length) }, worker))
      }
      if (visited.size > 0) logger.info({ ...result }, 'keep-alive pass done')
      return result
    } finally {
      clearInterval(renewal)
      await store.locks.release(handle).catch(() => {})
    }
  }

  async #keepAlive(id: string, result: KeepAliveRun): Promise<void> {
    const { config, store, issuer, scopes, logger, clock } = this.#deps
    const registration = await store.registrations.getMeta(id)
    if (registration === null || registration.status !== 'active' || registration.kind !== 'delegated') {
      result.skipped++
      return
    }
    const app = scopes.forApp(registration.app, registration.cloud)
    if (app === undefined) {
      result.skipped++
      logger.warn(
        { registrationId: id, app: registration.app, cloud: registration.cloud },
        'keep-alive skipped a registration whose app or cloud is no longer configured',
      )
      return
    }
    try {
      await issuer.issue({
        registration,
        app,
        scope: app.defaultScope,
        deadlineAt: clock() + config.tokens.responseDeadlineMs,
        force: true,
        priority: 'background',
      })
      result.refreshed++
    } catch (error) {
      result.failed++
      logger.warn(
        { registrationId: id, app: registration.app, code: (error as { code?: string }).code },
        'keep-alive refresh failed',
      )
    }
  }
}
