// Redis-only properties of the store: what an attacker with a copy of Redis sees (no plaintext
// secrets), ciphertexts bound to their record, the documented key layout, recovery from a crash
// between the index and record writes, webhook subjects as the previous release left them, and
// connection behaviour during an outage.
import { randomBytes, randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest'
import { EnvelopeError, KeyRing } from '../../src/crypto/envelope.js'
import {
  markKeyShown,
  RegistrationConflictError,
  upsertDelegatedRegistration,
} from '../../src/services/registrations.js'
import { claimSlot } from '../../src/store/redis/delegated-claims.js'
import { idleKeyOf } from '../../src/store/redis/idle-buckets.js'
import { redisKeys } from '../../src/store/redis/keys.js'
import { createRedisStore } from '../../src/store/redis.js'
import { createRedisConnection, type RedisClient, waitForReady } from '../../src/store/redis-connection.js'
import { encodeNewRegistration, uniquenessField } from '../../src/store/registration-hash.js'
import type { Store } from '../../src/store/types.js'
import { type RedisServerHandle, startRedisServer } from '../support/redis-server.js'
import { masterKey, newKeyRing, sampleRegistration, sampleSecrets } from '../support/store-contract.js'

const clients: RedisClient[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.quit().catch(() => client.disconnect())))
})

async function connect(url = inject('redisUrl')): Promise<RedisClient> {
  const client = createRedisConnection({ url })
  clients.push(client)
  await waitForReady(client, 10_000)
  return client
}

/** Where the uniqueness claim of `registration` lives under `prefix` (bucket key and field). */
function claimOf(prefix: string, registration: Parameters<typeof uniquenessField>[0]) {
  return claimSlot(redisKeys(prefix), uniquenessField(registration)!)
}

async function freshStore(
  options: { clock?: () => number; claimGraceMs?: number; redis?: RedisClient; keyRing?: KeyRing } = {},
) {
  const keyPrefix = `t${randomBytes(6).toString('hex')}:`
  const redis = options.redis ?? (await connect())
  const raw = await connect()
  const store = createRedisStore({ redis, keyRing: newKeyRing(), keyPrefix, ...options })
  return { store, raw, keyPrefix }
}

/** Every key under a prefix with its full contents, as one string per key. */
async function dumpPrefix(raw: RedisClient, prefix: string): Promise<Map<string, string>> {
  const dump = new Map<string, string>()
  let cursor = '0'
  do {
    const [next, keys] = await (raw as Redis).scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500)
    cursor = next
    for (const key of keys) {
      const type = await raw.type(key)
      let content: unknown
      if (type === 'hash') content = await raw.hgetall(key)
      else if (type === 'string') content = await raw.get(key)
      else if (type === 'set') content = await raw.smembers(key)
      else if (type === 'zset') content = await raw.zrange(key, '0', '-1', 'WITHSCORES')
      else if (type === 'stream') content = await raw.xrange(key, '-', '+')
      else content = `unexpected type ${type}`
      dump.set(key, `${key} ${JSON.stringify(content)}`)
    }
  } while (cursor !== '0')
  return dump
}

describe('Redis store: secrets at rest', () => {
  it('never stores a Key, refresh token, access token or secret ephemeral value in clear', async () => {
    const { store, raw, keyPrefix } = await freshStore()
    const registration = sampleRegistration()
    const key = randomBytes(32).toString('base64')
    const refreshToken = `0.AXYA-refresh-${randomBytes(40).toString('base64url')}`
    const accessToken = `eyJ0eXAiOiJKV1Qi.access-${randomBytes(40).toString('base64url')}`
    const rotatedRefreshToken = `0.AXYA-rotated-${randomBytes(40).toString('base64url')}`
    const resultPage = `Key=${randomBytes(16).toString('hex')}`

    await store.registrations.create(registration, { key, refreshToken })
    await store.registrations.update(registration.id, 1, {}, { refreshToken: rotatedRefreshToken })
    await store.registrations.touch(registration.id, { lastIssuedAt: new Date().toISOString() })
    await store.tokens.set(
      `reg:${registration.id}`,
      'https://graph.microsoft.com/.default',
      {
        accessToken,
        expiresAt: Date.now() + 3_600_000,
        scope: 'https://graph.microsoft.com/.default',
      },
      60_000,
    )
    await store.ephemeral.put('result:1', resultPage, 60_000, { secret: true })
    await store.audit.append({ type: 'consent.completed', actor: 'system', registrationId: registration.id })

    const dump = [...(await dumpPrefix(raw, keyPrefix)).values()].join('\n')
    // the dump really holds the data (so the negative checks below mean something) …
    expect(dump).toContain(registration.id)
    expect(dump).toContain(registration.tenantId)
    expect(dump).toContain(`${keyPrefix}audit`)
    expect(dump).toContain(`${keyPrefix}eph:result:1`)
    // … but no secret, in any encoding we might plausibly leak
    for (const secret of [key, refreshToken, rotatedRefreshToken, accessToken, resultPage]) {
      expect(dump).not.toContain(secret)
      expect(dump).not.toContain(Buffer.from(secret).toString('base64'))
      expect(dump).not.toContain(Buffer.from(secret).toString('hex'))
    }
    expect(dump).not.toContain(Buffer.from(key, 'base64').toString('hex'))
    // and the store still opens them
    expect((await store.registrations.get(registration.id))?.secrets).toEqual({
      key,
      refreshToken: rotatedRefreshToken,
    })
    expect(
      (await store.tokens.get(`reg:${registration.id}`, 'https://graph.microsoft.com/.default'))?.accessToken,
    ).toBe(accessToken)
  })

  it('refuses a sealed value copied into another registration or cache entry', async () => {
    const { store, raw, keyPrefix } = await freshStore()
    const victim = sampleRegistration()
    const attacker = sampleRegistration()
    await store.registrations.create(victim, sampleSecrets())
    await store.registrations.create(attacker, sampleSecrets())

    // Someone with write access to Redis copies the victim's sealed refresh token (its chunks
    // R0, R1, …) into their record
    const victimKey = `${keyPrefix}reg:{${victim.id}}`
    const attackerKey = `${keyPrefix}reg:{${attacker.id}}`
    const chunks = async (key: string, prefix: string) =>
      Object.entries(await raw.hgetall(key)).filter(([field]) => new RegExp(`^${prefix}\\d+$`).test(field))
    for (const [field, value] of await chunks(victimKey, 'R')) await raw.hset(attackerKey, field, value)
    await expect(store.registrations.get(attacker.id)).rejects.toBeInstanceOf(EnvelopeError)

    // … or the sealed Key (K0, K1, …) into the refresh-token chunks of the victim's own record
    await raw.hdel(victimKey, ...(await chunks(victimKey, 'R')).map(([field]) => field))
    for (const [field, value] of await chunks(victimKey, 'K'))
      await raw.hset(victimKey, field.replace('K', 'R'), value)
    await expect(store.registrations.get(victim.id)).rejects.toBeInstanceOf(EnvelopeError)

    // a cached token moved to another group is a miss, never another tenant's token
    const token = { accessToken: 'at-victim', expiresAt: Date.now() + 60_000, scope: 's' }
    await store.tokens.set(`reg:${victim.id}`, 's', token, 60_000)
    await store.tokens.set(`reg:${attacker.id}`, 's', { ...token, accessToken: 'at-attacker' }, 60_000)
    const dump = await dumpPrefix(raw, `${keyPrefix}tok:{reg:${victim.id}}:`)
    const victimTokenKey = [...dump.keys()].find((k) => !k.endsWith(':members'))!
    const attackerTokenKey = victimTokenKey.replace(victim.id, attacker.id)
    await raw.set(attackerTokenKey, (await raw.get(victimTokenKey))!)
    expect(await store.tokens.get(`reg:${attacker.id}`, 's')).toBeNull()
    expect((await store.tokens.get(`reg:${victim.id}`, 's'))?.accessToken).toBe('at-victim')
  })
})

