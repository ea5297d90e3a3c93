// Notifications in memory (contract: webhook-types.ts): the same semantics as the Redis store in
// one process. The outbox is written synchronously with the registration change (registrations.ts
// calls `record`), so nothing runs between the change and its entry; `record` announces the
// subject anew like a Redis writer does, so the entry is claimable at once.
import { KeyRing } from '../../crypto/envelope.js'
import { openWebhookSecret, sealWebhookSecret } from '../sealing.js'
import {
  type AttemptOutcome,
  type Delivery,
  type Leased,
  type OutboxEntry,
  statusAfter,
  type WebhookEndpoint,
  type WebhookStore,
} from '../webhook-types.js'

const KEEP_PER_ENDPOINT = 200

/** An announced subject: when to claim it next, and when it was last announced (its grace's start). */
interface HeldSubject {
  due: number
  announced: number
}

interface HeldDelivery {
  delivery: Delivery
  due?: number
  lease?: string
}

/** `WebhookStore` in memory. */
export class MemoryWebhooks implements WebhookStore {
  readonly #outboxes = new Map<string, Map<string, OutboxEntry>>()
  readonly #subjects = new Map<string, HeldSubject>()
  readonly #upstream = new Set<string>()
  /** App credential expiry states by subject (see setCredentialExpiryState). */
  readonly #credentialExpiry = new Map<string, string>()
  readonly #endpoints = new Map<string, { endpoint: WebhookEndpoint; sealed: string }>()
  readonly #deliveries = new Map<string, HeldDelivery>()
  #leases = 0

  constructor(
    private readonly keyRing: KeyRing,
    private readonly clock: () => number,
  ) {}

  /** Called by the registrations store in the same step as the change. */
  record(subject: string, entry: OutboxEntry): void {
    let outbox = this.#outboxes.get(subject)
    if (outbox === undefined) {
      outbox = new Map()
      this.#outboxes.set(subject, outbox)
    }
    outbox.set(entry.id, entry)
    this.#announceNow(subject)
  }

  async announce(subject: string): Promise<void> {
    this.#announceNow(subject)
  }

