// The demo store: one process, no persistence. Same semantics as redis.ts (it passes the same
// contract suite) and the same record encoding (codec.ts), so secrets stay sealed here too.
// Expiry is by timestamps checked on read, plus an unref'd sweep that never keeps the process up.
import { randomBytes } from 'node:crypto'
import { KeyRing } from '../crypto/envelope.js'
import {
  admitArguments,
  assertAuditCursor,
  auditPage,
  clampLimit,
  comparePositions,
  decodeAuditFields,
  decodeCursor,
  decodeMeta,
  decodeRegistration,
  decodeStored,
  encodeAuditFields,
  encodeCursor,
  encodeNewRegistration,
  encodeUpdate,
  encodeUsage,
  type IndexPosition,
  isoToMs,
  matchesQuery,
  openCachedToken,
  openEphemeral,
  openSecret,
  type RegistrationHash,
  rateLimitResult,
  requireName,
  requirePositiveMs,
  revokedIsFinal,
  SECRET_FIELDS,
  sealCachedToken,
  sealEphemeral,
  sealSecret,
  uniquenessField,
  validateNewRegistration,
} from './codec.js'
import type {
  AdmitRequest,
  AdmitResult,
  AuditEvent,
  AuditLog,
  AuditRecord,
  CachedToken,
  CreateResult,
  EphemeralStore,
  IdlePosition,
  LockHandle,
  LockManager,
  RateLimiter,
  RateLimitResult,
  Registration,
  RegistrationPage,
  RegistrationPatch,
  RegistrationQuery,
  RegistrationSecrets,
  RegistrationStore,
  RegistrationUsage,
  SecretsPatch,
  Store,
  StoredRegistration,
  TokenCache,
} from './types.js'

export interface MemoryStoreOptions {
  keyRing: KeyRing
  clock?: () => number
  /** Cap of the audit log; default 100 000. */
  auditMaxLen?: number
  /** Audit events older than this are trimmed on append. */
  auditRetentionMs?: number
  /** How often expired entries are swept; default 60 s. */
  sweepIntervalMs?: number
}

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

class MemoryRegistrations implements RegistrationStore {
  readonly #records = new Map<string, RegistrationHash>()
  /** Every registration by (createdAt, id). */
  readonly #order: IndexPosition[] = []
  /** Delegated uniqueness field → id. */
  readonly #delegated = new Map<string, string>()
  /** Delegated non-revoked id → last refresh (or creation), ms. */
  readonly #idle = new Map<string, number>()
  readonly #tenants = new Set<string>()
  /** admit: replay markers (`id\nmarker`) and per-registration windows (id → count). */
  readonly seen: ExpiringMap<true>
  readonly windows: ExpiringMap<number>