describe('Redis store: key layout', () => {
  it('uses the documented keys, one hash tag per record and one for every index', async () => {
    const { store, raw, keyPrefix: p } = await freshStore()
    const registration = sampleRegistration({ tenantId: 'tenant-a', app: 'ms-graph-mail' })
    await store.registrations.create(registration, sampleSecrets())
    await store.tokens.set('reg:{odd}', 'scope', { accessToken: 'a', expiresAt: 1, scope: 'scope' }, 60_000)
    await store.ephemeral.put('flow:1', 'x', 60_000)
    await store.locks.acquire('refresh:1', 60_000)
    await store.rateLimiter.hit('ip:1', 10, 60_000)
    await store.registrations.admit(registration.id, {
      version: 1,
      replayMarker: 'm1',
      replayTtlMs: 60_000,
      limit: 10,
      windowMs: 60_000,
    })
    await store.audit.append({ type: 'operator.signed_in', actor: 'operator:alice' })

    const keys = [...(await dumpPrefix(raw, p)).keys()].sort()
    const scopeHash = (await import('../../src/crypto/sha256.js')).sha256Hex('scope')
    expect(keys).toEqual(
      [
        `${p}reg:{${registration.id}}`,
        `${p}outbox:{${registration.id}}`,
        `${p}{wh}:subjects`,
        `${p}seen:{${registration.id}}:m1`,
        `${p}rl-reg:{${registration.id}}`,
        `${p}{idx}:as:active:ms-graph-mail`,
        `${p}{idx}:ts:active:ms-graph-mail:tenant-a`,
        `${p}{idx}:apps`,
        `${p}{idx}:tenant-ids`,
        `${p}{idx}:app-tenants:ms-graph-mail`,
        `${p}{idx}:tenant-summary:tenant-a`,
        `${p}{idx}:indexes`,
        claimOf(p, registration).key,
        idleKeyOf(redisKeys(p), registration.id),
        `${p}tok:{reg:%7Bodd%7D}:${scopeHash}`,
        `${p}tok:{reg:%7Bodd%7D}:members`,
        `${p}eph:flow:1`,
        `${p}lock:refresh:1`,
        `${p}rl:ip:1`,
        `${p}audit`,
      ].sort(),
    )
    expect(await raw.hget(claimOf(p, registration).key, claimOf(p, registration).field)).toMatch(
      new RegExp(`^\\d+:${registration.id}$`),
    )
    expect(await raw.pttl(`${p}tok:{reg:%7Bodd%7D}:members`)).toBeGreaterThan(0)
    // the first registration of a new store marks its indexes complete: nothing to rebuild
    expect(await raw.get(`${p}{idx}:indexes`)).toBe('3')
    // the tenant's summary: complete from its first registration, one count, its last consent
    expect(await raw.hgetall(`${p}{idx}:tenant-summary:tenant-a`)).toEqual({
      v: '1',
      g: '1',
      [`n|ms-graph-mail|${registration.cloud}|active`]: '1',
      'c|ms-graph-mail': String(Date.parse(registration.consentedAt)),
    })
    // the record is a compact listpack: short names, no id, ms times, sealed values in 64-byte chunks
    const recordKey = `${p}reg:{${registration.id}}`
    expect(await raw.call('OBJECT', 'ENCODING', recordKey)).toBe('listpack')
    const record = await raw.hgetall(recordKey)
    expect(
      Object.keys(record)
        .filter((field) => !/^[KR]\d+$/.test(field))
        .sort(),
    ).toEqual(['a', 'c', 'ca', 'k', 'o', 'status', 't', 'u', 'version'].sort())
    expect(record.K1).toBeDefined() // a sealed Key is longer than one chunk
    expect(record.R0).toBeDefined()
    expect(record.ca).toBe(String(Date.parse(registration.createdAt)))
    expect(Object.values(record).every((value) => value.length <= 64)).toBe(true)
  })

  it('rejects key prefixes that would change hash slots or key names', async () => {
    const redis = await connect()
    expect(() => createRedisStore({ redis, keyRing: newKeyRing(), keyPrefix: 'cb:{x}:' })).toThrow(TypeError)
    const prefixed = new Redis(inject('redisUrl'), { keyPrefix: 'x:', lazyConnect: true })
    expect(() => createRedisStore({ redis: prefixed, keyRing: newKeyRing(), keyPrefix: 'cb:' })).toThrow(
      /ioredis keyPrefix/,
    )
    prefixed.disconnect()
  })
})

