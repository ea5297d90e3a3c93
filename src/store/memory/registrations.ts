// Registrations in memory: the same record hashes as Redis (registration-hash.ts, secrets sealed),
// an ordered index for listings, the delegated uniqueness map and the idle index; admit's replay
// markers and per-registration windows expire like Redis keys.
import { KeyRing } from '../../crypto/envelope.js'
import { BUCKETED_IDLE_ORDER, compareIdleKeys, type IdleSortKey, idleSortKey } from '../idle-order.js'
import {
  clampLimit,
  comparePositions,
  decodeCursor,
  decodeTenantCursor,
  encodeCursor,
  encodeTenantCursor,
  type IndexPosition,
  matchesQuery,
} from '../pagination.js'
import {
  createdEntry,
  decodeMeta,
  decodeRegistration,
  decodeStored,
  encodeNewRegistration,
  encodeUpdate,
  encodeUsage,
  type RegistrationHash,
  resealedFacts,
  transitionEntry,
  uniquenessField,
} from '../registration-hash.js'
import { openSecret, SECRET_FIELDS, sealSecret } from '../sealing.js'
import { revokedIsFinal } from '../store-facts.js'
import { foldTenantCounts } from '../tenant-counts.js'
import type {
  AdmitRequest,
  AdmitResult,
  CreateResult,
  IdleOrder,
  IdlePosition,
  IndexRebuild,
  RateLimitResult,
  Registration,
  RegistrationPage,
  RegistrationPatch,
  RegistrationQuery,
  RegistrationSecrets,
  RegistrationStatus,
  RegistrationStore,
  RegistrationUsage,
  ResealOutcome,
  SecretsPatch,
  StoredRegistration,
  TenantCounts,
  TenantPage,
  TenantQuery,
  UpgradeFinish,
  UpgradeState,
} from '../types.js'
import { admitArguments, isoToMs, validateNewRegistration } from '../validation.js'
import type { OutboxEntry } from '../webhook-types.js'
import { ExpiringMap, hitWindow } from './expiring-map.js'
import type { MemoryRateLimiter } from './rate-limiter.js'

/** Index of the first position strictly after `after` in a sorted array. */
function firstAfter(sorted: readonly IndexPosition[], after: IndexPosition | undefined): number {
  if (after === undefined) return 0
  let low = 0
  let high = sorted.length
  while (low < high) {
    const mid = (low + high) >>> 1
    if (comparePositions(sorted[mid]!, after) <= 0) low = mid + 1
    else high = mid
  }
  return low
}

/** `RegistrationStore` in memory. */
export class MemoryRegistrations implements RegistrationStore {
  readonly #records = new Map<string, RegistrationHash>()
  /** Every registration by (createdAt, id). */
  readonly #order: IndexPosition[] = []
  /** Delegated uniqueness field → id. */
  readonly #delegated = new Map<string, string>()
  /** Delegated non-revoked id → last refresh (or creation), ms. */
  /** Idle index: each entry's sort key (its bucket hashed once, at creation). */
  readonly #idle = new Map<string, IdleSortKey>()
  readonly #tenants = new Set<string>()
  /** App → tenant ids with a registration of it. */
  readonly #appTenants = new Map<string, Set<string>>()
  /** Tenant → its registrations counted by `app\ncloud\nstatus`, and each app's last consent (ms). */
  readonly #summaries = new Map<string, { counts: Map<string, number>; consents: Map<string, number> }>()
  /** Registrations by status, changed with every create and status change. */
  readonly #counts: Record<RegistrationStatus, number> = { active: 0, needs_consent: 0, revoked: 0 }
  /** admit: replay markers (`id\nmarker`) and per-registration windows (id → count). */
  readonly seen: ExpiringMap<true>
  readonly windows: ExpiringMap<number>

  constructor(
    private readonly keyRing: KeyRing,
    private readonly clock: () => number,
    /** The store's shared limiter: admit's `client` key counts where `rateLimiter.hit` would. */
    private readonly rateLimiter: MemoryRateLimiter,
    /** The notifications outbox, written in the same step as a creation or status change. */
    private readonly outbox: { record(subject: string, entry: OutboxEntry): void },
  ) {
    this.seen = new ExpiringMap(clock)
    this.windows = new ExpiringMap(clock)
  }

