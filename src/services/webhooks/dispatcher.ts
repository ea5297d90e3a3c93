// The webhook dispatcher, one per instance, started and stopped with the app. Every poll it
//   1. fans out: claims announced outbox subjects (a lease, so one instance at a time), turns each
//      outbox entry into a CloudEvent and one delivery per subscribed endpoint (idempotent: a
//      delivery is named by message and endpoint), then removes the entries;
//   2. delivers: claims due deliveries (a lease per delivery: one instance attempts it) and posts
//      each, signed per Standard Webhooks, without waiting for the others — a slow or huge answer
//      holds one slot, never the poll.
// A failed attempt is retried with exponential backoff and jitter until `retryForMs` after the
// message was created, then marked failed. Retries and redeliveries keep the message id.
import { randomBytes } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import { Webhook } from 'standardwebhooks'
import type { Config } from '../../config.js'
import type { Metrics } from '../../metrics.js'
import type { Store } from '../../store/types.js'
import type { Delivery, Leased, WebhookEndpoint } from '../../store/webhook-types.js'
import { eventBody, toCloudEvent } from './events.js'
import { postOnce } from './http-post.js'

/** How long a subject announced without an outbox entry is kept (a writer between its two steps). */
const ANNOUNCE_GRACE_MS = 30_000
/** Deliveries in flight per instance. */
const CONCURRENCY = 16
/** Subjects fanned out per poll. */
const SUBJECTS_PER_POLL = 100

/** What the dispatcher needs. */
export interface DispatcherDeps {
  readonly config: Config
  readonly store: Store
  readonly metrics: Metrics
  readonly clock: () => number
  readonly log: FastifyBaseLogger
}