describe('Redis store: rate-limit windows', () => {
  it('starts each window with its first hit and answers its time left once over the limit', async () => {
    const { store, raw, keyPrefix: p } = await freshStore()
    const registration = sampleRegistration()
    await store.registrations.create(registration, sampleSecrets())
    const registrationCounter = `${p}rl-reg:{${registration.id}}`
    const clientCounter = `${p}rl:ip:w`
    // Windows far longer than the test (nothing waits for them to end), so a busy machine's late
    // timers can't bring the time left under the lower bounds below; the client's window ends a
    // minute after the registration's, so the two answers can't be mistaken for each other.
    const admit = (marker: string, client: boolean) =>
      store.registrations.admit(registration.id, {
        version: 1,
        replayMarker: marker,
        replayTtlMs: 60_000,
        limit: 3,
        windowMs: 60_000,
        ...(client ? { client: { key: 'ip:w', limit: 4, windowMs: 120_000 } } : {}),
      })
    const lefts: Array<[number, number]> = []
    for (const marker of ['m1', 'm2', 'm3']) {
      const admitted = await admit(marker, true)
      expect(admitted).toMatchObject({ current: true, fresh: true, rate: { allowed: true } })
      expect(admitted.client?.allowed).toBe(true)
      lefts.push([await raw.pttl(registrationCounter), await raw.pttl(clientCounter)])
      await new Promise((resolve) => setTimeout(resolve, 300))
    }
    // Both windows started with the first hit and were not restarted by the next ones.
    expect(lefts[0]![0]).toBeGreaterThan(50_000)
    expect(lefts[0]![1]).toBeGreaterThan(110_000)
    expect(lefts[2]![0]).toBeLessThanOrEqual(lefts[0]![0] - 500)
    expect(lefts[2]![1]).toBeLessThanOrEqual(lefts[0]![1] - 500)
    // The registration's limit (3) refuses the 4th, with the time left of its window; the client
    // (limit 4) still lets it through.
    const overRegistration = await admit('m4', true)
    expect(overRegistration).toMatchObject({ current: true, fresh: true, rate: { allowed: false } })
    expect(overRegistration.client?.allowed).toBe(true)
    const registrationLeft = overRegistration.current ? overRegistration.rate.retryAfterMs : 0
    expect(registrationLeft).toBeGreaterThan(50_000)
    expect(registrationLeft).toBeLessThanOrEqual(lefts[2]![0])
    // The same without a client key (the single-key script).
    const alone = await admit('m5', false)
    expect(alone.current && alone.rate.retryAfterMs).toBeGreaterThan(50_000)
    // Then the client's limit (4) refuses the 6th first, with its window's time left (more than the
    // registration's window could have left).
    const overClient = await admit('m6', true)
    expect(overClient.current).toBe(false)
    expect(overClient.client?.allowed).toBe(false)
    expect(overClient.client?.retryAfterMs).toBeGreaterThan(60_000)
    expect(overClient.client?.retryAfterMs).toBeLessThanOrEqual(lefts[2]![1])
  })

  it('gives a counter found without an expiry its window once it passes the limit', async () => {
    const { store, raw, keyPrefix: p } = await freshStore()
    // This code never leaves a counter without an expiry; an operator's PERSIST could. (Windows of a
    // minute, never waited out: the lower bounds below leave ~10 s for a busy machine's delays.)
    await raw.set(`${p}rl:ip:stuck`, '2')
    expect(await store.rateLimiter.hit('ip:stuck', 3, 60_000)).toEqual({
      allowed: true,
      remaining: 0,
      retryAfterMs: 0,
    })
    expect(await raw.pttl(`${p}rl:ip:stuck`)).toBe(-1) // within the limit the time left is not read
    const over = await store.rateLimiter.hit('ip:stuck', 3, 60_000)
    expect(over).toEqual({ allowed: false, remaining: 0, retryAfterMs: 60_000 })
    const left = await raw.pttl(`${p}rl:ip:stuck`)
    expect(left).toBeGreaterThan(50_000)
    expect(left).toBeLessThanOrEqual(60_000)
    // and from then on it answers the time left of that window
    const again = await store.rateLimiter.hit('ip:stuck', 3, 60_000)
    expect(again.retryAfterMs).toBeLessThanOrEqual(left)
    expect(again.retryAfterMs).toBeGreaterThan(50_000)

    // The same repair inside admit, for the registration's counter.
    const registration = sampleRegistration()
    await store.registrations.create(registration, sampleSecrets())
    await raw.set(`${p}rl-reg:{${registration.id}}`, '3')
    const admitted = await store.registrations.admit(registration.id, {
      version: 1,
      replayMarker: 'm1',
      replayTtlMs: 60_000,
      limit: 3,
      windowMs: 60_000,
      client: { key: 'ip:fine', limit: 10, windowMs: 60_000 },
    })
    expect(admitted).toMatchObject({ current: true, rate: { allowed: false, retryAfterMs: 60_000 } })
    expect(await raw.pttl(`${p}rl-reg:{${registration.id}}`)).toBeGreaterThan(50_000)
  })
})