  async create(input: Omit<Registration, 'version'>, secrets: RegistrationSecrets): Promise<CreateResult> {
    validateNewRegistration(input, secrets)
    const id = input.id
    if (this.#records.has(id)) throw new Error(`registration ${id} already exists`)
    const hash = encodeNewRegistration(this.keyRing, input, secrets)
    const field = input.status === 'revoked' ? undefined : uniquenessField(input)
    if (field !== undefined) {
      const existingId = this.#delegated.get(field)
      if (existingId !== undefined) return { created: false, existingId }
      this.#delegated.set(field, id)
    }
    const score = isoToMs(input.createdAt, 'registration.createdAt')
    this.#records.set(id, hash)
    this.outbox.record(id, createdEntry(hash, new Date(this.clock()).toISOString()))
    const position = { score, id }
    this.#order.splice(firstAfter(this.#order, position), 0, position)
    this.#tenants.add(input.tenantId)
    const appTenants = this.#appTenants.get(input.app) ?? new Set<string>()
    appTenants.add(input.tenantId)
    this.#appTenants.set(input.app, appTenants)
    this.#counts[input.status] += 1
    this.#count(input, input.status, 1, input.consentedAt)
    if (field !== undefined) this.#idle.set(id, idleSortKey({ id, score }))
    return { created: true, registration: decodeRegistration(hash) }
  }

  async get(id: string): Promise<StoredRegistration | null> {
    const hash = this.#records.get(id)
    return hash === undefined ? null : decodeStored(this.keyRing, hash)
  }

  async getMeta(id: string): Promise<(Registration & RegistrationUsage) | null> {
    const hash = this.#records.get(id)
    return hash === undefined ? null : decodeMeta(hash)
  }

  async update(
    id: string,
    expectedVersion: number,
    patch: RegistrationPatch,
    secrets?: SecretsPatch,
  ): Promise<Registration | null> {
    const changes = encodeUpdate(this.keyRing, id, patch, secrets, new Date(this.clock()).toISOString())
    const hash = this.#records.get(id)
    if (hash === undefined || hash.version !== String(expectedVersion)) return null
    if (hash.status === 'revoked' && patch.status !== undefined && patch.status !== 'revoked')
      throw revokedIsFinal(id)
    const next: RegistrationHash = { ...hash, ...changes.set }
    for (const field of changes.del) delete next[field]
    next.version = String(Number(hash.version) + 1)
    this.#records.set(id, next)
    // the status change's outbox entry, in the same synchronous step as the write
    const entry =
      patch.status === undefined
        ? undefined
        : transitionEntry(hash.status as RegistrationStatus, next, next.updatedAt ?? '')
    if (entry !== undefined) this.outbox.record(id, entry)
    const registration = decodeRegistration(next)
    const previous = decodeRegistration(hash).status
    if (previous !== registration.status) {
      this.#counts[previous] -= 1
      this.#counts[registration.status] += 1
      this.#count(registration, previous, -1)
      this.#count(registration, registration.status, 1)
    }
    // a new consent counts with a status change (as in Redis, where that step moves the counts)
    if (patch.status !== undefined && patch.consentedAt !== undefined)
      this.#count(registration, registration.status, 0, patch.consentedAt)
    if (registration.status === 'revoked') {
      const field = uniquenessField(registration)
      if (field !== undefined && this.#delegated.get(field) === id) this.#delegated.delete(field)
      this.#idle.delete(id)
    }
    return registration
  }

  async admit(id: string, request: AdmitRequest): Promise<AdmitResult> {
    const { replayTtlMs, windowMs, clientWindowMs } = admitArguments(id, request)
    let client: { client: RateLimitResult } | undefined
    if (request.client !== undefined && clientWindowMs !== undefined) {
      client = { client: this.rateLimiter.count(request.client.key, request.client.limit, clientWindowMs) }
      if (!client.client.allowed) return { current: false, ...client }
    }
    const hash = this.#records.get(id)
    if (hash === undefined || hash.version !== String(request.version) || hash.status !== 'active')
      return { current: false, ...client }
    const marker = `${id}\n${request.replayMarker}`
    const fresh = this.seen.get(marker) === undefined
    if (fresh) this.seen.set(marker, true, replayTtlMs)
    return { current: true, fresh, rate: hitWindow(this.windows, id, request.limit, windowMs), ...client }
  }

  async touch(id: string, usage: RegistrationUsage): Promise<void> {
    const set = encodeUsage(usage)
    const hash = this.#records.get(id)
    if (hash === undefined || Object.keys(set).length === 0) return
    this.#records.set(id, { ...hash, ...set })
    const idle = this.#idle.get(id)
    if (usage.lastRefreshAt !== undefined && idle !== undefined) {
      const score = Math.max(idle.score, isoToMs(usage.lastRefreshAt, 'lastRefreshAt'))
      this.#idle.set(id, { ...idle, score })
    }
  }

  async list(query: RegistrationQuery): Promise<RegistrationPage> {
    const limit = clampLimit(query.limit)
    const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor)
    const found: Array<{ position: IndexPosition; item: Registration & RegistrationUsage }> = []
    for (let i = firstAfter(this.#order, after); i < this.#order.length && found.length <= limit; i++) {
      const position = this.#order[i]!
      const hash = this.#records.get(position.id)
      if (hash === undefined || !matchesQuery(hash, query)) continue
      found.push({ position, item: decodeMeta(hash) })
    }
    const page = found.slice(0, limit)
    return {
      items: page.map((entry) => entry.item),
      ...(found.length > limit ? { nextCursor: encodeCursor(page[page.length - 1]!.position) } : {}),
    }
  }

  async listTenants(query: TenantQuery): Promise<TenantPage> {
    const limit = clampLimit(query.limit)
    const after = query.cursor === undefined ? undefined : decodeTenantCursor(query.cursor)
    const tenants = query.app === undefined ? this.#tenants : (this.#appTenants.get(query.app) ?? new Set())
    const ids = [...tenants].filter((id) => after === undefined || id > after).sort()
    const tenantIds = ids.slice(0, limit)
    return ids.length > limit
      ? { tenantIds, nextCursor: encodeTenantCursor(tenantIds[tenantIds.length - 1]!) }
      : { tenantIds }
  }

  /** Changes the tenant summary's count of (app, cloud, status) by `delta`; raises the app's last consent. */
  #count(
    registration: Pick<Registration, 'tenantId' | 'app' | 'cloud'>,
    status: RegistrationStatus,
    delta: number,
    consentedAt?: string,
  ): void {
    const summary = this.#summaries.get(registration.tenantId) ?? { counts: new Map(), consents: new Map() }
    this.#summaries.set(registration.tenantId, summary)
    const key = `${registration.app}\n${registration.cloud}\n${status}`
    const count = (summary.counts.get(key) ?? 0) + delta
    if (count > 0) summary.counts.set(key, count)
    else summary.counts.delete(key)
    if (consentedAt === undefined) return
    const ms = isoToMs(consentedAt, 'consentedAt')
    if (ms > (summary.consents.get(registration.app) ?? Number.NEGATIVE_INFINITY))
      summary.consents.set(registration.app, ms)
  }

  async summarizeTenants(tenantIds: readonly string[], app?: string): Promise<TenantCounts[]> {
    return tenantIds.map((tenantId) => {
      const summary = this.#summaries.get(tenantId)
      const counts = [...(summary?.counts ?? [])].map(([key, count]) => {
        const [name, cloud, status] = key.split('\n') as [string, string, RegistrationStatus]
        return { app: name, cloud, status, count }
      })
      return foldTenantCounts(tenantId, counts, summary?.consents ?? new Map(), app)
    })
  }

  async countByStatus(): Promise<Record<RegistrationStatus, number>> {
    return { ...this.#counts }
  }

  /** Memory writes a record and its index entries at once: never out of step. */
  async syncIndexes(_id: string): Promise<void> {}

  /** Memory writes a record and its index entries at once: nothing is ever pending. */
  async repairIndexes(): Promise<number> {
    return 0
  }

  /** Memory never holds data written by another version: nothing to rebuild. */
  async ensureIndexes(): Promise<IndexRebuild> {
    return { rebuilt: false, registrations: 0, upgrade: 'contracted' }
  }

  /** Memory has one layout: always contracted. */
  async upgradeState(): Promise<UpgradeState> {
    return 'contracted'
  }

  /** Memory has one layout: nothing to finish. */
  async finishUpgrade(): Promise<UpgradeFinish> {
    return { registrations: 0, pruned: 0 }
  }

  async listIdleDelegated(before: string, limit: number, after?: IdlePosition): Promise<IdlePosition[]> {
    const beforeMs = isoToMs(before, 'before')
    if (!(limit >= 1)) return []
    const from = after === undefined ? undefined : idleSortKey(after)
    return [...this.#idle.values()]
      .filter((key) => key.score < beforeMs && (from === undefined || compareIdleKeys(key, from) > 0))
      .sort(compareIdleKeys)
      .slice(0, Math.trunc(limit))
      .map(({ id, score }) => ({ id, score }))
  }

  /** Memory has one layout: always this release's order. */
  async idleOrder(): Promise<IdleOrder> {
    return BUCKETED_IDLE_ORDER
  }

  async reseal(id: string): Promise<boolean> {
    const [result] = await this.resealBatch([id])
    if (result?.outcome === 'failed') throw result.error
    return result?.outcome === 'resealed'
  }

  async resealBatch(ids: readonly string[]): Promise<ResealOutcome[]> {
    return ids.map((id): ResealOutcome => {
      const hash = this.#records.get(id)
      if (hash === undefined) return { id, outcome: 'missing' }
      const registration = resealedFacts(id, hash)
      const next = { ...hash }
      let rewritten = false
      try {
        for (const field of SECRET_FIELDS) {
          const sealed = hash[field]
          if (sealed === undefined || KeyRing.keyIdOf(sealed) === this.keyRing.current.id) continue
          next[field] = sealSecret(this.keyRing, id, field, openSecret(this.keyRing, id, field, sealed))
          rewritten = true
        }
      } catch (cause) {
        const error = cause instanceof Error ? cause : new Error('re-seal failed')
        return { id, outcome: 'failed', error, registration }
      }
      if (rewritten) this.#records.set(id, next)
      return { id, outcome: rewritten ? 'resealed' : 'unchanged', registration }
    })
  }

  async scanIds(cursor: string | undefined, count: number): Promise<{ ids: string[]; nextCursor?: string }> {
    const limit = clampLimit(count, 100, 1000)
    const after = cursor === undefined ? undefined : decodeCursor(cursor)
    const start = firstAfter(this.#order, after)
    const page = this.#order.slice(start, start + limit)
    const more = start + limit < this.#order.length
    return {
      ids: page.map((position) => position.id),
      ...(more ? { nextCursor: encodeCursor(page[page.length - 1]!) } : {}),
    }
  }
}
