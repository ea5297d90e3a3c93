// `npm run bench:scale`: how the broker's costs grow with the number of registrations. Seeds
// realistic registrations through the store code (bench/scale-seed.ts) into one Redis and, at each
// size (1 000, 10 000, 100 000 … up to --registrations), measures: Redis memory per registration,
// operator reads over HTTP (listing pages, a deep cursor, filters, tenants pages, audit, the
// console), the registrations gauge scrape, instance start-up to ready, obtain-token cache-hit
// latency (against the same with 10 registrations), a keep-alive pass over every delegated
// registration against the emulator, and a master-key rotation over all of them while obtain-token
// traffic runs. Writes bench/SCALE.md with the machine it ran on. It measures; it asserts nothing.
//
//   npm run bench:scale -- [--registrations 100000] [--redis-url redis://…] [--prefix scale:]
//                          [--keep] [--seed-only] [--sample-file PATH] [--public-url URL] [--out PATH]
//
// Without --redis-url it starts its own redis-server (temporary directory, free port) and removes
// it at the end; --keep (leave the data) and --seed-only (seed N, measure nothing) need
// --redis-url. The data is then served by the demo on the same Redis, with the demo's apps and
// master key (the last rotation ends on it):   REDIS_URL=… REDIS_KEY_PREFIX=scale: npm run demo
// --sample-file writes 10 admin-consent registrations of the demo tenants (Contoso, Fabrikam) as
// JSON lines {id, token, key, app}, `id` being the integration's ID field for --public-url (the
// demo's http://127.0.0.1:3000 by default). The demo's fresh emulator needs the tenants' admin
// consent once before it issues their tokens (the bench prints the two commands).
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, totalmem } from 'node:os'
import { CONTOSO_TENANT_ID } from '../emulator/demo-data.js'
import { type RunningEmulator, startEmulator } from '../emulator/server.js'
import { type Config, type Env, loadConfig } from '../src/config.js'
import { createEntraIdentityProvider } from '../src/entra/identity-provider.js'
import { createLogger } from '../src/logger.js'
import { createMetrics } from '../src/metrics.js'
import { createServices } from '../src/services/create-services.js'
import { integrationId } from '../src/services/registrations.js'
import { createRedisStore } from '../src/store/redis.js'
import { createRedisConnection, type RedisClient, waitForReady } from '../src/store/redis-connection.js'
import type { Store } from '../src/store/types.js'
import { type BrokerProcess, ensureBuilt, findFreePort, spawnBroker } from '../test/support/broker-process.js'
import { DEMO_APPS_FILE, DEMO_CLIENT_SECRET_ENV } from '../test/support/config.js'
import { startRedisServer } from '../test/support/redis-server.js'
import { XsoarClient } from '../test/support/xsoar-client.js'
import { benchOptions, integerOption, usageError } from './options.js'
import { parallel, population, type Seeded, seed } from './scale-seed.js'
import {
  infoField,
  log,
  quantile,
  scanKeys,
  sectionBounds,
  sleep,
  UPGRADE_HEADING,
  usedMemory,
} from './support.js'

const USAGE = `usage: npm run bench:scale -- [--registrations N] [--redis-url URL] [--prefix P] [--keep]
                              [--seed-only] [--sample-file PATH] [--public-url URL] [--out PATH]
                              [--concurrency N]
  --registrations  the largest size measured (≥ 20)                       default 100000
  --redis-url      an existing Redis (default: its own, removed at exit)
  --prefix         key prefix in that Redis (no { or })                   default scale:
  --keep           leave the data (needs --redis-url)
  --seed-only      seed, measure nothing (needs --redis-url)
  --sample-file    write 10 demo-tenant registrations as JSON lines
  --public-url     the public URL their ID field names                    default http://127.0.0.1:3000
  --out            where the figures go                                   default bench/SCALE.md
  --concurrency    operations in flight while seeding and caching tokens  default 24`
const args = benchOptions(USAGE, {
  registrations: { type: 'string', default: '100000' },
  'redis-url': { type: 'string' },
  prefix: { type: 'string', default: 'scale:' },
  keep: { type: 'boolean', default: false },
  'seed-only': { type: 'boolean', default: false },
  'sample-file': { type: 'string' },
  'public-url': { type: 'string', default: 'http://127.0.0.1:3000' },
  out: { type: 'string', default: new URL('./SCALE.md', import.meta.url).pathname },
  concurrency: { type: 'string', default: '24' },
})
const TOTAL = integerOption(USAGE, 'registrations', args.registrations, 20)
if ((args.keep || args['seed-only']) && args['redis-url'] === undefined) {
  usageError(USAGE, '--keep and --seed-only need --redis-url: the bench removes its own Redis at exit')
}
const PREFIX = args.prefix
if (/[{}]/.test(PREFIX)) usageError(USAGE, '--prefix must not contain { or }')
const CONCURRENCY = integerOption(USAGE, 'concurrency', args.concurrency, 1, 10_000)
const SIZES = [...new Set([1000, 10_000, 100_000, 1_000_000].filter((n) => n < TOTAL).concat(TOTAL))]
const OPERATOR_TOKEN = `bench-${randomBytes(16).toString('hex')}`
/** Sequential requests per timed operator read (median and p95 reported). */
const READ_REPEATS = 15
/** Sequential obtain-token requests of a cache-hit measurement. */
const HIT_REQUESTS = 400
/** Registrations that get a cached token for the memory figure. */
const CACHED_TOKEN_SAMPLE = 10_000
/**
 * A rotation or keep-alive pass still running after this is stopped and reported as it stands
 * (its rate, and how many it covered): on this shared 2-core machine a full keep-alive pass at
 * 100 000 takes longer than a run can (it is paced by the upstream rate cap). A rotation re-seals
 * a batch in a few round trips and fits the budget at 100 000 unless the machine is very busy.
 */