describe('Redis store: records written in the earlier layout', () => {
  it('reads, updates, touches, re-seals and announces a record written with long names and whole sealed values', async () => {
    const firstKey = masterKey()
    const first = new KeyRing([firstKey])
    const { store, raw, keyPrefix: p } = await freshStore({ keyRing: first })
    const registration = sampleRegistration({ statusDetail: { code: 'x', at: '2026-01-02T00:00:00.000Z' } })
    const secrets = sampleSecrets()
    await store.registrations.create(registration, secrets)
    // the record as the earlier layout wrote it: every logical field under its own name, `id`,
    // ISO times, sealed values whole (a hashtable once the sealed Key is over 64 bytes)
    const recordKey = `${p}reg:{${registration.id}}`
    const old = encodeNewRegistration(first, registration, secrets)
    await raw.del(recordKey)
    await raw.hset(recordKey, { ...old, lastIssuedAt: '2026-01-03T00:00:00.000Z', lastClient: 'xsoar/1' })
    expect(Object.keys(old)).toEqual(
      expect.arrayContaining(['id', 'tenantId', 'createdAt', 'key', 'refreshToken']),
    )

    const read = await store.registrations.get(registration.id)
    expect(read).toEqual({
      registration: { ...registration, version: 1 },
      usage: { lastIssuedAt: '2026-01-03T00:00:00.000Z', lastClient: 'xsoar/1' },
      secrets,
    })
    expect(await store.registrations.getMeta(registration.id)).toEqual({
      ...registration,
      version: 1,
      lastIssuedAt: '2026-01-03T00:00:00.000Z',
      lastClient: 'xsoar/1',
    })
    expect((await store.registrations.list({ tenantId: registration.tenantId })).items).toHaveLength(1)

    // a write moves each field it sets to the new layout; the rest keeps being read as it was
    // (a status detail longer than the chunks a listing reads at once: read whole all the same)
    const longDetail = {
      code: 'AADSTS700082',
      message: `AADSTS700082: ${'x'.repeat(300)}`,
      at: '2026-01-04T00:00:00.000Z',
    }
    const updated = await store.registrations.update(
      registration.id,
      1,
      { status: 'needs_consent', statusDetail: longDetail },
      { refreshToken: 'rt-renewed' },
    )
    expect(updated).toMatchObject({ status: 'needs_consent', version: 2, tenantId: registration.tenantId })
    await store.registrations.touch(registration.id, { lastRefreshAt: '2026-01-05T00:00:00.000Z' })
    expect((await store.registrations.getMeta(registration.id))?.statusDetail).toEqual(longDetail)
    const mixed = await raw.hgetall(recordKey)
    expect(mixed.refreshToken).toBeUndefined()
    expect(mixed.statusDetail).toBeUndefined()
    expect(mixed.R0).toBeDefined()
    expect(mixed.tenantId).toBe(registration.tenantId) // untouched: still under its long name
    const after = await store.registrations.get(registration.id)
    expect(after?.secrets).toEqual({ key: secrets.key, refreshToken: 'rt-renewed' })
    expect(after?.usage).toEqual({
      lastIssuedAt: '2026-01-03T00:00:00.000Z',
      lastClient: 'xsoar/1',
      lastRefreshAt: '2026-01-05T00:00:00.000Z',
    })
    expect(await store.registrations.countByStatus()).toEqual({ active: 0, needs_consent: 1, revoked: 0 })

    // the status change's outbox entry reads like one of a new record
    const entries = await store.webhooks.readOutbox(registration.id)
    const needsConsent = entries.find((entry) => entry.kind === 'registration.needs_consent')
    expect(needsConsent?.facts).toMatchObject({
      id: registration.id,
      app: registration.app,
      tenantId: registration.tenantId,
      createdAt: registration.createdAt,
      previousStatus: 'active',
      status: 'needs_consent',
      statusDetail: JSON.stringify(longDetail),
    })
    expect(JSON.stringify(needsConsent?.facts)).not.toMatch(/v1\./) // no sealed value

    // a key rotation re-seals the long sealed Key into chunks, under the new key only
    const second = new KeyRing([masterKey('second'), firstKey])
    const rotated = createRedisStore({ redis: raw, keyRing: second, keyPrefix: p })
    expect(await rotated.registrations.reseal(registration.id)).toBe(true)
    const resealed = await raw.hgetall(recordKey)
    expect(resealed.key).toBeUndefined()
    expect(resealed.K0?.startsWith('v1.second.')).toBe(true)
    expect(resealed.R0?.startsWith('v1.second.')).toBe(true)
    expect((await rotated.registrations.get(registration.id))?.secrets).toEqual({
      key: secrets.key,
      refreshToken: 'rt-renewed',
    })
  })
})