  constructor(
    private readonly keyRing: KeyRing,
    private readonly clock: () => number,
    /** The store's shared limiter: admit's `client` key counts where `rateLimiter.hit` would. */
    private readonly rateLimiter: MemoryRateLimiter,
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
    const position = { score, id }
    this.#order.splice(firstAfter(this.#order, position), 0, position)
    this.#tenants.add(input.tenantId)
    if (field !== undefined) this.#idle.set(id, score)
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
    const registration = decodeRegistration(next)
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
      this.#idle.set(id, Math.max(idle, isoToMs(usage.lastRefreshAt, 'lastRefreshAt')))
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

  async listTenantIds(): Promise<string[]> {
    return [...this.#tenants].sort()
  }

  async listIdleDelegated(before: string, limit: number, after?: IdlePosition): Promise<IdlePosition[]> {
    const beforeMs = isoToMs(before, 'before')
    if (!(limit >= 1)) return []
    return [...this.#idle]
      .filter(([, score]) => score < beforeMs)
      .map(([id, score]) => ({ id, score }))
      .filter((position) => after === undefined || comparePositions(position, after) > 0)
      .sort(comparePositions)
      .slice(0, Math.trunc(limit))
  }

  async reseal(id: string): Promise<boolean> {
    const hash = this.#records.get(id)
    if (hash === undefined) return false
    const next = { ...hash }
    let rewritten = false
    for (const field of SECRET_FIELDS) {
      const sealed = hash[field]
      if (sealed === undefined || KeyRing.keyIdOf(sealed) === this.keyRing.current.id) continue
      next[field] = sealSecret(this.keyRing, id, field, openSecret(this.keyRing, id, field, sealed))
      rewritten = true
    }
    if (rewritten) this.#records.set(id, next)
    return rewritten
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

interface Expiring<T> {
  value: T
  expiresAt: number
}

class ExpiringMap<T> {
  readonly #entries = new Map<string, Expiring<T>>()
  constructor(private readonly clock: () => number) {}

  get(key: string): T | undefined {
    const entry = this.#entries.get(key)
    if (entry === undefined) return undefined
    if (entry.expiresAt <= this.clock()) {
      this.#entries.delete(key)
      return undefined
    }
    return entry.value
  }

  /** Remaining ms of a live entry. */
  ttl(key: string): number | undefined {
    const entry = this.#entries.get(key)
    if (entry === undefined || this.get(key) === undefined) return undefined
    return entry.expiresAt - this.clock()
  }

  set(key: string, value: T, ttlMs: number): void {
    this.#entries.set(key, { value, expiresAt: this.clock() + ttlMs })
  }

  delete(key: string): boolean {
    const live = this.get(key) !== undefined
    this.#entries.delete(key)
    return live
  }

  get size(): number {
    return this.#entries.size
  }

  sweep(): void {
    const now = this.clock()
    for (const [key, entry] of this.#entries) if (entry.expiresAt <= now) this.#entries.delete(key)
  }
}

/** One hit on the fixed-window counter `key` of `windows`: the first hit starts the window. */
function hitWindow(
  windows: ExpiringMap<number>,
  key: string,
  limit: number,
  windowMs: number,
): RateLimitResult {
  const count = (windows.get(key) ?? 0) + 1
  const ttl = windows.ttl(key) ?? windowMs
  windows.set(key, count, ttl)
  return rateLimitResult(count, limit, ttl)
}

class MemoryEphemeral implements EphemeralStore {
  readonly values: ExpiringMap<string>
  constructor(
    private readonly keyRing: KeyRing,
    clock: () => number,
  ) {
    this.values = new ExpiringMap(clock)
  }

  async put(key: string, value: string, ttlMs: number, options?: { secret?: boolean }): Promise<void> {
    requireName(key, 'ephemeral key')
    const stored = sealEphemeral(this.keyRing, key, value, options?.secret)
    this.values.set(key, stored, requirePositiveMs(ttlMs, 'ttlMs'))
  }

  async take(key: string, options?: { secret?: boolean }): Promise<string | null> {
    const stored = this.values.get(key)
    this.values.delete(key)
    return openEphemeral(this.keyRing, key, stored, options?.secret)
  }

  async get(key: string, options?: { secret?: boolean }): Promise<string | null> {
    return openEphemeral(this.keyRing, key, this.values.get(key), options?.secret)
  }

  async claim(key: string, ttlMs: number): Promise<boolean> {
    requireName(key, 'ephemeral key')
    const ttl = requirePositiveMs(ttlMs, 'ttlMs')
    if (this.values.get(key) !== undefined) return false
    this.values.set(key, '1', ttl)
    return true
  }

  async delete(key: string): Promise<void> {
    this.values.delete(key)
  }
}

class MemoryTokenCache implements TokenCache {
  readonly groups = new Map<string, ExpiringMap<string>>()
  constructor(
    private readonly keyRing: KeyRing,
    private readonly clock: () => number,
  ) {}

  async get(group: string, scope: string): Promise<CachedToken | null> {
    const sealed = this.groups.get(group)?.get(scope)
    return sealed === undefined ? null : openCachedToken(this.keyRing, group, scope, sealed)
  }

  async set(group: string, scope: string, token: CachedToken, ttlMs: number): Promise<void> {
    requireName(group, 'token group')
    const ttl = requirePositiveMs(ttlMs, 'ttlMs')
    let scopes = this.groups.get(group)
    if (scopes === undefined) {
      scopes = new ExpiringMap(this.clock)
      this.groups.set(group, scopes)
    }
    scopes.set(scope, sealCachedToken(this.keyRing, group, scope, token), ttl)
  }

  async deleteGroup(group: string): Promise<void> {
    this.groups.delete(group)
  }

  sweep(): void {
    for (const [group, scopes] of this.groups) {
      scopes.sweep()
      if (scopes.size === 0) this.groups.delete(group)
    }
  }
}

class MemoryLocks implements LockManager {
  readonly held: ExpiringMap<string>
  constructor(clock: () => number) {
    this.held = new ExpiringMap(clock)
  }

  async acquire(name: string, ttlMs: number): Promise<LockHandle | null> {
    requireName(name, 'lock name')
    const ttl = requirePositiveMs(ttlMs, 'ttlMs')
    if (this.held.get(name) !== undefined) return null
    const token = randomBytes(20).toString('hex')
    this.held.set(name, token, ttl)
    return { name, token }
  }

  async renew(handle: LockHandle, ttlMs: number): Promise<boolean> {
    const ttl = requirePositiveMs(ttlMs, 'ttlMs')
    if (this.held.get(handle.name) !== handle.token) return false
    this.held.set(handle.name, handle.token, ttl)
    return true
  }

  async release(handle: LockHandle): Promise<boolean> {
    if (this.held.get(handle.name) !== handle.token) return false
    return this.held.delete(handle.name)
  }
}

class MemoryRateLimiter implements RateLimiter {
  readonly windows: ExpiringMap<number>
  constructor(clock: () => number) {
    this.windows = new ExpiringMap(clock)
  }

  async hit(key: string, limit: number, windowMs: number): Promise<RateLimitResult> {
    requireName(key, 'rate-limit key')
    return this.count(key, limit, requirePositiveMs(windowMs, 'windowMs'))
  }

  /** A hit, synchronously (admit counts its `client` key here too). */
  count(key: string, limit: number, window: number): RateLimitResult {
    return hitWindow(this.windows, key, limit, window)
  }
}

class MemoryAuditLog implements AuditLog {
  readonly #entries: Array<{ id: string; ms: number; fields: string[] }> = []
  #lastMs = 0
  #seq = 0

  constructor(
    private readonly clock: () => number,
    private readonly maxLen: number,
    private readonly retentionMs: number | undefined,
  ) {}

  async append(event: AuditEvent): Promise<string> {
    const now = Math.trunc(this.clock())
    if (now > this.#lastMs) {
      this.#lastMs = now
      this.#seq = 0
    } else {
      this.#seq++
    }
    const id = `${this.#lastMs}-${this.#seq}`
    this.#entries.push({
      id,
      ms: this.#lastMs,
      fields: encodeAuditFields(event, new Date(now).toISOString()),
    })
    if (this.#entries.length > this.maxLen) this.#entries.splice(0, this.#entries.length - this.maxLen)
    if (this.retentionMs !== undefined) {
      const minMs = this.#lastMs - this.retentionMs
      let drop = 0
      while (drop < this.#entries.length && this.#entries[drop]!.ms < minMs) drop++
      this.#entries.splice(0, drop)
    }
    return id
  }

  async read(options: {
    cursor?: string
    limit?: number
    order?: 'asc' | 'desc'
  }): Promise<{ items: AuditRecord[]; nextCursor?: string }> {
    const limit = clampLimit(options.limit)
    if (options.cursor !== undefined) assertAuditCursor(options.cursor)
    const cursor = options.cursor?.split('-').map(Number) as [number, number] | undefined
    /** Sign of (entry − cursor) in stream-id order. */
    const versus = (id: string): number => {
      if (cursor === undefined) return 0
      const [ms, seq] = id.split('-').map(Number) as [number, number]
      return ms === cursor[0] ? Math.sign(seq - cursor[1]) : Math.sign(ms - cursor[0])
    }
    const picked =
      options.order === 'desc'
        ? this.#entries.filter((entry) => cursor === undefined || versus(entry.id) < 0).reverse()
        : this.#entries.filter((entry) => cursor === undefined || versus(entry.id) > 0)
    return auditPage(
      picked.slice(0, limit).map((entry) => decodeAuditFields(entry.id, entry.fields)),
      limit,
    )
  }
}

export function createMemoryStore(options: MemoryStoreOptions): Store {
  const clock = options.clock ?? Date.now
  const rateLimiter = new MemoryRateLimiter(clock)
  const registrations = new MemoryRegistrations(options.keyRing, clock, rateLimiter)
  const ephemeral = new MemoryEphemeral(options.keyRing, clock)
  const tokens = new MemoryTokenCache(options.keyRing, clock)
  const locks = new MemoryLocks(clock)
  const sweeper = setInterval(() => {
    registrations.seen.sweep()
    registrations.windows.sweep()
    ephemeral.values.sweep()
    tokens.sweep()
    locks.held.sweep()
    rateLimiter.windows.sweep()
  }, options.sweepIntervalMs ?? 60_000)
  sweeper.unref()
  return {
    kind: 'memory',
    registrations,
    ephemeral,
    tokens,
    locks,
    rateLimiter,
    audit: new MemoryAuditLog(
      clock,
      Math.max(1, Math.trunc(options.auditMaxLen ?? 100_000)),
      options.auditRetentionMs,
    ),
    async ping() {},
    async close() {
      clearInterval(sweeper)
    },
  }
}