const ROTATION_BUDGET_MS = 6 * 60_000
const KEEPALIVE_BUDGET_MS = 4 * 60_000

// The demo's fixed values (scripts/demo.ts derives them the same way), so the data stays servable
// by `npm run demo`. The other key exists only to rotate away from the demo key and back.
const demoDerived = (label: string) => createHash('sha256').update(`consent-broker demo ${label}`).digest()
const DEMO_KEY = `demo:${demoDerived('master key').toString('base64')}`
const OTHER_KEY = `scale:${createHash('sha256').update('consent-broker scale bench key').digest().toString('base64')}`
const COOKIE_SECRET = demoDerived('cookie secret').toString('hex')

/** The machine's load when the run started (reported beside the load at the end). */
const START_LOAD = loadavg()

// ---- measuring ------------------------------------------------------------------------------------

interface Timing {
  median: number
  p95: number
}

/** Runs `once` `repeats` times in a row; milliseconds. */
async function timed(repeats: number, once: () => Promise<void>): Promise<Timing> {
  const times: number[] = []
  for (let i = 0; i < repeats; i++) {
    const start = performance.now()
    await once()
    times.push(performance.now() - start)
  }
  return { median: quantile(times, 0.5), p95: quantile(times, 0.95) }
}

const ms = (value: number) =>
  value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2)
const timing = (t: Timing) => `${ms(t.median)} (p95 ${ms(t.p95)})`

/** One row of the report: a label, and the figure at each size. */
type Rows = Map<string, Map<number, string>>
const rows: Rows = new Map()
function record(label: string, size: number, value: string): void {
  const row = rows.get(label) ?? new Map<number, string>()
  row.set(size, value)
  rows.set(label, row)
  log(`  ${label}: ${value}`)
}
/** Raw figures the goal checks read. */
const figures = new Map<string, number>()

// ---- Redis, brokers, stores ---------------------------------------------------------------------

function brokerEnv(options: {
  port: number
  metricsPort: number
  redisUrl: string
  emulatorUrl: string
  keys: string
}): Env {
  return {
    PUBLIC_URL: `http://127.0.0.1:${options.port}`,
    HOST: '127.0.0.1',
    PORT: String(options.port),
    METRICS_PORT: String(options.metricsPort),
    REDIS_URL: options.redisUrl,
    REDIS_KEY_PREFIX: PREFIX,
    MASTER_KEYS: options.keys,
    COOKIE_SECRET,
    APPS_FILE: DEMO_APPS_FILE,
    AUTHORITY_URL_GLOBAL: options.emulatorUrl,
    AUTHORITY_URL_USGOV: options.emulatorUrl,
    AUTHORITY_URL_DOD: options.emulatorUrl,
    AUTHORITY_URL_CHINA: options.emulatorUrl,
    OPERATOR_TOKENS: `bench:${OPERATOR_TOKEN}`,
    METRICS_REGISTRATIONS_INTERVAL_SECONDS: '0',
    // no keep-alive pass in the measured instance (the bench runs its own), no limit in the way
    KEEPALIVE_INTERVAL_SECONDS: '86400',
    RATE_LIMIT_PER_REGISTRATION: '1000000',
    RATE_LIMIT_PER_IP: '1000000',
    LOG_LEVEL: 'warn',
    ...DEMO_CLIENT_SECRET_ENV,
  }
}

function configOf(env: Env, prefix = PREFIX): Config {
  return loadConfig({ ...env, REDIS_KEY_PREFIX: prefix, LOG_LEVEL: 'silent' })
}

async function openStore(config: Config, prefix = PREFIX): Promise<{ store: Store; redis: RedisClient }> {
  const url = config.redis?.url
  if (url === undefined) throw new Error('the bench needs a Redis URL')
  const redis = createRedisConnection({ url, connectionName: 'bench-scale' })
  await waitForReady(redis, 10_000)
  return { redis, store: createRedisStore({ redis, keyRing: config.keyRing, keyPrefix: prefix }) }
}

/** Σ MEMORY USAGE (exact: SAMPLES 0) of `keys`. */
async function memoryOf(redis: RedisClient, keys: readonly string[]): Promise<number> {
  let total = 0
  for (let i = 0; i < keys.length; i += 1000) {
    const pipeline = redis.pipeline()
    for (const key of keys.slice(i, i + 1000)) pipeline.call('MEMORY', 'USAGE', key, 'SAMPLES', '0')
    for (const [error, value] of (await pipeline.exec()) ?? []) {
      if (error) throw error
      total += Number(value ?? 0)
    }
  }
  return total
}

async function api(broker: BrokerProcess, path: string): Promise<Record<string, unknown>> {
  const response = await fetch(`${broker.url}${path}`, {
    headers: { authorization: `Bearer ${OPERATOR_TOKEN}` },
  })
  const body = (await response.json()) as Record<string, unknown>
  if (response.status !== 200) throw new Error(`GET ${path}: ${response.status} ${JSON.stringify(body)}`)
  return body
}

// ---- the measurements of one size ------------------------------------------------------------------