describe('Redis store: webhook subjects the previous release wrote', () => {
  // The previous release kept one score per subject (its announcement, or what its claim or finish
  // set) and no announcement time; instances of both releases share `{wh}:subjects` while rolling.
  const GRACE = 30_000
  const LEASE = 15_000
  const T = Date.parse('2026-03-01T00:00:00.000Z')

  async function outboxStore() {
    let now = T
    const { store, raw, keyPrefix } = await freshStore({ clock: () => now })
    const keys = redisKeys(keyPrefix)
    /** One dispatcher poll at `at`: the subjects it claimed (every entry handled). */
    const pollAt = async (at: number) => {
      now = at
      const claimed = await store.webhooks.claimSubjects(100, LEASE)
      for (const { item, lease } of claimed) {
        const entries = await store.webhooks.readOutbox(item)
        await store.webhooks.finishSubject(
          item,
          lease,
          entries.map((e) => e.id),
          GRACE,
        )
      }
      return claimed.map((c) => c.item)
    }
    return { store, raw, keys, pollAt }
  }

  it('drops what it announced or rescheduled after at most one claim more, and keeps no announcement time', async () => {
    const { raw, keys, pollAt } = await outboxStore()
    // announced by the old release at T; rescheduled by its finish at the old announcement + grace
    await raw.zadd(keys.whSubjects, T, 'announced-old', T - 5_000 + GRACE, 'rescheduled-old')
    expect(await pollAt(T + 1_000)).toEqual(['announced-old'])
    expect(await pollAt(T + GRACE - 5_000)).toEqual(['rescheduled-old'])
    expect(await pollAt(T + GRACE)).toEqual(['announced-old'])
    expect(await pollAt(T + 2 * GRACE - 5_000)).toEqual(['rescheduled-old'])
    expect(await pollAt(T + 10 * GRACE)).toEqual([])
    expect(await raw.zcard(keys.whSubjects)).toBe(0)
    expect(await raw.exists(keys.whAnnounced)).toBe(0)
  })

  it("restarts the grace at the old release's announcement of a subject this one rescheduled", async () => {
    const { raw, keys, pollAt } = await outboxStore()
    await raw.zadd(keys.whSubjects, T, 's')
    expect(await pollAt(T + 1_000)).toEqual(['s'])
    expect(await raw.hget(keys.whAnnounced, 's')).toBe(`${T}:${T + GRACE}`)
    // an old instance's writer announces (its announce is a plain ZADD) and is still writing
    await raw.zadd(keys.whSubjects, T + 10_000, 's')
    expect(await pollAt(T + 10_000)).toEqual(['s'])
    expect(await pollAt(T + GRACE)).toEqual([])
    expect(await pollAt(T + 10_000 + GRACE)).toEqual(['s'])
    expect(await pollAt(T + 10 * GRACE)).toEqual([])
    // a field an old instance's drop left behind: its score is not the subject's, so it doesn't count
    await raw.hset(keys.whAnnounced, 'left', `${T}:${T + GRACE}`)
    await raw.zadd(keys.whSubjects, T + 10 * GRACE, 'left')
    expect(await pollAt(T + 10 * GRACE)).toEqual(['left'])
    expect(await pollAt(T + 11 * GRACE)).toEqual(['left'])
    expect(await raw.exists(keys.whAnnounced)).toBe(0)
  })

  it('finishing the upgrade removes the fields of subjects an old instance dropped, and keeps the others', async () => {
    const { store, raw, keys, pollAt } = await outboxStore()
    await raw.zadd(keys.whSubjects, String(T), 'kept')
    expect(await pollAt(T + 1_000)).toEqual(['kept'])
    // two subjects this release claimed, then an old instance dropped (a plain ZREM: fields left)
    await raw.hset(keys.whAnnounced, 'dropped-1', `${T}:${T + GRACE}`, 'dropped-2', `${T}:${T + LEASE}`)
    await store.registrations.finishUpgrade()
    expect(await raw.hkeys(keys.whAnnounced)).toEqual(['kept'])
    expect(await raw.zrange(keys.whSubjects, '0', '-1')).toEqual(['kept'])
  })
})

