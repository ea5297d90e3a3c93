// Notifications in Redis (contract: webhook-types.ts). Key layout (P = prefix; see keys.ts):
//
//   P outbox:{enc(subject)}          HASH    event id → outbox entry JSON. A registration's subject
//                                            is its id, so this is the slot of `reg:{id}` and the
//                                            entry is written by the same Lua call as the change
//   P upstream:{enc(subject)}        STRING  '1' while an app is throttled in a tenant (same slot
//                                            as its outbox)
//   P{wh}:subjects                   ZSET    announced subjects, score = when to look (ms): the
//                                            announcement, else what a claim or finish set
//   P{wh}:announced                  HASH    subject → "<announced ms>:<score>": the announcement
//                                            time beside the score a claim or finish set. No field,
//                                            or one for another score (the previous release's form:
//                                            it never writes here): the score is the announcement.
//                                            A field that release's drop leaves goes with the
//                                            subject's next announce, or when the upgrade is
//                                            finished (pruneAnnouncedFields)
//   P{wh}:endpoints                  HASH    endpoint id → JSON (url, events, sealed secret …)
//   P{wh}:d:<message>:<endpoint>     HASH    one delivery (status, attempts, body, lease …);
//                                            expires 7 days after it is delivered or failed
//   P{wh}:due                        ZSET    pending deliveries, score = next attempt or lease end
//   P{wh}:by-ep:<endpoint>           ZSET    an endpoint's latest deliveries, score = created (ms)
//
// Why two steps (announce, then the atomic change): on a Cluster the outbox lives in its
// subject's slot and the shared index in `{wh}`'s, so they can't be written atomically together.
// The announcement goes first: a crash before the change leaves an announcement the dispatcher
// drops after the grace period; a crash after it leaves an entry that is already announced.
// A handled subject is dropped once its announcement is older than the grace, so the grace runs
// from the real announcement, never from a later claim or reschedule (the announced hash).
import { randomBytes } from 'node:crypto'
import { type KeyRing, KeyRing as KeyRingClass } from '../../crypto/envelope.js'
import type { RedisClient } from '../redis-connection.js'
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
import type { RedisKeys } from './keys.js'
import { logicalFacts } from './record-layout.js'
import { runScript } from './scripts.js'
import {
  ACK_OUTBOX,
  ANNOUNCE_SUBJECT,
  CLAIM_DUE,
  CLAIM_SUBJECTS,
  ENQUEUE_DELIVERY,
  FINISH_ATTEMPT,
  FINISH_SUBJECT,
  PRUNE_ANNOUNCED,
  REDELIVER,
  RESEAL_ENDPOINT,
  SET_CREDENTIAL_EXPIRY,
  SET_UPSTREAM_STATE,
} from './webhook-scripts.js'

/** Finished deliveries stay readable this long (console, CLI). */
const FINISHED_KEEP_MS = 7 * 86_400_000
/** Deliveries listed per endpoint. */
const KEEP_PER_ENDPOINT = 200

interface StoredEndpoint extends WebhookEndpoint {
  sealedSecret: string
}

function member(messageId: string, endpointId: string): string {
  return `${messageId}:${endpointId}`
}

/** A delivery hash → Delivery (missing fields read as absent). */
export function decodeDelivery(hash: Record<string, string>): Delivery | undefined {
  if (hash.messageId === undefined || hash.endpointId === undefined) return undefined
  return {
    messageId: hash.messageId,
    endpointId: hash.endpointId,
    type: hash.type ?? '',
    body: hash.body ?? '',
    status: (hash.status as Delivery['status']) ?? 'pending',
    attempts: Number(hash.attempts ?? 0),
    createdAt: hash.createdAt ?? '',
    attemptTimes: JSON.parse(hash.attemptTimes ?? '[]') as string[],
    ...(hash.nextAttemptAt === undefined ? {} : { nextAttemptAt: hash.nextAttemptAt }),
    ...(hash.lastStatusCode === undefined ? {} : { lastStatusCode: Number(hash.lastStatusCode) }),
    ...(hash.lastError === undefined ? {} : { lastError: hash.lastError }),
  }
}