async function measureMemory(redis: RedisClient, size: number, baseline: number, seeded: readonly Seeded[]) {
  const delta = (await usedMemory(redis)) - baseline
  record('Redis used_memory growth per registration (B)', size, (delta / size).toFixed(0))
  // per kind: the record hash (MEMORY USAGE), plus the indexes' share
  const sample = (kind: 'admin' | 'delegated') =>
    seeded.filter((s) => s.plan.kind === kind && s.plan.status !== 'revoked').slice(0, 300)
  const recordKey = (id: string) => `${PREFIX}reg:{${id}}`
  const admin = sample('admin')
  const delegated = sample('delegated')
  const adminRecord =
    (await memoryOf(
      redis,
      admin.map((s) => recordKey(s.id)),
    )) / admin.length
  const delegatedRecord =
    (await memoryOf(
      redis,
      delegated.map((s) => recordKey(s.id)),
    )) / delegated.length
  // the sealed refresh token is stored in 64-byte chunks R0, R1, … (src/store/redis/record-layout.ts)
  let sealedRefresh = 0
  for (const s of delegated) {
    const fields = await redis.hgetall(recordKey(s.id))
    for (const [field, value] of Object.entries(fields))
      if (/^R\d+$/.test(field) || field === 'refreshToken') sealedRefresh += value.length
  }
  sealedRefresh /= delegated.length
  const encodings = new Map<string, number>()
  for (const s of [...admin, ...delegated]) {
    const encoding = String(await redis.call('OBJECT', 'ENCODING', recordKey(s.id)))
    encodings.set(encoding, (encodings.get(encoding) ?? 0) + 1)
  }
  const indexKeys = await scanKeys(redis, `${PREFIX}{idx}:*`)
  // the delegated-only keys: uniqueness claims and the idle index (buckets, or the one key of earlier versions)
  const isClaim = (key: string) => key.startsWith(`${PREFIX}{idx}:dlg:`) || key === `${PREFIX}{idx}:delegated`
  const isIdle = (key: string) => key.startsWith(`${PREFIX}{idx}:idle:`) || key === `${PREFIX}{idx}:idle`
  const delegatedOnly = (key: string) => isClaim(key) || isIdle(key)
  const sharedIndex = await memoryOf(
    redis,
    indexKeys.filter((key) => !delegatedOnly(key)),
  )
  const delegatedIndex = await memoryOf(redis, indexKeys.filter(delegatedOnly))
  const delegatedCount = seeded.filter((s) => s.plan.kind === 'delegated').length
  const adminTotal = adminRecord + sharedIndex / size
  const delegatedBeyond =
    delegatedRecord - sealedRefresh + sharedIndex / size + delegatedIndex / delegatedCount
  figures.set(`admin-bytes:${size}`, adminTotal)
  figures.set(`delegated-beyond:${size}`, delegatedBeyond)
  record('admin-consent registration: record + index share (B)', size, adminTotal.toFixed(0))
  record('delegated: record + indexes beyond the sealed refresh token (B)', size, delegatedBeyond.toFixed(0))
  record('delegated: sealed refresh token, its chunks (B)', size, sealedRefresh.toFixed(0))
  record(
    'record hash, admin / delegated (B; encodings of the sample)',
    size,
    `${adminRecord.toFixed(0)} / ${delegatedRecord.toFixed(0)} (${[...encodings]
      .map(([encoding, count]) => `${count} ${encoding}`)
      .join(', ')})`,
  )
  // where the index bytes go, per registration (delegated-only ones per delegated registration)
  const share = async (pattern: (key: string) => boolean, per: number) =>
    (await memoryOf(redis, indexKeys.filter(pattern))) / per
  const idx = `${PREFIX}{idx}:`
  const parts = [
    ['app × status', await share((key) => key.startsWith(`${idx}as:`) || key === `${idx}apps`, size)],
    ['tenant × app × status', await share((key) => key.startsWith(`${idx}ts:`), size)],
    [
      'tenant ids (overall, per app)',
      await share((key) => key === `${idx}tenant-ids` || key.startsWith(`${idx}app-tenants:`), size),
    ],
    ['tenant summaries', await share((key) => key.startsWith(`${idx}tenant-summary:`), size)],
    ['claim (delegated)', await share(isClaim, delegatedCount)],
    ['idle (delegated)', await share(isIdle, delegatedCount)],
  ] as const
  record(
    'index share per registration (B): ' + parts.map(([name]) => name).join(' / '),
    size,
    parts.map(([, bytes]) => bytes.toFixed(0)).join(' / '),
  )
}

