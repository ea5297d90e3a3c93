// The one-time rebuild of the store's listing and tenant indexes for registrations written before
// they existed (an upgraded deployment): started when the app is ready, in the background, on one
// instance at a time (a lock), retried a minute later when Redis fails meanwhile. Until it is done
// the store answers counts, filters and tenants pages from the earlier release's indexes (or by
// scanning, for older data), so nothing waits for it.
import type { FastifyBaseLogger } from 'fastify'
import type { Store } from '../store/types.js'

const LOCK_NAME = 'registration-indexes-rebuild'
/** Long enough for 100 000 registrations on a slow Redis; renewed while the rebuild runs. */
const LOCK_TTL_MS = 120_000
const RETRY_MS = 60_000

/** Runs `store.registrations.ensureIndexes()` once per process, in the background. */
export class IndexRebuild {
  #timer: NodeJS.Timeout | undefined
  #running: Promise<void> | undefined
  #stopped = false

  constructor(private readonly deps: { store: Store; logger: FastifyBaseLogger }) {}

  /** Starts the first attempt (returns at once). */
  start(): void {
    if (this.#stopped || this.#running !== undefined) return
    this.#running = this.#attempt().finally(() => {
      this.#running = undefined
    })
  }

  /** Stops retrying and waits for an attempt in progress. */
  async stop(): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#timer)
    await this.#running
  }

  async #attempt(): Promise<void> {
    const { store, logger } = this.deps
    try {
      const handle = await store.locks.acquire(LOCK_NAME, LOCK_TTL_MS)
      // another instance is rebuilding: it sets the marker when done; this one reads by scanning
      if (handle === null) return
      const renewal = setInterval(() => {
        store.locks.renew(handle, LOCK_TTL_MS).catch(() => {})
      }, LOCK_TTL_MS / 3)
      renewal.unref()
      try {
        const result = await store.registrations.ensureIndexes()
        if (result.rebuilt) {
          logger.info({ registrations: result.registrations }, 'registration indexes rebuilt')
        }
      } finally {
        clearInterval(renewal)
        await store.locks.release(handle).catch(() => {})
      }
    } catch (error) {
      logger.warn({ err: error }, 'registration index rebuild failed; retrying in a minute')
      if (this.#stopped) return
      this.#timer = setTimeout(() => this.start(), RETRY_MS)
      this.#timer.unref()
    }
  }
}
