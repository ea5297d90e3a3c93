// Master-key rotation against real Redis and the emulator: re-seal every secret under the new key
// while two instances serve obtain-token under load (no request lost), leave nothing under the old
// key (Redis scanned for `v1.<oldKeyId>.`), work with the old key removed afterwards, and resume an
// interrupted pass where it stopped.
import { randomBytes, randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { type RunningEmulator, startEmulator } from '../../emulator/server.js'
import type { RedisClient } from '../../src/store/redis-connection.js'
import type { Registration } from '../../src/store/types.js'
import { bearer, obtainToken, operatorToken } from '../support/admin-helpers.js'
import { type ConsentValues, consentViaEmulator, type RunningBroker, startBroker } from '../support/broker.js'

const OPERATOR = operatorToken('ops')
const COOKIE_SECRET = randomBytes(32).toString('hex')
const masterKey = (id: string) => `${id}:${randomBytes(32).toString('base64')}`

let emulator: RunningEmulator
const running: RunningBroker[] = []

async function broker(keyPrefix: string, masterKeys: string): Promise<RunningBroker> {
  const started = await startBroker({
    authorityUrl: emulator.url,
    redisUrl: inject('redisUrl'),
    keyPrefix,
    env: {
      MASTER_KEYS: masterKeys,
      COOKIE_SECRET,
      OPERATOR_TOKENS: `ops:${OPERATOR}`,
      // The load below is a test harness, not abuse: keep the rate limits out of the picture.
      RATE_LIMIT_PER_REGISTRATION: '1000000',
      RATE_LIMIT_PER_IP: '1000000',
    },
  })
  running.push(started)
  return started
}

async function close(instance: RunningBroker) {
  running.splice(running.indexOf(instance), 1)
  await instance.close()
}

/** Every value stored under the prefix, whatever its type, that contains `needle`. */
async function keysHolding(redis: RedisClient, prefix: string, needle: string): Promise<string[]> {
  const found: string[] = []
  let cursor = '0'
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', '500')
    cursor = next
    for (const key of keys) {
      const type = await redis.type(key)
      let values: string[] = []
      if (type === 'string') values = [(await redis.get(key)) ?? '']
      else if (type === 'hash') values = Object.values(await redis.hgetall(key))
      else if (type === 'zset') values = await redis.zrange(key, '0', '-1')
      else if (type === 'set') values = await redis.smembers(key)
      else if (type === 'list') values = await redis.lrange(key, 0, -1)
      else if (type === 'stream') values = (await redis.xrange(key, '-', '+')).flatMap(([, fields]) => fields)
      if (values.some((value) => value.includes(needle))) found.push(key)
    }
  } while (cursor !== '0')
  return found
}

/** Registrations written straight into the store (more than one rotation batch of 100), 25 at a time. */
async function seedRegistrations(instance: RunningBroker, count: number): Promise<Registration[]> {
  const out: Registration[] = []
  const base = Date.now()
  const one = async (i: number) => {
    const at = new Date(base + i).toISOString()
    const delegated = i % 3 === 0
    const result = await instance.store.registrations.create(
      {
        id: randomUUID(),
        app: delegated ? 'ms-graph-mail-listener' : 'ms-graph-user',
        cloud: 'global',
        tenantId: randomUUID(),
        kind: delegated ? 'delegated' : 'admin',
        ...(delegated ? { userOid: randomUUID(), userName: `user${i}@example.test` } : {}),
        status: 'active',
        createdAt: at,
        updatedAt: at,
        consentedAt: at,
      },
      {
        key: randomBytes(32).toString('base64'),
        ...(delegated ? { refreshToken: `refresh-${randomBytes(16).toString('hex')}` } : {}),
      },
    )
    if (!result.created) throw new Error('seed registration not created')
    return result.registration
  }
  for (let from = 0; from < count; from += 25) {
    const size = Math.min(25, count - from)
    out.push(...(await Promise.all(Array.from({ length: size }, (_, i) => one(from + i)))))
  }
  return out
}

type Rotation = {
  state: string
  scanned: number
  resealed: number
  unchanged: number
  failed: number
} & Record<string, unknown>

async function rotation(instance: RunningBroker): Promise<Rotation> {
  const response = await instance.app.inject({ url: '/admin/api/keys/rotation', headers: bearer(OPERATOR) })
  expect(response.statusCode).toBe(200)
  return (response.json() as { rotation: Rotation }).rotation
}