/** A cached access token for every registration, in the group the issuer uses; memory per registration. */
async function measureCachedTokens(
  store: Store,
  redis: RedisClient,
  emulator: RunningEmulator,
  size: number,
  seeded: readonly Seeded[],
) {
  // a real access token of the emulator, for a realistic size
  const sampleToken = await fetch(`${emulator.url}/${CONTOSO_TENANT_ID}/oauth2/v2.0/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: '0b1e6a52-7c3d-4f8e-9a10-000000000001',
      client_secret: DEMO_CLIENT_SECRET_ENV.MS_GRAPH_MAIL_CLIENT_SECRET ?? '',
      scope: 'https://graph.microsoft.com/.default',
    }).toString(),
  }).then(async (r) => ((await r.json()) as { access_token: string }).access_token)
  const before = await usedMemory(redis)
  const groups = new Set<string>()
  // the cost per token doesn't depend on N: at most the first 10 000 registrations get one
  const count = Math.min(seeded.length, CACHED_TOKEN_SAMPLE)
  await parallel(0, count, CONCURRENCY, async (i) => {
    const { id, plan } = seeded[i]!
    const group = plan.kind === 'admin' ? `tenant:${plan.app}:${plan.cloud}:${plan.tenantId}` : `reg:${id}`
    if (plan.kind === 'admin' && groups.has(group)) return
    groups.add(group)
    await store.tokens.set(
      group,
      'https://graph.microsoft.com/.default',
      {
        accessToken: sampleToken,
        expiresAt: Date.now() + 3_600_000,
        scope: 'https://graph.microsoft.com/.default',
      },
      3_600_000,
    )
  })
  const delta = (await usedMemory(redis)) - before
  record(
    `cached access tokens for the first ${CACHED_TOKEN_SAMPLE.toLocaleString('en-US')} registrations (one per delegated registration, one per admin app+tenant)`,
    size,
    String(groups.size),
  )
  record('… their Redis growth per registration (B)', size, (delta / count).toFixed(0))
  record(
    '… per cached token (B; the JWT itself is ' + sampleToken.length + ' B)',
    size,
    (delta / groups.size).toFixed(0),
  )
  // gone again: the persistent-key figures of the next size must not include them
  for (const group of groups) await store.tokens.deleteGroup(group)
}

async function measureReads(broker: BrokerProcess, size: number, seeded: readonly Seeded[]) {
  const first = await timed(READ_REPEATS, () =>
    api(broker, '/admin/api/registrations?limit=50').then(() => {}),
  )
  figures.set(`read:${size}:first`, first.median)
  record('registrations, first page of 50 (ms)', size, timing(first))
  // a page half-way: walk there with pages of 500
  let cursor: string | undefined
  let walked = 0
  while (walked < size / 2) {
    const page = await api(
      broker,
      `/admin/api/registrations?limit=500${cursor === undefined ? '' : `&cursor=${cursor}`}`,
    )
    walked += (page.items as unknown[]).length
    cursor = page.nextCursor as string | undefined
    if (cursor === undefined) break
  }
  if (cursor !== undefined) {
    const deep = await timed(READ_REPEATS, () =>
      api(broker, `/admin/api/registrations?limit=50&cursor=${cursor}`).then(() => {}),
    )
    figures.set(`read:${size}:deep`, deep.median)
    record(
      `registrations, page of 50 after ${walked} (ms)`.replace(String(walked), 'N/2'),
      size,
      timing(deep),
    )
  }
  const byTenant = new Map<string, number>()
  for (const s of seeded) byTenant.set(s.plan.tenantId, (byTenant.get(s.plan.tenantId) ?? 0) + 1)
  const [bigTenant, bigCount] = [...byTenant].sort((a, b) => b[1] - a[1])[0]!
  // the app the biggest tenant has fewest registrations of: a tenant & app filter's worst case
  const bigApps = new Map<string, number>()
  for (const s of seeded)
    if (s.plan.tenantId === bigTenant) bigApps.set(s.plan.app, (bigApps.get(s.plan.app) ?? 0) + 1)
  const [bigRare] = [...bigApps].sort((a, b) => a[1] - b[1])[0]!
  const reads: Array<[string, string]> = [
    ['tenant filter, the biggest tenant', `/admin/api/registrations?limit=50&tenant=${bigTenant}`],
    ['status=active (97 %)', '/admin/api/registrations?limit=50&status=active'],
    ['app filter (ms-defender-atp)', '/admin/api/registrations?limit=50&app=ms-defender-atp'],
    [
      'the biggest tenant & status=needs_consent',
      `/admin/api/registrations?limit=50&tenant=${bigTenant}&status=needs_consent`,
    ],
    ['one registration by id', `/admin/api/registrations/${seeded[seeded.length >> 1]!.id}`],
    ['status=needs_consent (2 %)', '/admin/api/registrations?limit=50&status=needs_consent'],
    ['status=revoked (1 %)', '/admin/api/registrations?limit=50&status=revoked'],
    [
      'app=ms-azure-log-analytics & status=revoked (matches nothing)',
      '/admin/api/registrations?limit=50&app=ms-azure-log-analytics&status=revoked',
    ],
    [
      'app=ms-defender-atp & status=needs_consent',
      '/admin/api/registrations?limit=50&app=ms-defender-atp&status=needs_consent',
    ],
    [
      `the biggest tenant & its rarest app (${bigRare})`,
      `/admin/api/registrations?limit=50&tenant=${bigTenant}&app=${bigRare}`,
    ],
    [
      `the biggest tenant & ${bigRare} & status=revoked`,
      `/admin/api/registrations?limit=50&tenant=${bigTenant}&app=${bigRare}&status=revoked`,
    ],
    ['tenants, first page of 50', '/admin/api/tenants?limit=50'],
    ['tenants of one app, first page of 50', '/admin/api/tenants?limit=50&app=ms-defender-atp'],
    ['audit, newest 50', '/admin/api/audit?limit=50&order=desc'],
  ]
  for (const [label, path] of reads) {
    const t = await timed(READ_REPEATS, () => api(broker, path).then(() => {}))
    figures.set(`read:${size}:${label}`, t.median)
    record(`${label} (ms)`, size, timing(t))
  }
  // tenants half-way
  let tenantCursor: string | undefined
  let tenantsWalked = 0
  for (;;) {
    const page = await api(
      broker,
      `/admin/api/tenants?limit=500${tenantCursor === undefined ? '' : `&cursor=${tenantCursor}`}`,
    )
    tenantsWalked += (page.tenants as unknown[]).length
    tenantCursor = page.nextCursor as string | undefined
    if (tenantCursor === undefined || tenantsWalked >= byTenant.size / 2) break
  }
  if (tenantCursor !== undefined) {
    const t = await timed(READ_REPEATS, () =>
      api(broker, `/admin/api/tenants?limit=50&cursor=${tenantCursor}`).then(() => {}),
    )
    figures.set(`read:${size}:tenants-deep`, t.median)
    record('tenants, page of 50 half-way (ms)', size, timing(t))
  }
  record('tenants with a registration', size, String(byTenant.size))
  record('registrations of the biggest tenant', size, String(bigCount))
  await measureConsole(broker, size, seeded[seeded.length >> 1]!.id)
}

/** The console's tenants and registrations pages, signed in as an operator (cookie + CSRF). */
async function measureConsole(broker: BrokerProcess, size: number, sampleId: string) {
  const signInPage = await fetch(`${broker.url}/admin/sign-in`)
  const csrf = /name="csrf" value="([^"]+)"/.exec(await signInPage.text())?.[1]
  const cookies = signInPage.headers
    .getSetCookie()
    .map((c) => c.split(';')[0])
    .join('; ')
  if (csrf === undefined) throw new Error('no CSRF token on the console sign-in page')
  const signedIn = await fetch(`${broker.url}/admin/sign-in`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: cookies },
    body: new URLSearchParams({ csrf, token: OPERATOR_TOKEN }).toString(),
  })
  const session = [cookies, ...signedIn.headers.getSetCookie().map((c) => c.split(';')[0])].join('; ')
  for (const [label, path] of [
    ['console: home page (what needs attention)', '/admin/home'],
    ['console: registrations page', '/admin/registrations'],
    ['console: registrations needing consent', '/admin/registrations?status=needs_consent'],
    ['console: tenants page', '/admin/tenants'],
    ['console: audit page', '/admin/audit'],
    ['console: one registration', `/admin/registrations/${sampleId}`],
  ] as const) {
    const t = await timed(READ_REPEATS, async () => {
      const response = await fetch(`${broker.url}${path}`, {
        headers: { cookie: session },
        redirect: 'manual',
      })
      await response.text()
      if (response.status !== 200)
        throw new Error(`${path}: ${response.status} (signed in: ${signedIn.status})`)
    })
    figures.set(`read:${size}:${label}`, t.median)
    record(`${label} (ms)`, size, timing(t))
  }
}

async function measureScrape(metricsPort: number, size: number) {
  const scrape = async () => {
    const response = await fetch(`http://127.0.0.1:${metricsPort}/metrics`)
    const text = await response.text()
    if (!text.includes('consent_broker_registrations{status="active"}'))
      throw new Error('no registrations gauge')
  }
  const first = performance.now()
  await scrape()
  record('first /metrics scrape (ms)', size, ms(performance.now() - first))
  const t = await timed(READ_REPEATS, scrape)
  figures.set(`scrape:${size}`, t.median)
  record('/metrics scrape, registrations counted each time (ms)', size, timing(t))
}