  #announceNow(subject: string): void {
    const now = this.clock()
    this.#subjects.set(subject, { due: now, announced: now })
  }

  async claimSubjects(limit: number, leaseMs: number): Promise<Array<Leased<string>>> {
    const now = this.clock()
    const out: Array<Leased<string>> = []
    for (const [subject, held] of this.#subjects) {
      if (out.length >= limit) break
      if (held.due > now) continue
      held.due = now + leaseMs
      out.push({ item: subject, lease: `${held.due}:${held.announced}` })
    }
    return out
  }

  async readOutbox(subject: string): Promise<OutboxEntry[]> {
    return [...(this.#outboxes.get(subject)?.values() ?? [])].sort(
      (a, b) => a.at.localeCompare(b.at) || a.id.localeCompare(b.id),
    )
  }

  async finishSubject(
    subject: string,
    lease: string,
    handledIds: readonly string[],
    graceMs: number,
  ): Promise<void> {
    const outbox = this.#outboxes.get(subject)
    for (const id of handledIds) outbox?.delete(id)
    const empty = outbox === undefined || outbox.size === 0
    if (empty) this.#outboxes.delete(subject)
    const held = this.#subjects.get(subject)
    // only while our lease holds: a writer that announced since the claim made the subject due anew
    if (held === undefined || `${held.due}:${held.announced}` !== lease) return
    const now = this.clock()
    if (empty && held.announced <= now - graceMs) this.#subjects.delete(subject)
    // once more after the grace (a writer may be between its announcement and its write); at once
    // for entries left; the announcement time stays, so the next finish can drop it
    else held.due = empty ? held.announced + graceMs : now
  }

  async setUpstreamState(subject: string, throttled: boolean, entry: OutboxEntry): Promise<boolean> {
    if (this.#upstream.has(subject) === throttled) return false
    if (throttled) this.#upstream.add(subject)
    else this.#upstream.delete(subject)
    this.record(subject, entry)
    return true
  }

  async setCredentialExpiryState(subject: string, state: string, entry?: OutboxEntry): Promise<boolean> {
    if (this.#credentialExpiry.get(subject) === state) return false
    this.#credentialExpiry.set(subject, state)
    if (entry !== undefined) this.record(subject, entry)
    return true
  }

  async addEndpoint(endpoint: WebhookEndpoint, secret: string): Promise<void> {
    this.#endpoints.set(endpoint.id, {
      endpoint,
      sealed: sealWebhookSecret(this.keyRing, endpoint.id, secret),
    })
  }

  async listEndpoints(): Promise<WebhookEndpoint[]> {
    return [...this.#endpoints.values()]
      .map((held) => held.endpoint)
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id))
  }

  async getEndpoint(id: string): Promise<{ endpoint: WebhookEndpoint; secret: string } | null> {
    const held = this.#endpoints.get(id)
    if (held === undefined) return null
    return { endpoint: held.endpoint, secret: openWebhookSecret(this.keyRing, id, held.sealed) }
  }

  async resealEndpointSecrets(): Promise<{ resealed: string[]; failed: string[] }> {
    const resealed: string[] = []
    const failed: string[] = []
    for (const [id, held] of this.#endpoints) {
      if (KeyRing.keyIdOf(held.sealed) === this.keyRing.current.id) continue
      try {
        const secret = openWebhookSecret(this.keyRing, id, held.sealed)
        this.#endpoints.set(id, { ...held, sealed: sealWebhookSecret(this.keyRing, id, secret) })
        resealed.push(id)
      } catch {
        failed.push(id)
      }
    }
    return { resealed, failed }
  }

  async removeEndpoint(id: string): Promise<boolean> {
    for (const [key, held] of this.#deliveries) {
      if (held.delivery.endpointId === id) this.#deliveries.delete(key)
    }
    return this.#endpoints.delete(id)
  }

  async enqueue(delivery: Delivery): Promise<boolean> {
    const key = `${delivery.messageId}:${delivery.endpointId}`
    if (this.#deliveries.has(key)) return false
    const due = Date.parse(delivery.nextAttemptAt ?? delivery.createdAt)
    this.#deliveries.set(key, { delivery, due })
    const mine = [...this.#deliveries.entries()].filter(
      ([, held]) => held.delivery.endpointId === delivery.endpointId,
    )
    if (mine.length > KEEP_PER_ENDPOINT) {
      mine.sort(([, a], [, b]) => a.delivery.createdAt.localeCompare(b.delivery.createdAt))
      for (const [old] of mine.slice(0, mine.length - KEEP_PER_ENDPOINT)) this.#deliveries.delete(old)
    }
    return true
  }

  async claimDue(now: number, limit: number, leaseMs: number): Promise<Array<Leased<Delivery>>> {
    const out: Array<Leased<Delivery>> = []
    for (const held of this.#deliveries.values()) {
      if (out.length >= limit) break
      if (held.delivery.status !== 'pending' || held.due === undefined || held.due > now) continue
      held.due = now + leaseMs
      held.lease = `lease-${++this.#leases}`
      out.push({ item: held.delivery, lease: held.lease })
    }
    return out
  }

  async finishAttempt(
    messageId: string,
    endpointId: string,
    lease: string,
    outcome: AttemptOutcome,
  ): Promise<boolean> {
    const held = this.#deliveries.get(`${messageId}:${endpointId}`)
    if (held === undefined || held.lease !== lease) return false
    const status = statusAfter(outcome)
    const previous = held.delivery
    const { nextAttemptAt: _n, lastStatusCode: _c, lastError: _e, ...kept } = previous
    held.delivery = {
      ...kept,
      status,
      attempts: previous.attempts + 1,
      attemptTimes: [...previous.attemptTimes, outcome.at].slice(-20),
      ...(outcome.statusCode === undefined ? {} : { lastStatusCode: outcome.statusCode }),
      ...(outcome.error === undefined ? {} : { lastError: outcome.error }),
      ...(status === 'pending' ? { nextAttemptAt: new Date(outcome.retryAt as number).toISOString() } : {}),
    }
    delete held.lease
    if (status === 'pending') held.due = outcome.retryAt as number
    else delete held.due
    return true
  }

  async listDeliveries(endpointId: string, limit: number): Promise<Delivery[]> {
    return [...this.#deliveries.values()]
      .map((held) => held.delivery)
      .filter((delivery) => delivery.endpointId === endpointId)
      .sort((a, b) => b.createdAt.localeCompare(a.createdAt))
      .slice(0, limit)
  }

  async redeliver(messageId: string, endpointId: string, now: number): Promise<boolean> {
    const held = this.#deliveries.get(`${messageId}:${endpointId}`)
    if (held === undefined) return false
    const at = new Date(now).toISOString()
    held.delivery = { ...held.delivery, status: 'pending', nextAttemptAt: at, createdAt: at }
    held.due = now
    delete held.lease
    return true
  }

  async countPending(): Promise<number> {
    let n = 0
    for (const held of this.#deliveries.values()) if (held.delivery.status === 'pending') n++
    return n
  }
}