/** `WebhookStore` on Redis. */
export class RedisWebhooks implements WebhookStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly keyRing: KeyRing,
    private readonly clock: () => number,
  ) {}

  async announce(subject: string): Promise<void> {
    await runScript(
      this.redis,
      ANNOUNCE_SUBJECT,
      [this.keys.whSubjects, this.keys.whAnnounced],
      [subject, Math.trunc(this.clock())],
    )
  }

  async claimSubjects(limit: number, leaseMs: number): Promise<Array<Leased<string>>> {
    const now = Math.trunc(this.clock())
    const reply = (await runScript(
      this.redis,
      CLAIM_SUBJECTS,
      [this.keys.whSubjects, this.keys.whAnnounced],
      [now, limit, leaseMs],
    )) as string[]
    const out: Array<Leased<string>> = []
    for (let i = 0; i < reply.length; i += 2) {
      out.push({ item: reply[i] as string, lease: `${now + leaseMs}:${reply[i + 1]}` })
    }
    return out
  }

  async readOutbox(subject: string): Promise<OutboxEntry[]> {
    const values = await this.redis.hvals(this.keys.outbox(subject))
    return values
      .map((value) => {
        const entry = JSON.parse(value) as OutboxEntry
        // a registration's facts as the update script copied them from the stored record
        return { ...entry, facts: logicalFacts(entry.facts) }
      })
      .sort((a, b) => a.at.localeCompare(b.at) || a.id.localeCompare(b.id))
  }

  async finishSubject(
    subject: string,
    lease: string,
    handledIds: readonly string[],
    graceMs: number,
  ): Promise<void> {
    const left = (await runScript(
      this.redis,
      ACK_OUTBOX,
      [this.keys.outbox(subject)],
      [...handledIds],
    )) as number
    const [leaseScore, announced] = lease.split(':')
    await runScript(
      this.redis,
      FINISH_SUBJECT,
      [this.keys.whSubjects, this.keys.whAnnounced],
      [
        subject,
        leaseScore ?? '',
        announced ?? '0',
        left === 0 ? '1' : '0',
        Math.trunc(this.clock()),
        graceMs,
      ],
    )
  }

  async setUpstreamState(subject: string, throttled: boolean, entry: OutboxEntry): Promise<boolean> {
    // cheap read first: a state that doesn't change needs no announcement
    const current = (await this.redis.exists(this.keys.upstreamState(subject))) === 1
    if (current === throttled) return false
    await this.announce(subject)
    const changed = await runScript(
      this.redis,
      SET_UPSTREAM_STATE,
      [this.keys.upstreamState(subject), this.keys.outbox(subject)],
      [throttled ? '1' : '0', entry.id, JSON.stringify(entry)],
    )
    return changed === 1
  }

  async setCredentialExpiryState(subject: string, state: string, entry?: OutboxEntry): Promise<boolean> {
    const key = this.keys.credentialExpiry(subject)
    // cheap read first: an unchanged state needs no announcement
    if ((await this.redis.get(key)) === state) return false
    if (entry !== undefined) await this.announce(subject)
    const changed = await runScript(
      this.redis,
      SET_CREDENTIAL_EXPIRY,
      [key, this.keys.outbox(subject)],
      [state, entry?.id ?? '', entry === undefined ? '' : JSON.stringify(entry)],
    )
    return changed === 1
  }

  async addEndpoint(endpoint: WebhookEndpoint, secret: string): Promise<void> {
    const stored: StoredEndpoint = {
      ...endpoint,
      sealedSecret: sealWebhookSecret(this.keyRing, endpoint.id, secret),
    }
    await this.redis.hset(this.keys.whEndpoints, endpoint.id, JSON.stringify(stored))
  }

  async listEndpoints(): Promise<WebhookEndpoint[]> {
    const all = await this.redis.hvals(this.keys.whEndpoints)
    return all
      .map((raw) => {
        const { sealedSecret: _sealed, ...endpoint } = JSON.parse(raw) as StoredEndpoint
        return endpoint
      })
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id))
  }

  async getEndpoint(id: string): Promise<{ endpoint: WebhookEndpoint; secret: string } | null> {
    const raw = await this.redis.hget(this.keys.whEndpoints, id)
    if (raw === null) return null
    const { sealedSecret, ...endpoint } = JSON.parse(raw) as StoredEndpoint
    return { endpoint, secret: openWebhookSecret(this.keyRing, id, sealedSecret) }
  }

  async resealEndpointSecrets(): Promise<{ resealed: string[]; failed: string[] }> {
    const resealed: string[] = []
    const failed: string[] = []
    for (const [id, raw] of Object.entries(await this.redis.hgetall(this.keys.whEndpoints))) {
      const stored = JSON.parse(raw) as StoredEndpoint
      if (KeyRingClass.keyIdOf(stored.sealedSecret) === this.keyRing.current.id) continue
      let secret: string
      try {
        secret = openWebhookSecret(this.keyRing, id, stored.sealedSecret)
      } catch {
        failed.push(id)
        continue
      }
      const next = JSON.stringify({ ...stored, sealedSecret: sealWebhookSecret(this.keyRing, id, secret) })
      // 0: removed or replaced meanwhile (a new endpoint is sealed under the current key anyway)
      if ((await runScript(this.redis, RESEAL_ENDPOINT, [this.keys.whEndpoints], [id, raw, next])) === 1)
        resealed.push(id)
    }
    return { resealed, failed }
  }

  async removeEndpoint(id: string): Promise<boolean> {
    const removed = await this.redis.hdel(this.keys.whEndpoints, id)
    const members = await this.redis.zrange(this.keys.whByEndpoint(id), '0', '-1')
    if (members.length > 0) {
      await this.redis.zrem(this.keys.whDue, ...members)
      await this.redis.del(...members.map((m) => this.keys.whDelivery(m)))
    }
    await this.redis.del(this.keys.whByEndpoint(id))
    return removed === 1
  }

  async enqueue(delivery: Delivery): Promise<boolean> {
    const m = member(delivery.messageId, delivery.endpointId)
    const createdMs = Date.parse(delivery.createdAt)
    const dueMs = delivery.nextAttemptAt === undefined ? createdMs : Date.parse(delivery.nextAttemptAt)
    const fields: string[] = [
      'messageId',
      delivery.messageId,
      'endpointId',
      delivery.endpointId,
      'type',
      delivery.type,
      'body',
      delivery.body,
      'status',
      delivery.status,
      'attempts',
      String(delivery.attempts),
      'createdAt',
      delivery.createdAt,
      'attemptTimes',
      JSON.stringify(delivery.attemptTimes),
    ]
    if (delivery.nextAttemptAt !== undefined) fields.push('nextAttemptAt', delivery.nextAttemptAt)
    const created = await runScript(
      this.redis,
      ENQUEUE_DELIVERY,
      [this.keys.whDelivery(m), this.keys.whDue, this.keys.whByEndpoint(delivery.endpointId)],
      [m, createdMs, dueMs, KEEP_PER_ENDPOINT, ...fields] as Array<string | number>,
    )
    return created === 1
  }

  async claimDue(now: number, limit: number, leaseMs: number): Promise<Array<Leased<Delivery>>> {
    const token = randomBytes(12).toString('hex')
    const reply = (await runScript(
      this.redis,
      CLAIM_DUE,
      [this.keys.whDue],
      [Math.trunc(now), limit, leaseMs, this.keys.whDelivery(''), `${token}:`],
    )) as string[]
    const out: Array<Leased<Delivery>> = []
    for (let i = 0; i < reply.length; i += 2) {
      const delivery = decodeDelivery(await this.redis.hgetall(this.keys.whDelivery(reply[i] as string)))
      if (delivery !== undefined) out.push({ item: delivery, lease: reply[i + 1] as string })
    }
    return out
  }

  async finishAttempt(
    messageId: string,
    endpointId: string,
    lease: string,
    outcome: AttemptOutcome,
  ): Promise<boolean> {
    const m = member(messageId, endpointId)
    const status = statusAfter(outcome)
    const fields: string[] = []
    if (outcome.statusCode !== undefined) fields.push('lastStatusCode', String(outcome.statusCode))
    if (outcome.error !== undefined) fields.push('lastError', outcome.error)
    if (status === 'pending') fields.push('nextAttemptAt', new Date(outcome.retryAt as number).toISOString())
    const done = await runScript(
      this.redis,
      FINISH_ATTEMPT,
      [this.keys.whDelivery(m), this.keys.whDue],
      [
        m,
        lease,
        status,
        status === 'pending' ? Math.trunc(outcome.retryAt as number) : '',
        FINISHED_KEEP_MS,
        outcome.at,
        fields.length / 2,
        ...fields,
      ],
    )
    return done === 1
  }

  async listDeliveries(endpointId: string, limit: number): Promise<Delivery[]> {
    const members = await this.redis.zrevrange(this.keys.whByEndpoint(endpointId), 0, Math.max(0, limit - 1))
    const hashes = await Promise.all(members.map((m) => this.redis.hgetall(this.keys.whDelivery(m))))
    return hashes.map(decodeDelivery).filter((d): d is Delivery => d !== undefined)
  }

  async redeliver(messageId: string, endpointId: string, now: number): Promise<boolean> {
    const m = member(messageId, endpointId)
    const done = await runScript(
      this.redis,
      REDELIVER,
      [this.keys.whDelivery(m), this.keys.whDue],
      [m, Math.trunc(now), new Date(now).toISOString()],
    )
    return done === 1
  }

  async countPending(): Promise<number> {
    return this.redis.zcard(this.keys.whDue)
  }
}

/**
 * Removes the `{wh}:announced` fields of subjects no longer announced — left by instances of the
 * previous release, which drop subjects without knowing the hash — in one pass; how many. Run when
 * the rolling upgrade is finished (store-upgrade.ts): no instance leaves such fields after that.
 */
export async function pruneAnnouncedFields(redis: RedisClient, keys: RedisKeys): Promise<number> {
  let removed = 0
  let cursor = '0'
  do {
    const [next, count] = (await runScript(
      redis,
      PRUNE_ANNOUNCED,
      [keys.whSubjects, keys.whAnnounced],
      [cursor],
    )) as [string, number]
    cursor = next
    removed += Number(count)
  } while (cursor !== '0')
  return removed
}
