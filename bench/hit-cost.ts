// CPU per request of the obtain-token cache hit against the floor (bench/targets.ts), both driven
// in this process with Fastify's `inject` (no sockets, no load generator): what the broker's own
// work per hit costs, robust to network noise and a busy machine. Not a throughput figure — `npm
// run bench` measures that over real connections; this one is for finding and checking cuts.
// Rounds alternate floor and hit; each round sends `--requests` requests, `--concurrency` at a time,
// and reads the process's CPU time (user + system). Redis runs in its own process (not counted).
//
//   npx tsx bench/hit-cost.ts [--requests 20000] [--concurrency 50] [--rounds 5] [--log-level info]
//   [--only hit] (with valgrind: `valgrind --tool=callgrind --collect-atstart=no`, and the
//   measured requests are bracketed by callgrind_control -i on/off)
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { loadavg } from 'node:os'
import { parseArgs } from 'node:util'
import type { FastifyInstance } from 'fastify'
import { pino } from 'pino'
import { startEmulator } from '../emulator/server.js'
import { type Env, loadConfig } from '../src/config.js'
import { createAdminRegistration, integrationId } from '../src/services/registrations.js'
import { createRedisStore } from '../src/store/redis.js'
import { createRedisConnection } from '../src/store/redis-connection.js'
import { DEMO_APPS_FILE, DEMO_CLIENT_SECRET_ENV } from '../test/support/config.js'
import { startRedisServer } from '../test/support/redis-server.js'
import { encryptContent } from '../test/support/xsoar-client.js'
import { buildTarget } from './targets.js'

const { values: args } = parseArgs({
  options: {
    requests: { type: 'string', default: '20000' },
    concurrency: { type: 'string', default: '50' },
    rounds: { type: 'string', default: '5' },
    'log-level': { type: 'string', default: 'info' },
    only: { type: 'string' },
    callgrind: { type: 'boolean', default: false },
  },
})
const REQUESTS = Number(args.requests)
const CONCURRENCY = Number(args.concurrency)
const ROUNDS = Number(args.rounds)
const CONTOSO = '7c3b1e5a-4d2f-4b8e-9a61-2f0c8d4e6b13'
const MAIL_CLIENT_ID = '0b1e6a52-7c3d-4f8e-9a10-000000000001'
const HEADERS = {
  'content-type': 'application/json',
  'x-content-name': 'bench',
  'x-content-version': '1.0.0',
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** Sends every body, `CONCURRENCY` in flight; returns CPU µs per request. */
async function drive(app: FastifyInstance, url: string, bodies: string[]): Promise<number> {
  let next = 0
  let failure: string | undefined
  const worker = async () => {
    while (next < bodies.length) {
      const payload = bodies[next++]!
      const response = await app.inject({ method: 'POST', url, headers: HEADERS, payload })
      if (response.statusCode !== 200 && failure === undefined)
        failure = `${response.statusCode} ${response.body}`
    }
  }
  const before = process.cpuUsage()
  if (args.callgrind) execFileSync('callgrind_control', ['-i', 'on', String(process.pid)])
  await Promise.all(Array.from({ length: CONCURRENCY }, worker))
  if (args.callgrind) execFileSync('callgrind_control', ['-i', 'off', String(process.pid)])
  const used = process.cpuUsage(before)
  if (failure !== undefined) throw new Error(`${url}: ${failure}`)
  return (used.user + used.system) / bodies.length
}

async function main(): Promise<void> {
  const redis = await startRedisServer({ appendOnly: false })
  const emulator = await startEmulator({ port: 0 })
  const apps: FastifyInstance[] = []
  try {
    const keyPrefix = `bench:${randomBytes(4).toString('hex')}:`
    const env: Env = {
      PUBLIC_URL: 'http://127.0.0.1:3000',
      MASTER_KEYS: `k1:${randomBytes(32).toString('base64')}`,
      COOKIE_SECRET: randomBytes(32).toString('hex'),
      APPS_FILE: DEMO_APPS_FILE,
      AUTHORITY_URL_GLOBAL: emulator.url,
      AUTHORITY_URL_USGOV: emulator.url,
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: keyPrefix,
      RATE_LIMIT_PER_REGISTRATION: '1000000',
      RATE_LIMIT_PER_IP: '1000000',
      ...DEMO_CLIENT_SECRET_ENV,
    }
    const config = loadConfig(env)
    const store = createRedisStore({
      redis: createRedisConnection({ url: redis.url }),
      keyRing: config.keyRing,
      keyPrefix,
    })
    await fetch(`${emulator.url}/_emulator/tenants/${CONTOSO}/admin-consent`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ clientId: MAIL_CLIENT_ID }),
    })
    const { registration, key } = await createAdminRegistration(store, {
      app: 'ms-graph-mail',
      cloud: 'global',
      tenantId: CONTOSO,
      now: new Date().toISOString(),
    })
    // Both targets log to the same discarding destination, synchronously, as the bench's do.
    const sink = pino.destination({ dest: '/dev/null', sync: true })
    const logLevel = args['log-level']
    const floor = await buildTarget({ mode: 'floor', env, logLevel, key }, sink)
    const broker = await buildTarget({ mode: 'broker', env, logLevel }, sink)
    apps.push(floor, broker)
    await Promise.all([floor.ready(), broker.ready()])
    const id = integrationId(registration.id, config.publicUrl).split('@')[0]!
    const bodies = (count: number) => {
      const now = Math.floor(Date.now() / 1000)
      return Array.from({ length: count }, () =>
        JSON.stringify({
          app_name: 'ms-graph-mail',
          registration_id: id,
          encrypted_token: encryptContent(CONTOSO, key, now),
          scope: null,
          resource: '',
        }),
      )
    }
    // Prime the cache (the hit path's one upstream call) and warm both up.
    await drive(broker, '/obtain-token', bodies(1))
    await drive(floor, '/json', bodies(Math.min(REQUESTS, 5000)))
    await drive(broker, '/obtain-token', bodies(Math.min(REQUESTS, 5000)))
    const floorRuns: number[] = []
    const hitRuns: number[] = []
    for (let round = 1; round <= ROUNDS; round++) {
      if (args.only !== 'hit') floorRuns.push(await drive(floor, '/json', bodies(REQUESTS)))
      if (args.only !== 'floor') hitRuns.push(await drive(broker, '/obtain-token', bodies(REQUESTS)))
      console.error(
        `round ${round}: floor ${floorRuns.at(-1)?.toFixed(1) ?? '-'} µs, hit ${hitRuns.at(-1)?.toFixed(1) ?? '-'} µs CPU per request`,
      )
    }
    const f = floorRuns.length > 0 ? median(floorRuns) : Number.NaN
    const h = hitRuns.length > 0 ? median(hitRuns) : Number.NaN
    console.error(
      `medians of ${ROUNDS} × ${REQUESTS} requests (${CONCURRENCY} in flight): floor ${f.toFixed(1)} µs, hit ${h.toFixed(1)} µs CPU per request; floor / hit ${(f / h).toFixed(2)}; load ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}`,
    )
  } finally {
    for (const app of apps) await app.close()
    await emulator.close()
    await redis.destroy()
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error)
    process.exit(1)
  },
)