function sampleClients(broker: BrokerProcess, seeded: readonly Seeded[]): XsoarClient[] {
  return seeded.slice(0, 10).map(
    (s) =>
      new XsoarClient({
        id: integrationId(s.id, broker.url),
        token: s.plan.tenantId,
        key: s.key,
        appName: s.plan.app,
        integrationName: 'bench',
      }),
  )
}

/** Sequential cache hits over `clients` (warmed first); milliseconds per request. */
async function cacheHits(clients: readonly XsoarClient[]): Promise<Timing> {
  for (const client of clients) {
    const warm = await client.getAccessToken()
    if (!warm.ok) throw new Error(`warm-up: ${warm.status} ${warm.body}`)
  }
  const times: number[] = []
  for (let i = 0; i < HIT_REQUESTS; i++) {
    const client = clients[i % clients.length]!
    const start = performance.now()
    const answer = await client.getAccessToken()
    times.push(performance.now() - start)
    if (!answer.ok) throw new Error(`cache hit: ${answer.status} ${answer.body}`)
  }
  return { median: quantile(times, 0.5), p95: quantile(times, 0.99) }
}

async function startBroker(env: Env): Promise<{ broker: BrokerProcess; readyMs: number }> {
  const start = performance.now()
  const broker = await spawnBroker({ env, readyTimeoutMs: 120_000 })
  return { broker, readyMs: performance.now() - start }
}

// ---- main -----------------------------------------------------------------------------------------