describe('Redis store: crash between index and record writes', () => {
  const OLD = 1_000_000

  it('skips index entries whose record is missing', async () => {
    const { store, raw, keyPrefix: p } = await freshStore()
    const tenantId = randomUUID()
    const real = sampleRegistration({ tenantId })
    await store.registrations.create(real, sampleSecrets())
    // what a crash after step 1 of create leaves behind
    const ghost = randomUUID()
    const score = Date.parse(real.createdAt) - 1
    await raw.zadd(`${p}{idx}:as:active:${real.app}`, score, ghost)
    await raw.zadd(`${p}{idx}:ts:active:${real.app}:${tenantId}`, score, ghost)
    await raw.zadd(idleKeyOf(redisKeys(p), ghost), score, ghost)

    expect((await store.registrations.list({ tenantId })).items.map((r) => r.id)).toEqual([real.id])
    expect((await store.registrations.list({ limit: 1 })).items.map((r) => r.id)).toEqual([real.id])
    expect((await store.registrations.scanIds(undefined, 10)).ids).toEqual([real.id])
    expect(
      (
        await store.registrations.listIdleDelegated(
          new Date(Date.parse(real.createdAt) + 1).toISOString(),
          10,
        )
      ).map((position) => position.id),
    ).toEqual([real.id])
    expect(await store.registrations.getMeta(ghost)).toBeNull()
  })

  it('takes over an abandoned uniqueness claim and reports a live one', async () => {
    let now = OLD
    const { store, raw, keyPrefix: p } = await freshStore({ clock: () => now, claimGraceMs: 30_000 })
    const user = sampleRegistration()
    const claim = claimOf(p, user)
    const ghost = randomUUID()
    // a claim made at OLD whose record never got written
    await raw.hset(claim.key, claim.field, `${OLD}:${ghost}`)
    await raw.zadd(`${p}{idx}:as:active:${user.app}`, 1, ghost)
    await raw.zadd(`${p}{idx}:ts:active:${user.app}:${user.tenantId}`, 1, ghost)

    // within the grace period it may be a create in flight: reported, not taken over
    now = OLD + 1000
    expect(await store.registrations.create(user, sampleSecrets())).toEqual({
      created: false,
      existingId: ghost,
    })

    now = OLD + 60_000
    const result = await store.registrations.create({ ...user, id: randomUUID() }, sampleSecrets())
    expect(result.created).toBe(true)
    const winner = result.created ? result.registration.id : ''
    expect(await raw.hget(claim.key, claim.field)).toBe(`${now}:${winner}`)
    // the ghost's index entries went with its claim
    expect(await raw.zscore(`${p}{idx}:ts:active:${user.app}:${user.tenantId}`, ghost)).toBeNull()
    expect(await raw.zscore(`${p}{idx}:as:active:${user.app}`, ghost)).toBeNull()
    expect((await store.registrations.list({ tenantId: user.tenantId })).items.map((r) => r.id)).toEqual([
      winner,
    ])
    // and the tenant counts the winner only
    expect((await store.registrations.summarizeTenants([user.tenantId]))[0]!.registrations).toEqual({
      active: 1,
      needs_consent: 0,
      revoked: 0,
      total: 1,
    })
  })

  it('keeps claims written in the single hash of the previous release, and moves them at start-up', async () => {
    const { store, raw, keyPrefix: p } = await freshStore()
    const legacy = `${p}{idx}:delegated`
    /** What the previous release wrote: the JSON field in one hash, no bucket. */
    const asWrittenBefore = async (registration: Parameters<typeof uniquenessField>[0]) => {
      const claim = claimOf(p, registration)
      const value = await raw.hget(claim.key, claim.field)
      await raw.hdel(claim.key, claim.field)
      await raw.hset(legacy, claim.legacyField, value!)
    }
    const first = sampleRegistration()
    const second = sampleRegistration()
    for (const r of [first, second]) {
      await store.registrations.create(r, sampleSecrets())
      await asWrittenBefore(r)
    }
    // a claim only the legacy hash holds is still a claim
    expect(await store.registrations.create({ ...first, id: randomUUID() }, sampleSecrets())).toEqual({
      created: false,
      existingId: first.id,
    })
    // revoking releases it there, and the next create claims in its bucket
    await store.registrations.update(first.id, 1, { status: 'revoked' })
    expect(await raw.hexists(legacy, claimOf(p, first).legacyField)).toBe(0)
    const again = { ...first, id: randomUUID() }
    expect(await store.registrations.create(again, sampleSecrets())).toMatchObject({ created: true })
    expect(await raw.hget(claimOf(p, again).key, claimOf(p, again).field)).toMatch(
      new RegExp(`:${again.id}$`),
    )
    // start-up moves what is left to the buckets and deletes the legacy hash
    expect(await raw.hlen(legacy)).toBe(1)
    await store.registrations.ensureIndexes()
    expect(await raw.exists(legacy)).toBe(0)
    expect(await raw.hget(claimOf(p, second).key, claimOf(p, second).field)).toMatch(
      new RegExp(`^\\d+:${second.id}$`),
    )
    expect(await store.registrations.create({ ...second, id: randomUUID() }, sampleSecrets())).toEqual({
      created: false,
      existingId: second.id,
    })
  })

  it('keeps the idle set written by the previous release, and moves it to its buckets at start-up', async () => {
    const { store, raw, keyPrefix: p } = await freshStore()
    const keys = redisKeys(p)
    const legacy = `${p}{idx}:idle`
    const [a, b, c] = [0, 1, 2].map((i) => sampleRegistration({ createdAt: new Date(OLD + i).toISOString() }))
    /** What the previous release wrote: the entry in the one idle set, no bucket. */
    for (const r of [a!, b!, c!]) {
      await store.registrations.create(r, sampleSecrets())
      const score = await raw.zscore(idleKeyOf(keys, r.id), r.id)
      await raw.zrem(idleKeyOf(keys, r.id), r.id)
      await raw.zadd(legacy, score!, r.id)
    }
    // before the move: a refresh raises the legacy entry, a revoke drops it
    await store.registrations.touch(a!.id, { lastRefreshAt: new Date(OLD + 100).toISOString() })
    await store.registrations.update(c!.id, 1, { status: 'revoked' })
    expect(await raw.zrange(legacy, '0', '-1', 'WITHSCORES')).toEqual(
      [
        [b!.id, String(OLD + 1)],
        [a!.id, String(OLD + 100)],
      ].flat(),
    )
    await store.registrations.ensureIndexes()
    expect(await raw.exists(legacy)).toBe(0)
    expect(await raw.zscore(idleKeyOf(keys, a!.id), a!.id)).toBe(String(OLD + 100))
    expect(await raw.zscore(idleKeyOf(keys, b!.id), b!.id)).toBe(String(OLD + 1))
    expect(await raw.zscore(idleKeyOf(keys, c!.id), c!.id)).toBeNull()
    const idle = await store.registrations.listIdleDelegated(new Date(OLD + 1000).toISOString(), 10)
    expect(idle.map((position) => position.id).sort()).toEqual([a!.id, b!.id].sort())
  })

  it('takes over a claim left on a revoked record (crash between revoke and release)', async () => {
    const { store, raw, keyPrefix: p } = await freshStore()
    const first = sampleRegistration()
    await store.registrations.create(first, sampleSecrets())
    // the versioned update happened, the release did not
    await raw.hset(`${p}reg:{${first.id}}`, 'status', 'revoked')
    const second = sampleRegistration({ ...first, id: randomUUID() })
    expect(await store.registrations.create(second, sampleSecrets())).toMatchObject({ created: true })
    // the revoked one is still listed, as a real record
    expect(
      (await store.registrations.list({ tenantId: first.tenantId })).items.map((r) => r.id).sort(),
    ).toEqual([first.id, second.id].sort())
  })

  it('undoes a create whose claim was taken over while it stalled', async () => {
    const redis = await connect()
    const keyPrefix = `t${randomBytes(6).toString('hex')}:`
    const user = sampleRegistration()
    const claim = claimOf(keyPrefix, user)
    const usurper = randomUUID()
    // Between step 1 (claim) and step 2 (record) another instance decides the claim was abandoned
    // and takes it over: simulated by rewriting the claim just before the record write.
    const stalling = new Proxy(redis, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver)
        if (property !== 'evalsha' || typeof value !== 'function') return value
        return async (...args: unknown[]) => {
          const keys = args.slice(2, 2 + Number(args[1])) as string[]
          // the record's write: CREATE_RECORD (the record and its outbox)
          if (keys.length === 2 && keys[0] === `${keyPrefix}reg:{${user.id}}`) {
            await target.hset(claim.key, claim.field, `${Date.now()}:${usurper}`)
          }
          return (value as (...a: unknown[]) => unknown).apply(target, args)
        }
      },
    })
    const store: Store = createRedisStore({ redis: stalling, keyRing: newKeyRing(), keyPrefix })
    expect(await store.registrations.create(user, sampleSecrets())).toEqual({
      created: false,
      existingId: usurper,
    })
    expect(await store.registrations.get(user.id)).toBeNull()
    expect(await redis.zscore(`${keyPrefix}{idx}:as:active:${user.app}`, user.id)).toBeNull()
    expect(await redis.zscore(`${keyPrefix}{idx}:ts:active:${user.app}:${user.tenantId}`, user.id)).toBeNull()
    expect(await redis.hget(claim.key, claim.field)).toMatch(new RegExp(`:${usurper}$`))
    // the undone record's registration.created entry went with it, and its count with its entries
    expect(await redis.exists(`${keyPrefix}outbox:{${user.id}}`)).toBe(0)
    expect((await store.registrations.summarizeTenants([user.tenantId]))[0]!.registrations.total).toBe(0)
  })

  it("fails a consent whose claim turns out to name another user's registration (a digest collision)", async () => {
    const redis = await connect()
    const keyPrefix = `t${randomBytes(6).toString('hex')}:`
    const tenantId = randomUUID()
    const consent = (userOid: string, refreshToken: string) => ({
      app: 'ms-graph-mail-listener',
      cloud: 'global' as const,
      tenantId,
      now: new Date().toISOString(),
      userOid,
      userName: `${userOid}@contoso.example`,
      refreshToken,
    })
    const firstUser = randomUUID()
    const secondUser = randomUUID()
    let other = ''
    let collide = false
    // As if the second user's claim digest equalled the first user's: while the second user's
    // record is written, its claim is rewritten to name the first user's registration (the path
    // where the store answers the holder without reading its record).
    const colliding = new Proxy(redis, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver)
        if (property !== 'evalsha' || typeof value !== 'function') return value
        return async (...args: unknown[]) => {
          const keys = args.slice(2, 2 + Number(args[1])) as string[]
          if (collide && keys.length === 2 && keys[0]!.startsWith(`${keyPrefix}reg:{`)) {
            collide = false
            const claim = claimOf(keyPrefix, { ...consent(secondUser, ''), kind: 'delegated' })
            await target.hset(claim.key, claim.field, `${Date.now()}:${other}`)
          }
          return (value as (...a: unknown[]) => unknown).apply(target, args)
        }
      },
    })
    const store: Store = createRedisStore({ redis: colliding, keyRing: newKeyRing(), keyPrefix })
    const first = await upsertDelegatedRegistration(store, consent(firstUser, 'rt-first-user'))
    other = first.registration.id
    collide = true
    await expect(upsertDelegatedRegistration(store, consent(secondUser, 'rt-second-user'))).rejects.toThrow(
      RegistrationConflictError,
    )
    expect(collide).toBe(false) // the collision was staged
    const kept = await store.registrations.get(other)
    expect(kept?.secrets.refreshToken).toBe('rt-first-user')
    expect(kept?.registration.version).toBe(first.registration.version)
    // the same user consenting again, once their Key was shown, still reuses their registration
    // and its Key (kept, not returned)
    if (first.reused) throw new Error('the first consent must create the registration')
    expect(await markKeyShown(store, other, first.unshownKey)).toBe(true)
    const again = await upsertDelegatedRegistration(store, consent(firstUser.toUpperCase(), 'rt-first-again'))
    expect(again).toMatchObject({ reused: true })
    expect(again).not.toHaveProperty('key')
    expect(again.registration.id).toBe(other)
    expect((await store.registrations.get(other))?.secrets.key).toBe(first.key)
  })
})