async function startRotation(instance: RunningBroker): Promise<{ rotation: Rotation; started: boolean }> {
  const response = await instance.app.inject({
    method: 'POST',
    url: '/admin/api/keys/rotate',
    headers: bearer(OPERATOR),
  })
  expect(response.statusCode).toBe(202)
  return response.json() as { rotation: Rotation; started: boolean }
}

async function waitForCompletion(instance: RunningBroker, timeoutMs = 30_000): Promise<Rotation> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const status = await rotation(instance)
    if (status.state === 'completed' || status.state === 'failed') return status
    if (Date.now() > deadline) throw new Error(`rotation still ${status.state} after ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

beforeAll(async () => {
  emulator = await startEmulator({ port: 0 })
})

afterAll(async () => {
  for (const instance of [...running]) await instance.close()
  await emulator?.close()
})

describe('key rotation', () => {
  it('re-seals everything under the new key while obtain-token is under load, losing no request', async () => {
    const prefix = `test:${randomBytes(6).toString('hex')}:`
    const k1 = masterKey('k1')
    const k2 = masterKey('k2')

    // Before: one instance with k1 only; real consents of both kinds, tokens cached, and many more
    // registrations than one batch.
    const old = await broker(prefix, k1)
    const consents: Array<[ConsentValues, string]> = [
      [
        await consentViaEmulator(old.app, { slug: 'ms-graph-mail', username: 'admin@contoso.example' }),
        'ms-graph-mail',
      ],
      [
        await consentViaEmulator(old.app, { slug: 'ms-graph-user', username: 'admin@fabrikam.example' }),
        'ms-graph-user',
      ],
      [
        await consentViaEmulator(old.app, {
          slug: 'ms-graph-mail-listener',
          username: 'user@contoso.example',
        }),
        'ms-graph-mail-listener',
      ],
      [
        await consentViaEmulator(old.app, {
          slug: 'ms-graph-mail-listener',
          username: 'user@fabrikam.example',
        }),
        'ms-graph-mail-listener',
      ],
    ]
    for (const [values, app] of consents) expect((await obtainToken(old.app, values, app)).status).toBe(200)
    const seeded = await seedRegistrations(old, 230)
    await close(old)

    // Every instance restarts with k2 first and k1 still listed.
    const a = await broker(prefix, `${k2},${k1}`)
    const b = await broker(prefix, `${k2},${k1}`)
    const watcher = a.redis!
    expect((await keysHolding(watcher, prefix, 'v1.k1.')).length).toBeGreaterThan(230)

    const results: Array<{ status: number; code: string | undefined }> = []
    let stop = false
    const load = async (instance: RunningBroker, values: ConsentValues, app: string) => {
      while (!stop) {
        const answer = await obtainToken(instance.app, values, app)
        results.push({ status: answer.status, code: answer.body.error?.code })
      }
    }
    const workers = consents.flatMap(([values, app]) => [load(a, values, app), load(b, values, app)])
    await new Promise((resolve) => setTimeout(resolve, 100))

    const started = await startRotation(a)
    expect(started.started).toBe(true)
    expect(started.rotation).toMatchObject({
      state: 'running',
      keyId: 'k2',
      currentKeyId: 'k2',
      oldKeyIds: ['k1'],
    })
    // A second start while it runs (here: through the other instance) doesn't start another pass.
    expect((await startRotation(b)).started).toBe(false)
    const done = await waitForCompletion(b)
    await new Promise((resolve) => setTimeout(resolve, 100))
    stop = true
    await Promise.all(workers)

    expect(done.state).toBe('completed')
    expect(done.failed).toBe(0)
    expect(done.scanned).toBe(seeded.length + consents.length)
    expect(done.resealed).toBe(seeded.length + consents.length)
    expect(results.length).toBeGreaterThan(20)
    expect(results.filter((r) => r.status !== 200)).toEqual([])

    // Nothing anywhere under the prefix is sealed under the old key any more.
    expect(await keysHolding(watcher, prefix, 'v1.k1.')).toEqual([])
    expect((await keysHolding(watcher, prefix, 'v1.k2.')).length).toBeGreaterThan(230)

    // The old key can go: an instance with k2 alone opens everything and serves every consent.
    const after = await broker(prefix, k2)
    for (const [values, app] of consents) expect((await obtainToken(after.app, values, app)).status).toBe(200)
    for (const registration of seeded.slice(0, 20)) {
      const stored = await after.store.registrations.get(registration.id)
      expect(stored?.secrets.key).toMatch(/^[A-Za-z0-9+/]{43}=$/)
    }

    const audit = await after.app.inject({ url: '/admin/api/audit?limit=500', headers: bearer(OPERATOR) })
    const phases = (
      audit.json() as { items: Array<{ type: string; actor: string; detail?: { phase?: string } }> }
    ).items
      .filter((e) => e.type === 'keys.rotated')
      .map((e) => [e.actor, e.detail?.phase])
    expect(phases).toEqual([
      ['operator:ops', 'started'],
      ['operator:ops', 'completed'],
    ])
  })

  it('resumes an interrupted pass where it stopped', async () => {
    const prefix = `test:${randomBytes(6).toString('hex')}:`
    const k3 = masterKey('k3')
    const k4 = masterKey('k4')
    const old = await broker(prefix, k3)
    // ten batches: a pass is a few round trips per batch, so fewer could all be done before the
    // shutdown below reaches it (test/integration/key-rotation-batch.test.ts stops it exactly)
    const seeded = await seedRegistrations(old, 1000)
    await close(old)

    const x = await broker(prefix, `${k4},${k3}`)
    const y = await broker(prefix, `${k4},${k3}`)
    expect((await startRotation(x)).started).toBe(true)
    // The instance shuts down mid-pass: it stops at a batch boundary and saves its place.
    await close(x)
    const interrupted = await rotation(y)
    expect(interrupted.state).toBe('interrupted')
    expect(interrupted.scanned).toBeGreaterThan(0)
    expect(interrupted.scanned).toBeLessThan(seeded.length)
    const remainingBefore = await keysHolding(y.redis!, prefix, 'v1.k3.')
    expect(remainingBefore.length).toBeGreaterThan(0)

    const resumed = await startRotation(y)
    expect(resumed.started).toBe(true)
    expect(resumed.rotation.scanned).toBe(interrupted.scanned)
    const done = await waitForCompletion(y)
    expect(done).toMatchObject({ state: 'completed', failed: 0, scanned: seeded.length })
    expect(done.resealed).toBe(seeded.length)
    expect(await keysHolding(y.redis!, prefix, 'v1.k3.')).toEqual([])

    // Another start is a fresh pass that finds nothing left to do.
    await startRotation(y)
    const again = await waitForCompletion(y)
    expect(again).toMatchObject({
      state: 'completed',
      scanned: seeded.length,
      resealed: 0,
      unchanged: seeded.length,
    })
  })

  it('reports, by id, registrations sealed under a key that is no longer in the ring', async () => {
    const prefix = `test:${randomBytes(6).toString('hex')}:`
    const lostKey = masterKey('k5')
    const k6 = masterKey('k6')
    const k7 = masterKey('k7')
    const lost = await broker(prefix, lostKey)
    const orphans = await seedRegistrations(lost, 3)
    await close(lost)
    const kept = await broker(prefix, k6)
    const healthy = await seedRegistrations(kept, 2)
    await close(kept)

    // k5 was dropped from MASTER_KEYS too early: its registrations can't be opened any more.
    const z = await broker(prefix, `${k7},${k6}`)
    const keysBefore = new Map<string, string | undefined>()
    for (const registration of healthy) {
      keysBefore.set(registration.id, (await z.store.registrations.get(registration.id))?.secrets.key)
    }
    await startRotation(z)
    const done = await waitForCompletion(z)
    expect(done).toMatchObject({ state: 'completed', scanned: 5, resealed: 2, failed: 3 })
    expect((done.failedIds as string[]).sort()).toEqual(orphans.map((r) => r.id).sort())
    for (const registration of healthy) {
      // Re-sealed under k7 and still opening to the same Key (32 bytes, standard base64).
      const before = keysBefore.get(registration.id)
      expect(before).toMatch(/^[A-Za-z0-9+/]{43}=$/)
      expect((await z.store.registrations.get(registration.id))?.secrets.key).toBe(before)
    }
    expect(await keysHolding(z.redis!, prefix, 'v1.k6.')).toEqual([])
  })
})