async function main(): Promise<void> {
  await ensureBuilt()
  const ownRedis = args['redis-url'] === undefined ? await startRedisServer() : undefined
  const redisUrl = args['redis-url'] ?? ownRedis!.url
  const people = population(TOTAL)
  log(
    `population: ${TOTAL} registrations over ${people.tenants.length + 2} tenants, ${people.users.length} users`,
  )
  const emulator = await startEmulator({ port: 0, tenants: people.tenants, users: people.users })
  const envFor = (keys: string, port = 3000, metricsPort = 9464) =>
    brokerEnv({ port, metricsPort, redisUrl, emulatorUrl: emulator.url, keys })
  // Rotations alternate between the two keys and end on the demo key: size k seeds under one key
  // and rotates everything to the other.
  const keyAt = (k: number) =>
    (SIZES.length - 1 - k) % 2 === 0 ? [OTHER_KEY, DEMO_KEY] : [DEMO_KEY, OTHER_KEY]
  const seedOnly = args['seed-only']
  const firstSeal = seedOnly ? DEMO_KEY : keyAt(0)[0]!
  const { store, redis } = await openStore(configOf(envFor(firstSeal)))
  const seeded: Seeded[] = []
  let seedStore = store
  const children: BrokerProcess[] = []
  try {
    if ((await scanKeys(redis, `${PREFIX}*`)).length > 0) {
      throw new Error(
        `${redisUrl} already holds keys under "${PREFIX}": pick another --prefix, or delete them`,
      )
    }
    const redisVersion = await infoField(redis, 'server', 'redis_version')
    const baseline = await usedMemory(redis)
    const sizes = seedOnly ? [TOTAL] : SIZES

    // the 10-registration baseline of the cache-hit latency, on its own prefix
    let tenHits: Timing | undefined
    if (!seedOnly) {
      const tenPrefix = `${PREFIX}ten:`
      const ten = await openStore(configOf(envFor(DEMO_KEY), tenPrefix), tenPrefix)
      const tenSeeded: Seeded[] = []
      await seed({
        store: ten.store,
        emulator,
        config: configOf(envFor(DEMO_KEY)),
        population: people,
        seeded: tenSeeded,
        from: 0,
        to: 10,
        concurrency: 4,
      })
      const tenBroker = await spawnBroker({
        env: { ...envFor(DEMO_KEY, await findFreePort(), await findFreePort()), REDIS_KEY_PREFIX: tenPrefix },
      })
      children.push(tenBroker)
      tenHits = await cacheHits(sampleClients(tenBroker, tenSeeded))
      await tenBroker.stop()
      for (const key of await scanKeys(redis, `${tenPrefix}*`)) await redis.unlink(key)
      await ten.store.close()
      log(`cache hits with 10 registrations: median ${ms(tenHits.median)} ms, p99 ${ms(tenHits.p95)} ms`)
    }

    let seededCount = 0
    for (const [k, size] of sizes.entries()) {
      const [sealKey, targetKey] = seedOnly ? [DEMO_KEY, DEMO_KEY] : keyAt(k)
      if (k > 0) {
        // (the first store stays open: its connection takes the measurements)
        if (seedStore !== store) await seedStore.close()
        seedStore = (await openStore(configOf(envFor(sealKey!)))).store
      }
      log(`size ${size}: seeding ${size - seededCount} registrations`)
      const seedStart = performance.now()
      await seed({
        store: seedStore,
        emulator,
        config: configOf(envFor(sealKey!)),
        population: people,
        seeded,
        from: seededCount,
        to: size,
        concurrency: CONCURRENCY,
      })
      const seedSeconds = (performance.now() - seedStart) / 1000
      record(
        'seeding through the store (registrations/s)',
        size,
        ((size - seededCount) / seedSeconds).toFixed(0),
      )
      seededCount = size
      if (seedOnly) break

      await measureMemory(redis, size, baseline, seeded)
      await measureCachedTokens(seedStore, redis, emulator, size, seeded)

      // the broker instance: start-up to ready (three starts), then operator reads and the scrape
      const keys = `${targetKey},${sealKey}`
      const port = await findFreePort()
      const metricsPort = await findFreePort()
      const starts: number[] = []
      let broker: BrokerProcess | undefined
      for (let i = 0; i < 3; i++) {
        const started = await startBroker(envFor(keys, port, metricsPort))
        starts.push(started.readyMs)
        if (i < 2) await started.broker.stop()
        else broker = started.broker
      }
      children.push(broker!)
      figures.set(`ready:${size}`, quantile(starts, 0.5))
      record(
        'instance start-up to ready, spawn → /readyz 200 (ms, median of 3)',
        size,
        ms(quantile(starts, 0.5)),
      )
      // some audit events, as consents leave them
      for (let i = 0; i < Math.min(size, 2000); i++) {
        await seedStore.audit.append({
          type: 'consent.completed',
          actor: 'system',
          tenantId: seeded[i]!.plan.tenantId,
          app: seeded[i]!.plan.app,
          registrationId: seeded[i]!.id,
        })
      }
      await measureReads(broker!, size, seeded)
      await measureScrape(metricsPort, size)
      const hits = await cacheHits(sampleClients(broker!, seeded))
      figures.set(`hit:${size}`, hits.median)
      record(
        `obtain-token cache hit, ${HIT_REQUESTS} sequential (ms; median, p99)`,
        size,
        `${ms(hits.median)} (p99 ${ms(hits.p95)})`,
      )
      if (tenHits !== undefined) {
        record(
          '… the same with 10 registrations (ms; median, p99)',
          size,
          `${ms(tenHits.median)} (p99 ${ms(tenHits.p95)})`,
        )
      }

      // keep-alive over the idle delegated registrations, in process
      await keepAlivePass(redisUrl, envFor(keys), emulator, size)
      writeReport(redisVersion)

      // key rotation to targetKey while obtain-token traffic runs
      await rotationUnderTraffic(broker!, size, seeded)
      await broker!.stop()
      writeReport(redisVersion)
    }

    if (args['sample-file'] !== undefined) writeSamples(args['sample-file'], seeded)
  } finally {
    for (const child of children) await child.stop().catch(() => {})
    await seedStore.close().catch(() => {})
    if (seedStore !== store) await store.close().catch(() => {})
    await emulator.close()
    if (!args.keep && !seedOnly) {
      const cleanup = createRedisConnection({ url: redisUrl })
      await waitForReady(cleanup, 10_000)
      const keys = await scanKeys(cleanup, `${PREFIX}*`)
      for (let i = 0; i < keys.length; i += 1000) await cleanup.unlink(...keys.slice(i, i + 1000))
      cleanup.disconnect()
    }
    await ownRedis?.destroy()
  }
}

