// The storage contract of notifications (webhooks): the outbox, endpoints and deliveries.
//
// The outbox: a state change that must be announced (a registration created, moved to
// `needs_consent`, renewed, revoked; an app throttled or recovered) writes an outbox entry in the
// SAME atomic step as the change itself, keyed by its subject (the registration, or the app and
// tenant), so no event is lost if the process dies right after. Subjects with entries are
// announced in one shared index BEFORE the change is written; a dispatcher walks that index, turns
// each entry into one delivery per subscribed endpoint (idempotent: a delivery is named by the
// message and the endpoint) and only then removes the entry.

/** What happened, as the outbox records it (the dispatcher builds the CloudEvent from it). */
export type OutboxKind =
  | 'registration.created'
  | 'registration.needs_consent'
  | 'registration.renewed'
  | 'registration.revoked'
  | 'upstream.throttled'
  | 'upstream.recovered'
  | 'app_credential.expiring'

/** One outbox entry: an event id (the message id of every delivery), when, and non-secret facts. */
export interface OutboxEntry {
  /** A random UUID; the CloudEvent id and the `webhook-id` header, the same on every retry. */
  readonly id: string
  readonly kind: OutboxKind
  /** ISO 8601: when the state changed. */
  readonly at: string
  /** The subject's non-secret fields at the change (registration metadata, or the app and tenant). */
  readonly facts: Readonly<Record<string, string>>
}

/** An operator's webhook endpoint; the secret is sealed at rest and opened only to sign. */
export interface WebhookEndpoint {
  /** `ep_` + random hex. */
  readonly id: string
  readonly url: string
  /** Event types delivered; empty = every type. */
  readonly events: readonly string[]
  /** ISO 8601 */
  readonly createdAt: string
  /** Who added it (`operator:<name>`). */
  readonly createdBy: string
}

/** Where a delivery stands. */
export type DeliveryStatus = 'pending' | 'delivered' | 'failed'

/** One message to one endpoint, with its attempts. */
export interface Delivery {
  /** The message id (= the event id). */
  readonly messageId: string
  readonly endpointId: string
  /** The CloudEvent type, e.g. `registration.needs_consent`. */
  readonly type: string
  /** The signed body: the CloudEvent JSON, the same bytes on every attempt. */
  readonly body: string
  readonly status: DeliveryStatus
  readonly attempts: number
  /** ISO 8601: when the message was created (retries stop `retryFor` after it). */
  readonly createdAt: string
  /** ISO 8601, pending only. */
  readonly nextAttemptAt?: string
  /** ISO 8601 of every attempt so far (the latest 20). */
  readonly attemptTimes: readonly string[]
  /** The last answer's HTTP status, when there was one. */
  readonly lastStatusCode?: number
  /** The last failure in words (timeout, refused address, redirect not followed …). */
  readonly lastError?: string
}

/** The outcome of one attempt, recorded by `finishAttempt`. */
export interface AttemptOutcome {
  readonly ok: boolean
  readonly at: string
  readonly statusCode?: number
  readonly error?: string
  /** Pending again at this time (epoch ms); absent with `ok` or when retries are exhausted. */
  readonly retryAt?: number
}

/** What an attempt leaves its delivery as: delivered, pending again (a retry is due), or failed. */
export function statusAfter(outcome: AttemptOutcome): DeliveryStatus {
  return outcome.ok ? 'delivered' : outcome.retryAt === undefined ? 'failed' : 'pending'
}

/** A claimed piece of work: the holder's lease token proves it. */
export interface Leased<T> {
  readonly item: T
  readonly lease: string
}

/** Notifications storage: outbox, endpoints (secrets sealed), deliveries with leases. */
export interface WebhookStore {
  /**
   * Announces that `subject` is about to get outbox entries; called BEFORE the atomic change that
   * writes them, so a crash in between leaves only an announcement with nothing behind it. The
   * subject is due at once, and its announcement time (where its grace starts) is now, whatever
   * it was: claimed, rescheduled or not announced.
   */
  announce(subject: string): Promise<void>
  /**
   * Subjects due now (announced, rescheduled by `finishSubject`, or whose lease lapsed), each
   * leased for `leaseMs` to this caller (another caller skips them meanwhile); at most `limit`.
   * The lease carries the subject's announcement time, which a claim never changes.
   */
  claimSubjects(limit: number, leaseMs: number): Promise<Array<Leased<string>>>
  /** The outbox entries of `subject`, oldest first. */
  readOutbox(subject: string): Promise<OutboxEntry[]>
  /**
   * Removes handled entries; then, only while `lease` holds (no announcement since the claim):
   * drops the subject when the outbox is empty and it was announced at least `graceMs` ago; due
   * again when the grace has passed when it is empty but announced later (a writer may still be
   * between its announcement and its write), so once more and then dropped; due again at once
   * when entries are left. The announcement time stays what it was.
   */
  finishSubject(subject: string, lease: string, handledIds: readonly string[], graceMs: number): Promise<void>
  /** Writes an outbox entry for a subject without a record of its own (throttle state, in its slot). */
  setUpstreamState(subject: string, throttled: boolean, entry: OutboxEntry): Promise<boolean>
  /**
   * Sets an app credential's expiry state (`state`: an opaque value, e.g. `expiring:<expiry ms>`)
   * and, when it changes and `entry` is given, writes `entry` to the subject's outbox in the same
   * atomic step: however many instances compare the same credential with the clock, one of them
   * writes each change. True when this call changed the state.
   */
  setCredentialExpiryState(subject: string, state: string, entry?: OutboxEntry): Promise<boolean>

  addEndpoint(endpoint: WebhookEndpoint, secret: string): Promise<void>
  listEndpoints(): Promise<WebhookEndpoint[]>
  getEndpoint(id: string): Promise<{ endpoint: WebhookEndpoint; secret: string } | null>
  /** Deletes the endpoint and stops its pending deliveries. False when there was none. */
  removeEndpoint(id: string): Promise<boolean>
  /**
   * Key rotation: re-seals every endpoint's signing secret that is not sealed under the key ring's
   * current key (only while it still holds the value read). Returns the ids re-sealed and the ids
   * whose secret could not be opened (sealed under a key no longer in the ring).
   */
  resealEndpointSecrets(): Promise<{ resealed: string[]; failed: string[] }>

  /** Creates the delivery unless it exists (a repeated fan-out changes nothing). True when created. */
  enqueue(delivery: Delivery): Promise<boolean>
  /** Pending deliveries due now, each leased for `leaseMs`; at most `limit`. */
  claimDue(now: number, limit: number, leaseMs: number): Promise<Array<Leased<Delivery>>>
  /** Records an attempt; ignored when the lease was lost (another instance took over). */
  finishAttempt(
    messageId: string,
    endpointId: string,
    lease: string,
    outcome: AttemptOutcome,
  ): Promise<boolean>
  /** An endpoint's deliveries, newest first (the latest `limit`). */
  listDeliveries(endpointId: string, limit: number): Promise<Delivery[]>
  /** Makes a delivery pending again now (same message id). False when unknown. */
  redeliver(messageId: string, endpointId: string, now: number): Promise<boolean>
  /** Deliveries by status, for metrics. */
  countPending(): Promise<number>
}