describe('Redis store: a delegated Key never shown', () => {
  const consent = (tenantId: string, userOid: string, refreshToken: string) => ({
    app: 'ms-graph-mail-listener',
    cloud: 'global' as const,
    tenantId,
    now: new Date().toISOString(),
    userOid,
    userName: 'alice@contoso.example',
    refreshToken,
  })

  it('a create whose last step failed leaves a registration whose Key the next consent re-issues', async () => {
    const redis = await connect()
    const keyPrefix = `t${randomBytes(6).toString('hex')}:`
    let recordWritten = false
    let failed = false
    // The record is written (CREATE_RECORD), then the claim re-check (step 3) fails: a Redis blip.
    const flaky = new Proxy(redis, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver)
        // (EVAL too: a script the server doesn't know yet is sent again with it)
        if ((property !== 'evalsha' && property !== 'eval') || typeof value !== 'function') return value
        return async (...args: unknown[]) => {
          const keys = args.slice(2, 2 + Number(args[1])) as string[]
          if (recordWritten && !failed) {
            failed = true
            throw new Error('ETIMEDOUT (a Redis blip)')
          }
          const reply = await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args)
          if (keys.length === 2 && keys[0]!.startsWith(`${keyPrefix}reg:{`)) recordWritten = true
          return reply
        }
      },
    })
    const store: Store = createRedisStore({ redis: flaky, keyRing: newKeyRing(), keyPrefix })
    const tenantId = randomUUID()
    const userOid = randomUUID()
    await expect(upsertDelegatedRegistration(store, consent(tenantId, userOid, 'rt-1'))).rejects.toThrow(
      /blip/,
    )
    expect(failed).toBe(true)
    const { items } = await store.registrations.list({ tenantId })
    expect(items).toHaveLength(1)
    const lost = (await store.registrations.get(items[0]!.id))!
    expect(lost.registration.unshownKey).toBeDefined()

    const retry = await upsertDelegatedRegistration(store, consent(tenantId, userOid, 'rt-2'))
    if (retry.reused) throw new Error('a Key never shown must be re-issued')
    expect(retry).toMatchObject({ reissued: true, registration: { id: lost.registration.id } })
    expect(retry.key).not.toBe(lost.secrets.key)
    const reissued = (await store.registrations.get(lost.registration.id))!
    expect(reissued.secrets).toMatchObject({ key: retry.key, refreshToken: 'rt-2' })
    expect(reissued.registration.unshownKey).toBe(retry.unshownKey)
    // The first Key's id no longer marks anything shown; the new one's does, once.
    expect(await markKeyShown(store, lost.registration.id, lost.registration.unshownKey!)).toBe(false)
    expect(await markKeyShown(store, lost.registration.id, retry.unshownKey)).toBe(true)
    expect((await store.registrations.getMeta(lost.registration.id))?.unshownKey).toBeUndefined()
    expect(await markKeyShown(store, lost.registration.id, retry.unshownKey)).toBe(false)

    // Shown: the next consent renews and keeps that Key.
    const renewed = await upsertDelegatedRegistration(store, consent(tenantId, userOid, 'rt-3'))
    expect(renewed).toMatchObject({ reused: true })
    expect((await store.registrations.get(lost.registration.id))?.secrets.key).toBe(retry.key)
  })
})