async function keepAlivePass(redisUrl: string, env: Env, emulator: RunningEmulator, size: number) {
  const config = configOf({ ...env, REDIS_URL: redisUrl })
  const { store } = await openStore(config)
  const clock = Date.now
  const logger = createLogger('silent')
  const services = createServices({
    config,
    store,
    idp: createEntraIdentityProvider(config),
    metrics: createMetrics(),
    clock,
    log: logger,
  })
  const before = emulator.state.stats.token_requests.refresh_token ?? 0
  const start = performance.now()
  const budget = setTimeout(() => {
    void services.keepAlive.stop()
  }, KEEPALIVE_BUDGET_MS)
  const run = await services.keepAlive.runOnce()
  clearTimeout(budget)
  const seconds = (performance.now() - start) / 1000
  const stopped = seconds * 1000 >= KEEPALIVE_BUDGET_MS
  const idleLeft = stopped
    ? (
        await store.registrations.listIdleDelegated(
          new Date(Date.now() - config.tokens.keepAliveIdleMs).toISOString(),
          100_000,
        )
      ).length
    : 0
  const upstream = (emulator.state.stats.token_requests.refresh_token ?? 0) - before
  record(
    'keep-alive pass: idle delegated registrations refreshed / failed / skipped',
    size,
    `${run.refreshed} / ${run.failed} / ${run.skipped}${stopped ? ` (stopped at the ${KEEPALIVE_BUDGET_MS / 60_000} min budget, ${idleLeft} still idle)` : ''}`,
  )
  record('keep-alive pass: duration (s)', size, seconds.toFixed(1))
  record('keep-alive pass: upstream refresh requests/s', size, (upstream / seconds).toFixed(0))
  figures.set(`keepalive:${size}`, seconds)
  await store.close()
}

async function rotationUnderTraffic(broker: BrokerProcess, size: number, seeded: readonly Seeded[]) {
  const clients = sampleClients(broker, seeded)
  let done = false
  let requests = 0
  let failed = 0
  const failures = new Map<string, number>()
  const traffic = Promise.all(
    Array.from({ length: 4 }, async (_, lane) => {
      for (let i = lane; !done; i += 4) {
        const answer = await clients[i % clients.length]!.getAccessToken()
        requests++
        if (!answer.ok) {
          failed++
          const code = `${answer.status} ${answer.errorMessage?.split(':')[0] ?? ''}`
          failures.set(code, (failures.get(code) ?? 0) + 1)
        }
      }
    }),
  )
  const start = performance.now()
  const response = await fetch(`${broker.url}/admin/api/keys/rotate`, {
    method: 'POST',
    headers: { authorization: `Bearer ${OPERATOR_TOKEN}` },
  })
  if (response.status !== 202) throw new Error(`rotate: ${response.status} ${await response.text()}`)
  let status: Record<string, unknown> = {}
  for (;;) {
    status = (await api(broker, '/admin/api/keys/rotation')).rotation as Record<string, unknown>
    if (status.state !== 'running' || performance.now() - start > ROTATION_BUDGET_MS) break
    await sleep(200)
  }
  const seconds = (performance.now() - start) / 1000
  done = true
  await traffic
  figures.set(`rotation:${size}`, seconds)
  record(
    'key rotation: state, resealed / unchanged / failed',
    size,
    `${String(status.state)}, ${String(status.resealed)} / ${String(status.unchanged)} / ${String(status.failed)}`,
  )
  record(
    'key rotation: duration (s)',
    size,
    `${seconds.toFixed(1)}${status.state === 'running' ? ` (stopped watching at the ${ROTATION_BUDGET_MS / 60_000} min budget)` : ''}`,
  )
  record(
    'key rotation: registrations re-sealed or checked per second',
    size,
    (Number(status.scanned ?? 0) / seconds).toFixed(0),
  )
  record(
    'key rotation: obtain-token requests meanwhile / failed',
    size,
    `${requests} / ${failed}${failures.size === 0 ? '' : ` (${[...failures].map(([c, n]) => `${c}×${n}`).join(', ')})`}`,
  )
}

function writeSamples(path: string, seeded: readonly Seeded[]) {
  const lines = seeded.slice(0, 10).map((s) =>
    JSON.stringify({
      id: integrationId(s.id, args['public-url']),
      token: s.plan.tenantId,
      key: s.key,
      app: s.plan.app,
    }),
  )
  writeFileSync(path, `${lines.join('\n')}\n`, { mode: 0o600 })
  log(`wrote 10 sample registrations to ${path}. Serve them with the demo on the same Redis:`)
  log(`  REDIS_URL=${args['redis-url'] ?? '<url>'} REDIS_KEY_PREFIX=${PREFIX} npm run demo`)
  log("then give the demo's emulator (EMULATOR_PORT, default 3001) the demo tenants' admin consent once:")
  const clientIds = new Map([
    ['ms-graph-mail', '0b1e6a52-7c3d-4f8e-9a10-000000000001'],
    ['ms-graph-user', '0b1e6a52-7c3d-4f8e-9a10-000000000002'],
  ])
  const grants = new Set(seeded.slice(0, 10).map((s) => `${s.plan.tenantId} ${clientIds.get(s.plan.app)}`))
  for (const grant of grants) {
    const [tid, clientId] = grant.split(' ')
    log(
      `  curl -X POST -H 'content-type: application/json' -d '{"clientId":"${clientId}"}' http://127.0.0.1:3001/_emulator/tenants/${tid}/admin-consent`,
    )
  }
}