/** A new endpoint secret: `whsec_` + base64 of 32 random bytes (the Standard Webhooks format). */
export function newEndpointSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`
}

/** The delay before retry number `attempt` (1-based): base·2^(attempt−1), capped, with jitter. */
export function retryDelayMs(attempt: number, baseMs: number, maxMs: number, random = Math.random): number {
  const exponential = Math.min(maxMs, baseMs * 2 ** Math.min(30, attempt - 1))
  // "equal jitter": at least half the delay, so retries never bunch up near zero
  return Math.round(exponential / 2 + (random() * exponential) / 2)
}

/** Whether `endpoint` wants events of `type`. */
export function subscribes(endpoint: WebhookEndpoint, type: string): boolean {
  return endpoint.events.length === 0 || endpoint.events.includes(type)
}

/** The per-instance loop: fan-out and delivery (see the header). */
export class WebhookDispatcher {
  readonly #deps: DispatcherDeps
  #timer: NodeJS.Timeout | undefined
  #running: Promise<void> | undefined
  #stopped = true
  readonly #inFlight = new Set<Promise<void>>()

  constructor(deps: DispatcherDeps) {
    this.#deps = deps
  }

  start(): void {
    if (!this.#stopped) return
    this.#stopped = false
    this.#schedule(0)
  }

  /** Stops polling and waits for the attempts in flight (each bounded by the timeout). */
  async stop(): Promise<void> {
    this.#stopped = true
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    await this.#running
    await Promise.allSettled([...this.#inFlight])
  }

  #schedule(ms: number): void {
    if (this.#stopped) return
    this.#timer = setTimeout(() => {
      this.#running = this.pollOnce()
        .catch((error: unknown) => this.#deps.log.warn({ err: error }, 'webhook dispatch poll failed'))
        .finally(() => this.#schedule(this.#deps.config.webhooks.pollIntervalMs))
    }, ms)
    this.#timer.unref()
  }

  /** One poll: fan out announced outbox entries, then start the due deliveries. */
  async pollOnce(): Promise<void> {
    await this.fanOut()
    await this.deliverDue()
  }

  /** Turns outbox entries into deliveries; returns how many deliveries it created. */
  async fanOut(): Promise<number> {
    const { store, config, log } = this.#deps
    const subjects = await store.webhooks.claimSubjects(SUBJECTS_PER_POLL, config.webhooks.leaseMs)
    if (subjects.length === 0) return 0
    const endpoints = await store.webhooks.listEndpoints()
    let created = 0
    for (const { item: subject, lease } of subjects) {
      const entries = await store.webhooks.readOutbox(subject)
      for (const entry of entries) {
        const event = toCloudEvent(config, entry)
        const body = eventBody(event)
        for (const endpoint of endpoints) {
          if (!subscribes(endpoint, entry.kind)) continue
          const fresh = await store.webhooks.enqueue({
            messageId: entry.id,
            endpointId: endpoint.id,
            type: entry.kind,
            body,
            status: 'pending',
            attempts: 0,
            createdAt: entry.at,
            nextAttemptAt: new Date(this.#deps.clock()).toISOString(),
            attemptTimes: [],
          })
          if (fresh) created++
        }
        log.info({ eventId: entry.id, type: entry.kind, subject }, 'webhook event queued')
      }
      await store.webhooks.finishSubject(
        subject,
        lease,
        entries.map((e) => e.id),
        ANNOUNCE_GRACE_MS,
      )
    }
    return created
  }

  /** Claims due deliveries up to the free slots and starts each (not awaited: see the header). */
  async deliverDue(): Promise<void> {
    const free = CONCURRENCY - this.#inFlight.size
    if (free <= 0) return
    const { store, config, clock } = this.#deps
    const claimed = await store.webhooks.claimDue(clock(), free, config.webhooks.leaseMs)
    for (const leased of claimed) {
      // a store failure mid-attempt leaves the lease to lapse: the delivery comes back then
      const attempt = this.attempt(leased)
        .catch((error: unknown) =>
          this.#deps.log.warn(
            { err: error, messageId: leased.item.messageId, endpointId: leased.item.endpointId },
            'webhook attempt could not run; retried when its lease lapses',
          ),
        )
        .finally(() => this.#inFlight.delete(attempt))
      this.#inFlight.add(attempt)
    }
  }

  /** Waits for the attempts in flight (tests). */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.#inFlight])
  }

  /** One attempt of one leased delivery; records the outcome under the lease. */
  async attempt({ item: delivery, lease }: Leased<Delivery>): Promise<void> {
    const { store, config, clock, metrics, log } = this.#deps
    const found = await store.webhooks.getEndpoint(delivery.endpointId)
    const at = new Date(clock()).toISOString()
    if (found === null) {
      await store.webhooks.finishAttempt(delivery.messageId, delivery.endpointId, lease, {
        ok: false,
        at,
        error: 'endpoint removed',
      })
      return
    }
    const signer = new Webhook(found.secret)
    const timestamp = new Date(clock())
    const headers = {
      'webhook-id': delivery.messageId,
      'webhook-timestamp': String(Math.floor(timestamp.getTime() / 1000)),
      'webhook-signature': signer.sign(delivery.messageId, timestamp, delivery.body),
    }
    const outcome = await postOnce(found.endpoint.url, headers, delivery.body, {
      timeoutMs: config.webhooks.timeoutMs,
      maxResponseBytes: config.webhooks.maxResponseBytes,
      allowPrivateAddresses: config.webhooks.allowPrivateAddresses,
    })
    const now = clock()
    const attempts = delivery.attempts + 1
    const expired = now - Date.parse(delivery.createdAt) >= config.webhooks.retryForMs
    const retryAt =
      outcome.ok || expired
        ? undefined
        : now + retryDelayMs(attempts, config.webhooks.retryBaseMs, config.webhooks.retryMaxIntervalMs)
    const recorded = await store.webhooks.finishAttempt(delivery.messageId, delivery.endpointId, lease, {
      ok: outcome.ok,
      at,
      ...(outcome.statusCode === undefined ? {} : { statusCode: outcome.statusCode }),
      ...(outcome.error === undefined ? {} : { error: outcome.error }),
      ...(retryAt === undefined ? {} : { retryAt }),
    })
    const result = outcome.ok ? 'delivered' : retryAt === undefined ? 'failed' : 'retry'
    metrics.webhookDeliveries.inc({ type: delivery.type, outcome: result })
    const context = {
      messageId: delivery.messageId,
      endpointId: delivery.endpointId,
      type: delivery.type,
      attempts,
      statusCode: outcome.statusCode,
      leaseLost: !recorded,
    }
    if (outcome.ok) log.info(context, 'webhook delivered')
    else if (retryAt === undefined)
      log.warn({ ...context, error: outcome.error }, 'webhook delivery failed for good')
    else
      log.info(
        { ...context, error: outcome.error, retryAt: new Date(retryAt).toISOString() },
        'webhook attempt failed; will retry',
      )
  }
}