describe('Redis store: audit stream', () => {
  it('caps the stream approximately at auditMaxLen', async () => {
    const redis = await connect()
    const keyPrefix = `t${randomBytes(6).toString('hex')}:`
    const store = createRedisStore({ redis, keyRing: newKeyRing(), keyPrefix, auditMaxLen: 10 })
    for (let i = 0; i < 600; i++)
      await store.audit.append({ type: 'operator.signed_in', actor: `operator:${i}` })
    const length = await redis.xlen(`${keyPrefix}audit`)
    expect(length).toBeGreaterThanOrEqual(10)
    expect(length).toBeLessThan(600)
    // the newest events survive
    const all = await store.audit.read({ limit: 500 })
    expect(all.items.at(-1)?.actor).toBe('operator:599')
  })
})

describe('Redis connection', () => {
  let server: RedisServerHandle
  beforeAll(async () => {
    server = await startRedisServer({
      args: [
        '--requirepass',
        'default-secret',
        '--user',
        'broker',
        'on',
        '>broker-secret',
        '~*',
        '&*',
        '+@all',
      ],
      password: 'default-secret',
    })
  })
  afterAll(async () => {
    await server?.destroy()
  })

  it('accepts exactly one topology', () => {
    expect(() => createRedisConnection({})).toThrow(/exactly one/)
    expect(() =>
      createRedisConnection({ url: 'redis://127.0.0.1:1', clusterNodes: [{ host: '127.0.0.1', port: 1 }] }),
    ).toThrow(/exactly one/)
    expect(() => createRedisConnection({ url: 'http://127.0.0.1:1' })).toThrow(/redis:\/\//)
    expect(() => createRedisConnection({ sentinels: [{ host: '127.0.0.1', port: 1 }] })).toThrow(
      /sentinelName/,
    )
  })

  it('auto-pipelines: the commands of one tick are queued for one write, replies in order', async () => {
    const redis = await connect()
    const key = `t${randomBytes(6).toString('hex')}:pipelined`
    const replies = Promise.all([redis.set(key, '1', 'PX', 60_000), redis.incr(key), redis.get(key)])
    // Not written yet: they wait for the end of this tick, to go out together.
    expect(redis.autoPipelineQueueSize).toBe(3)
    expect(await replies).toEqual(['OK', 2, '2'])
    expect(redis.autoPipelineQueueSize).toBe(0)
  })

  it('authenticates with the password or ACL user from the URL', async () => {
    const withPassword = createRedisConnection({ url: `redis://:default-secret@127.0.0.1:${server.port}` })
    clients.push(withPassword)
    await waitForReady(withPassword, 10_000)
    expect(await withPassword.ping()).toBe('PONG')

    const withUser = createRedisConnection({
      url: `redis://broker:${encodeURIComponent('broker-secret')}@127.0.0.1:${server.port}`,
      connectionName: 'consent-broker-test',
    })
    clients.push(withUser)
    await waitForReady(withUser, 10_000)
    expect(await (withUser as Redis).acl('WHOAMI')).toBe('broker')
    expect(await (withUser as Redis).client('GETNAME')).toBe('consent-broker-test')

    // options override the URL's credentials
    const overridden = createRedisConnection({
      url: `redis://nobody:wrong@127.0.0.1:${server.port}`,
      username: 'broker',
      password: 'broker-secret',
    })
    clients.push(overridden)
    await waitForReady(overridden, 10_000)
    expect(await overridden.ping()).toBe('PONG')
  })

  it('reports a connection that never gets ready', async () => {
    const wrong = createRedisConnection({
      url: `redis://:not-the-password@127.0.0.1:${server.port}`,
      onError: () => {},
    })
    clients.push(wrong)
    await expect(waitForReady(wrong, 1500)).rejects.toThrow(/not ready within 1500 ms/)
  })

  it('fails fast while Redis is down and recovers when it returns', async () => {
    const flaky = await startRedisServer()
    try {
      const redis = createRedisConnection({ url: flaky.url, onError: () => {}, commandTimeoutMs: 2000 })
      clients.push(redis)
      await waitForReady(redis, 10_000)
      const store = createRedisStore({ redis, keyRing: newKeyRing(), keyPrefix: 'outage:' })
      await store.ephemeral.put('k', 'v', 60_000)

      await flaky.kill('SIGKILL')
      const started = Date.now()
      await expect(store.ping()).rejects.toThrow()
      await expect(store.ephemeral.get('k')).rejects.toThrow()
      expect(Date.now() - started).toBeLessThan(10_000) // bounded, not hanging

      await flaky.restart()
      await waitForReady(redis, 15_000)
      await expect(store.ping()).resolves.toBeUndefined()
      // a fresh server (no AOF): the value is gone, but the store works again
      expect(await store.ephemeral.get('k')).toBeNull()
      await store.ephemeral.put('k', 'v2', 60_000)
      expect(await store.ephemeral.get('k')).toBe('v2')
    } finally {
      await flaky.destroy()
    }
  })

  it('keeps data across a restart with appendonly', async () => {
    const durable = await startRedisServer({ appendOnly: true })
    try {
      const redis = createRedisConnection({ url: durable.url, onError: () => {} })
      clients.push(redis)
      await waitForReady(redis, 10_000)
      const store = createRedisStore({ redis, keyRing: newKeyRing(), keyPrefix: 'durable:' })
      const registration = sampleRegistration()
      const secrets = sampleSecrets()
      await store.registrations.create(registration, secrets)
      await durable.stop() // graceful: the AOF is flushed
      await durable.restart()
      await waitForReady(redis, 15_000)
      expect((await store.registrations.get(registration.id))?.secrets).toEqual(secrets)
    } finally {
      await durable.destroy()
    }
  })
})