function writeReport(redisVersion: string) {
  const cpu = cpus()
  const header = `| figure | ${SIZES.map((s) => s.toLocaleString('en-US')).join(' | ')} |`
  const rule = `|---|${SIZES.map(() => '---:').join('|')}|`
  const body = [...rows].map(
    ([label, values]) => `| ${label} | ${SIZES.map((s) => values.get(s) ?? '—').join(' | ')} |`,
  )
  const last = SIZES[SIZES.length - 1]!
  const goal = (ok: boolean) => (ok ? 'met' : '**missed**')
  const reads = [...figures].filter(([name]) => name.startsWith(`read:${last}:`))
  const slowest = reads.sort((a, b) => b[1] - a[1])[0]
  const goals = [
    `- ≤ 2 KB Redis per admin-consent registration: ${ms(figures.get(`admin-bytes:${last}`) ?? Number.NaN)} B at ${last} — ${goal((figures.get(`admin-bytes:${last}`) ?? Infinity) <= 2048)}.`,
    `- ≤ 1 KB per delegated registration beyond the sealed refresh token: ${ms(figures.get(`delegated-beyond:${last}`) ?? Number.NaN)} B — ${goal((figures.get(`delegated-beyond:${last}`) ?? Infinity) <= 1024)}.`,
    `- every operator read ≤ 50 ms per page at ${last}: slowest median ${slowest === undefined ? '?' : `${ms(slowest[1])} ms (${slowest[0].slice(`read:${last}:`.length)})`} — ${goal(slowest !== undefined && slowest[1] <= 50)}.`,
    `- cache-hit latency independent of N: median ${SIZES.map((s) => `${ms(figures.get(`hit:${s}`) ?? Number.NaN)} ms`).join(' → ')} (10 registrations: see the table).`,
    `- start-up independent of N: ${SIZES.map((s) => `${ms(figures.get(`ready:${s}`) ?? Number.NaN)} ms`).join(' → ')}.`,
    `- keep-alive and rotation bounded by the upstream rate and the batch pace, not N² or memory: keep-alive ${SIZES.map((s) => `${(figures.get(`keepalive:${s}`) ?? Number.NaN).toFixed(1)} s`).join(' → ')}; rotation ${SIZES.map((s) => `${(figures.get(`rotation:${s}`) ?? Number.NaN).toFixed(1)} s`).join(' → ')} (N grows 10× per column).`,
  ]
  const text = `# Scale figures (\`npm run bench:scale\`)

Written by bench/scale.ts on ${new Date().toISOString()}: ${TOTAL.toLocaleString('en-US')} registrations seeded through the store
code into one Redis (40 % delegated with refresh tokens the emulator issued, 60 % admin consent; five apps,
${(Math.max(20, Math.ceil(TOTAL / 5)) + 2).toLocaleString('en-US')} tenants with a few big ones and a long tail, 10 % of Graph Mail in usgov; 2 % needs_consent,
1 % revoked), measured at each size as it grew. Times are over HTTP to a broker process
(\`node dist/src/main.js\`) on the same machine, sequential requests, median (p95) of ${READ_REPEATS} unless said.

Machine: ${cpu.length} × ${cpu[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM,
load average (1, 5, 15 min) ${START_LOAD.map((l) => l.toFixed(2)).join(' ')} at the start and ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')} at the end, Node ${process.version},
Redis ${redisVersion}.

${header}
${rule}
${body.join('\n')}

Reading these figures: a load average above the number of cores means other work shared the
machine (the run is started with \`nice\`), so single timings swing by several times between runs
and sizes; what matters is whether a cost grows with N. The 10-registration cache-hit baseline was
taken once, at the start of the run.

## Against the goals (at ${last.toLocaleString('en-US')})
${goals.join('\n')}

## How each figure is taken
- Memory: \`used_memory\` growth over the empty prefix, divided by N (every persistent key:
  records, indexes, uniqueness claims). Per kind: \`MEMORY USAGE … SAMPLES 0\` of 300 records of the
  kind, plus every \`{idx}\` key's share (the delegated-only ones — uniqueness claims, idle index —
  over the delegated count); "beyond the sealed refresh token" subtracts the sealed token's
  length. Cached tokens: one real emulator JWT sealed per delegated registration and per admin
  app+tenant (the groups the issuer uses) of the first ${CACHED_TOKEN_SAMPLE.toLocaleString('en-US')} registrations, deleted again
  afterwards.
- Operator reads: the JSON API with an operator token; the deep page is the one after N/2
  registrations, reached with pages of 500; the console pages after a real sign-in.
- Scrape: \`/metrics\` on METRICS_PORT with METRICS_REGISTRATIONS_INTERVAL_SECONDS=0 (the
  registrations counted on every scrape).
- Start-up: spawn of \`node dist/src/main.js\` to the first \`/readyz\` 200, three times.
- Cache hits: ${HIT_REQUESTS} sequential obtain-token requests of 10 admin-consent registrations, each
  a fresh encrypted_token, after one warm-up each; the 10-registration figure on a separate
  prefix holding only 10, same procedure.
- Keep-alive: the broker's own KeepAlive.runOnce() (createServices) in the bench process, against
  the emulator (RS256 tokens, refresh-token rotation written back with compare-and-set). Idle = the
  active delegated registrations seeded without a refresh in the last 7 days (20 % of them); those
  of a smaller size were refreshed by its pass, so each pass refreshes the new idle ones.
- Rotation: \`POST /admin/api/keys/rotate\` on the broker (MASTER_KEYS new,old) and polling its status,
  while 4 concurrent clients request tokens; failed = any non-200 answer.
`
  writeFileSync(args.out, `${text}${upgradeSection(args.out)}`)
  log(`wrote ${args.out}`)
}

/**
 * The section bench/upgrade-finish.ts writes into the same file (`npm run bench:upgrade`), kept
 * when this run rewrites the rest: its figures come from another run, not this one.
 */
function upgradeSection(path: string): string {
  const old = existsSync(path) ? readFileSync(path, 'utf8') : ''
  const at = sectionBounds(old, UPGRADE_HEADING)
  return at === undefined ? '' : `\n${old.slice(at.start + 1, at.end)}`
}

main().catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
