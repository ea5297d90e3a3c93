// `npm run bench:upgrade`: how long finishing a rolling upgrade takes at scale. Starts its own
// redis-server (temporary directory, free port; never 6379), seeds N registrations as the previous
// release (e9e5226) wrote them — its own Lua, test/support/previous-release.ts — in the mix of
// `npm run bench:scale` (bench/scale-seed.ts: admin and delegated over five apps, a few big tenants
// and a long tail, 2 % needs_consent and 1 % revoked set by that release's status change, idle and
// recently refreshed delegated ones), opens this release's store on it as the broker does
// (createRedisConnection + createRedisStore, then ensureIndexes), checks it stays expanded, and
// times `finishUpgrade()`: wall time, registrations per second, the bench process's peak RSS, Redis
// used_memory before / after (and its highest sample meanwhile), Redis CPU and commands, any Redis
// command slower than 10 ms (SLOWLOG: a step that blocks every other client), and how the time
// splits between the finish's steps (watched from outside: src/ is not instrumented). --under-load
// runs obtain-token-like traffic meanwhile (read a registration, admit a request under its
// version) and counts failures. Then it verifies the contracted store against what it seeded:
// marker and earlier keys, counts, every listing of each app and status and of the biggest and some
// sampled tenants, tenant summaries, every claim and idle entry, a second finish doing nothing; a
// mismatch fails the run (exit 1). It measures what it saw; the figures are never typed in. With
// --out (default bench/SCALE.md) it puts this run's figures in the section "Finishing a rolling
// upgrade" there, one subsection per size (replacing that size's); --no-write leaves it alone.
// Its options: USAGE below (`npm run bench:upgrade -- --help`).
import { randomBytes, randomUUID } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, totalmem } from 'node:os'
import { isDeepStrictEqual } from 'node:util'
import { KeyRing } from '../src/crypto/envelope.js'
import { compareIds } from '../src/store/pagination.js'
import { claimSlot } from '../src/store/redis/delegated-claims.js'
import { idleKeyOf } from '../src/store/redis/idle-buckets.js'
import { redisKeys } from '../src/store/redis/keys.js'
import { createRedisStore } from '../src/store/redis.js'
import { createRedisConnection, type RedisClient, waitForReady } from '../src/store/redis-connection.js'
import { uniquenessField } from '../src/store/registration-hash.js'
import {
  REGISTRATION_STATUSES,
  type Registration,
  type RegistrationStatus,
  type Store,
} from '../src/store/types.js'
import { listedIds } from '../test/support/listing-checks.js'
import { PreviousReleaseInstance } from '../test/support/previous-release.js'
import { type RedisServerHandle, startRedisServer } from '../test/support/redis-server.js'
import { benchOptions, integerOption } from './options.js'
import { parallel, population } from './scale-seed.js'
import { infoField, log, quantile, sectionBounds, sleep, UPGRADE_HEADING, usedMemory } from './support.js'

const USAGE = `usage: npm run bench:upgrade -- [--registrations N] [--under-load] [--load-clients N] [--out PATH]
                                [--no-write] [--concurrency N]
  --registrations  how many to seed (≥ 20)                          default 100000
  --under-load     obtain-token-like traffic during the finish (read, admit), failures counted
  --load-clients   clients of that traffic                          default 4
  --out            the file whose upgrade section is rewritten      default bench/SCALE.md
  --no-write       print the figures only
  --concurrency    seeding writes in flight                         default 128`
const args = benchOptions(USAGE, {
  registrations: { type: 'string', default: '100000' },
  'under-load': { type: 'boolean', default: false },
  'load-clients': { type: 'string', default: '4' },
  out: { type: 'string', default: new URL('./SCALE.md', import.meta.url).pathname },
  'no-write': { type: 'boolean', default: false },
  concurrency: { type: 'string', default: '128' },
})
const integer = (name: string, value: string, min: number) => integerOption(USAGE, name, value, min)
// scale-seed.ts gives the first ten plans to the demo tenants: fewer than 20 is not the mix
const TOTAL = integer('registrations', args.registrations, 20)
const LOAD_CLIENTS = integer('load-clients', args['load-clients'], 1)
const CONCURRENCY = integer('concurrency', args.concurrency, 1)
const PREFIX = 'upgrade:'
const keys = redisKeys(PREFIX)
/** Redis commands slower than this are logged by the server (SLOWLOG), in microseconds. */
const SLOW_US = 10_000
/** Tenants whose listings and summaries are checked: the biggest ones and a random sample. */
const TENANT_SAMPLE = 40

const iso = (ms: number) => new Date(ms).toISOString()
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`
const seconds = (ms: number) => `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`

type Input = Omit<Registration, 'version'>

/** What the bench seeded: the records as written, and each live delegated one's idle score. */
interface Seeded {
  inputs: Input[]
  idleScore: Map<string, number>
}

async function redisCpu(redis: RedisClient): Promise<number> {
  return (
    Number(await infoField(redis, 'cpu', 'used_cpu_user')) +
    Number(await infoField(redis, 'cpu', 'used_cpu_sys'))
  )
}
const commandsProcessed = async (redis: RedisClient) =>
  Number(await infoField(redis, 'stats', 'total_commands_processed'))

// ---- seeding as the previous release --------------------------------------------------------

/**
 * N registrations of scale-seed's population written by the previous release: its create (claim,
 * its indexes and idle set, the tenant summary, then the record), its status change for the 3 %
 * not active, and its touch (the idle set raised) for the delegated ones refreshed recently.
 */
async function seedPrevious(redis: RedisClient, keyRing: KeyRing): Promise<Seeded> {
  const old = new PreviousReleaseInstance(redis, PREFIX, keyRing)
  const { plans, now } = population(TOTAL)
  const inputs: Input[] = new Array(plans.length)
  const idleScore = new Map<string, number>()
  await parallel(0, plans.length, CONCURRENCY, async (i) => {
    const p = plans[i]!
    const at = iso(p.createdAt)
    const input: Input = {
      id: randomUUID(),
      app: p.app,
      cloud: p.cloud,
      tenantId: p.tenantId,
      kind: p.kind,
      ...(p.user === undefined ? {} : { userOid: p.user.oid, userName: p.user.username }),
      status: 'active',
      createdAt: at,
      updatedAt: at,
      consentedAt: at,
    }
    const created = await old.create(input, {
      key: randomBytes(32).toString('base64'),
      ...(p.kind === 'delegated' ? { refreshToken: `rt-${randomBytes(24).toString('base64url')}` } : {}),
    })
    if (!created.created) throw new Error(`the previous release refused ${input.id}: ${created.current}`)
    if (p.status !== 'active') await old.setStatus(input, p.status)
    if (p.kind === 'delegated' && p.status !== 'revoked') {
      let score = p.createdAt
      if (!p.idle) {
        const refreshed = now - Math.floor(Math.random() * 86_400_000)
        await old.touch(input.id, refreshed)
        // its touch only raises (GT): one created within the day keeps its creation time
        score = Math.max(score, refreshed)
      }
      idleScore.set(input.id, score)
    }
    inputs[i] = { ...input, status: p.status }
  })
  return { inputs, idleScore }
}

// ---- traffic while finishing ----------------------------------------------------------------

interface Load {
  requests: number
  failures: number
  firstFailure?: string
  latencies: number[]
}

/**
 * `clients` loops doing what obtain-token does against the store for a random active registration:
 * read it (get), then admit a fresh request under its version. A failure: a throw, a missing
 * registration, or `current: false` for a registration nothing changed.
 */
function runLoad(
  store: Store,
  active: readonly string[],
  clients: number,
  stop: () => boolean,
): Promise<Load> {
  const load: Load = { requests: 0, failures: 0, latencies: [] }
  const fail = (why: string) => {
    load.failures += 1
    load.firstFailure ??= why
  }
  const client = async () => {
    while (!stop()) {
      const id = active[Math.floor(Math.random() * active.length)]!
      const start = performance.now()
      try {
        const stored = await store.registrations.get(id)
        if (stored === null) fail(`${id} missing`)
        else {
          const admitted = await store.registrations.admit(id, {
            version: stored.registration.version,
            replayMarker: randomBytes(12).toString('base64url'),
            replayTtlMs: 60_000,
            limit: 1_000_000,
            windowMs: 60_000,
          })
          if (!admitted.current) fail(`${id} not current at version ${stored.registration.version}`)
          else if (!admitted.fresh) fail(`${id}: a fresh replay marker was taken for a replay`)
        }
      } catch (error) {
        fail((error as Error).message)
      }
      load.requests += 1
      load.latencies.push(performance.now() - start)
      // modest: a few hundred requests a second at most, not a saturation test
      await sleep(5)
    }
  }
  return Promise.all(Array.from({ length: clients }, client)).then(() => load)
}

// ---- verifying the contracted store ----------------------------------------------------------

/** Collects every mismatch instead of stopping at the first, so one run says all that is wrong. */
class Checks {
  readonly problems: string[] = []
  passed = 0
  equal(label: string, actual: unknown, expected: unknown): void {
    if (isDeepStrictEqual(actual, expected)) this.passed += 1
    else {
      const show = (v: unknown) => {
        const text = JSON.stringify(v)
        return text.length > 200
          ? `${text.slice(0, 200)}… (${Array.isArray(v) ? v.length : text.length})`
          : text
      }
      this.problems.push(`${label}: got ${show(actual)}, expected ${show(expected)}`)
    }
  }
}

const countsOf = (inputs: readonly Input[]) => {
  const counts: Record<RegistrationStatus, number> = { active: 0, needs_consent: 0, revoked: 0 }
  for (const r of inputs) counts[r.status] += 1
  return counts
}

async function verify(store: Store, redis: RedisClient, seeded: Seeded, checks: Checks): Promise<string[]> {
  const { inputs } = seeded
  const done: string[] = []
  checks.equal('upgradeState', await store.registrations.upgradeState(), 'contracted')
  checks.equal('marker', await redis.get(keys.indexes), '3')
  const apps = [...new Set(inputs.map((r) => r.app))].sort()
  const tenants = [...new Set(inputs.map((r) => r.tenantId))]
  const earlier = [keys.all, keys.legacyDelegated, keys.legacyIdle, ...keys.statuses]
  const earlierPerKey = [...apps.map((a) => keys.app(a)), ...tenants.map((t) => keys.tenant(t))]
  let left = await redis.exists(...earlier)
  for (let i = 0; i < earlierPerKey.length; i += 1000)
    left += await redis.exists(...earlierPerKey.slice(i, i + 1000))
  checks.equal('earlier keys left', left, 0)
  done.push(`contracted (marker "3", ${earlier.length + earlierPerKey.length} earlier keys gone)`)

  checks.equal('countByStatus', await store.registrations.countByStatus(), countsOf(inputs))
  const order = [...inputs].sort(
    (a, b) => Date.parse(a.createdAt) - Date.parse(b.createdAt) || compareIds(a.id, b.id),
  )
  const want = (match: (r: Input) => boolean) => order.filter(match).map((r) => r.id)
  let listings = 0
  let listed = 0
  const listing = async (
    label: string,
    query: Parameters<typeof listedIds>[1],
    match: (r: Input) => boolean,
  ) => {
    const ids = await listedIds(store, query, 500)
    checks.equal(`listing ${label}`, ids, want(match))
    listings += 1
    listed += ids.length
  }
  await listing('all', {}, () => true)
  for (const status of REGISTRATION_STATUSES) await listing(status, { status }, (r) => r.status === status)
  for (const app of apps) {
    await listing(app, { app }, (r) => r.app === app)
    for (const status of REGISTRATION_STATUSES) {
      await listing(`${app} ${status}`, { app, status }, (r) => r.app === app && r.status === status)
    }
  }
  const bySize = new Map<string, number>()
  for (const r of inputs) bySize.set(r.tenantId, (bySize.get(r.tenantId) ?? 0) + 1)
  const biggest = [...bySize.entries()].sort((a, b) => b[1] - a[1]).map(([t]) => t)
  const sample = [
    ...new Set([
      ...biggest.slice(0, 10),
      ...Array.from(
        { length: TENANT_SAMPLE - 10 },
        () => tenants[Math.floor(Math.random() * tenants.length)]!,
      ),
    ]),
  ]
  for (const tenantId of sample) {
    await listing(`tenant ${tenantId}`, { tenantId }, (r) => r.tenantId === tenantId)
    for (const app of apps) {
      await listing(
        `tenant ${tenantId} ${app}`,
        { tenantId, app },
        (r) => r.tenantId === tenantId && r.app === app,
      )
    }
  }
  done.push(
    `${listings} listings walked by pages of 500 (${listed.toLocaleString('en')} entries: everything, each status, each app and app × status, ${sample.length} tenants — the 10 biggest and a random sample — alone and × app) equal the seeded records in (createdAt, id) order; countByStatus equals the seeded counts`,
  )

  const summaries = await store.registrations.summarizeTenants(sample)
  for (const summary of summaries) {
    const mine = inputs.filter((r) => r.tenantId === summary.tenantId)
    const counts = countsOf(mine)
    checks.equal(`summary ${summary.tenantId}`, summary.registrations, { ...counts, total: mine.length })
    checks.equal(
      `summary apps ${summary.tenantId}`,
      summary.apps,
      [...new Set(mine.map((r) => r.app))].sort(),
    )
  }
  done.push(
    `tenant summaries of the ${sample.length} sampled tenants (counts by status, apps) equal the records`,
  )

  // every live delegated claim in its bucket naming its registration, every idle entry in its bucket
  // with the score the previous release left
  const live = inputs.filter((r) => r.kind === 'delegated' && r.status !== 'revoked')
  let claimsWrong = 0
  let idleWrong = 0
  for (let i = 0; i < live.length; i += 2000) {
    const batch = live.slice(i, i + 2000)
    const pipeline = redis.pipeline()
    for (const r of batch) {
      const slot = claimSlot(keys, uniquenessField(r)!)
      pipeline.hget(slot.key, slot.field)
      pipeline.zscore(idleKeyOf(keys, r.id), r.id)
    }
    const replies = (await pipeline.exec()) ?? []
    batch.forEach((r, j) => {
      const claim = replies[2 * j]?.[1]
      const score = replies[2 * j + 1]?.[1]
      if (typeof claim !== 'string' || !claim.endsWith(`:${r.id}`)) claimsWrong += 1
      if (score !== String(seeded.idleScore.get(r.id))) {
        idleWrong += 1
        checks.problems.push(`idle ${r.id}: ${score}, seeded ${seeded.idleScore.get(r.id)}`)
      }
    })
  }
  checks.equal('claims not in their bucket or naming another id', claimsWrong, 0)
  checks.equal('idle entries missing or with another score', idleWrong, 0)
  done.push(
    `all ${live.length.toLocaleString('en')} live delegated registrations: claim in its bucket naming it, idle entry in its bucket with the seeded score`,
  )

  // idempotent: a second finish finds nothing to do
  checks.equal('second finish', await store.registrations.finishUpgrade(), { registrations: 0, pruned: 0 })
  done.push('a second finishUpgrade() does nothing ({ registrations: 0, pruned: 0 })')
  return done
}

// ---- the run ---------------------------------------------------------------------------------

/** Samples `read` every `everyMs` until stopped; the highest value seen. */
function peakOf(read: () => Promise<number> | number, everyMs: number) {
  let peak = 0
  let running = true
  const loop = (async () => {
    while (running) {
      peak = Math.max(peak, await read())
      await sleep(everyMs)
    }
  })()
  return {
    async stop(): Promise<number> {
      running = false
      await loop
      peak = Math.max(peak, await read())
      return peak
    },
  }
}

/** When (ms after the finish started) each step of store-upgrade.ts `finish()` was first seen done. */
interface Phases {
  /** The marker says "3": every entry re-set, deleted ones pruned, summaries marked (before it). */
  marker?: number
  /** The legacy claims hash is gone (migrateLegacyClaims). */
  claims?: number
  /** The legacy idle set is gone (migrateLegacyIdle). */
  idle?: number
  /** The earlier `all` is gone (dropRetired: it re-indexes from `all`, then drops the earlier keys). */
  dropped?: number
}

/**
 * Watches the keys each step of the finish removes or sets, from outside (src/ is not instrumented):
 * how the wall time splits. Resolution: the poll interval plus a round trip.
 */
function watchPhases(probe: RedisClient, start: number, everyMs: number) {
  const phases: Phases = {}
  let running = true
  const loop = (async () => {
    while (running) {
      const [[, marker], [, claims], [, idle], [, all]] = ((await probe
        .pipeline()
        .get(keys.indexes)
        .exists(keys.legacyDelegated)
        .exists(keys.legacyIdle)
        .exists(keys.all)
        .exec()) ?? []) as Array<[Error | null, unknown]>
      const at = performance.now() - start
      if (marker === '3') phases.marker ??= at
      if (claims === 0) phases.claims ??= at
      if (idle === 0) phases.idle ??= at
      if (all === 0) phases.dropped ??= at
      await sleep(everyMs)
    }
  })()
  return {
    async stop(): Promise<Phases> {
      running = false
      await loop
      return phases
    },
  }
}

interface Report {
  redisVersion: string
  seedMs: number
  finishMs: number
  finish: { registrations: number; pruned: number }
  rssBefore: number
  rssPeak: number
  memoryBefore: number
  memoryAfter: number
  memoryPeak: number
  phases: Phases
  redisCpuS: number
  commands: number
  slow: Array<{ us: number; command: string }>
  load?: Load
  tenants: number
  delegated: number
  counts: Record<RegistrationStatus, number>
  verified: string[]
}

async function run(server: RedisServerHandle): Promise<Report> {
  const redis = createRedisConnection({ url: server.url, connectionName: 'bench-upgrade' })
  const probe = createRedisConnection({ url: server.url, connectionName: 'bench-upgrade-probe' })
  try {
    await waitForReady(redis, 10_000)
    await waitForReady(probe, 10_000)
    const redisVersion = (await infoField(probe, 'server', 'redis_version')) || 'unknown'
    log(`redis-server ${redisVersion} on ${server.url}`)
    const keyRing = new KeyRing([{ id: 'bench', key: randomBytes(32) }])

    log(`seeding ${TOTAL.toLocaleString('en')} registrations as the previous release wrote them …`)
    const seedStart = performance.now()
    const seeded = await seedPrevious(redis, keyRing)
    const seedMs = performance.now() - seedStart
    const marker = await redis.get(keys.indexes)
    log(`  seeded in ${seconds(seedMs)} (${Math.round(TOTAL / (seedMs / 1000))}/s); marker ${marker}`)
    if (marker !== '2') throw new Error('the seeded store lacks the previous release marker "2"')

    // this release's instance on it, as main.ts opens it (broker.ts: createStoreFromConfig)
    const store = createRedisStore({ redis, keyRing, keyPrefix: PREFIX })
    const startUp = await store.registrations.ensureIndexes()
    if (startUp.upgrade !== 'expanded' || (await store.registrations.upgradeState()) !== 'expanded') {
      throw new Error(`expected an expanded store after start-up, got ${JSON.stringify(startUp)}`)
    }
    log('  this release started on it: expanded')

    const active = seeded.inputs.filter((r) => r.status === 'active').map((r) => r.id)
    await redis.config('SET', 'slowlog-log-slower-than', String(SLOW_US))
    await redis.slowlog('RESET')
    const memoryBefore = await usedMemory(probe)
    const cpuBefore = await redisCpu(probe)
    const commandsBefore = await commandsProcessed(probe)
    const rssBefore = process.memoryUsage.rss()
    let finishing = true
    const loading = args['under-load'] ? runLoad(store, active, LOAD_CLIENTS, () => !finishing) : undefined
    const rss = peakOf(() => process.memoryUsage.rss(), 50)
    const redisMemory = peakOf(() => usedMemory(probe), 250)
    log(`finishing the upgrade${loading ? ` with ${LOAD_CLIENTS} obtain-token-like clients` : ''} …`)
    const start = performance.now()
    const watcher = watchPhases(probe, start, 25)
    let finish: { registrations: number; pruned: number }
    try {
      finish = await store.registrations.finishUpgrade()
    } finally {
      finishing = false
    }
    const finishMs = performance.now() - start
    const load = await loading
    const rssPeak = await rss.stop()
    const memoryPeak = await redisMemory.stop()
    const phases = await watcher.stop()
    const redisCpuS = (await redisCpu(probe)) - cpuBefore
    // the probe's own INFO calls are in the count; a few hundred at most against hundreds of thousands
    const commands = (await commandsProcessed(probe)) - commandsBefore
    const memoryAfter = await usedMemory(probe)
    const slowlog = (await probe.slowlog('GET', 1000)) as Array<[number, number, number, string[]]>
    const slow = slowlog
      .map(([, , us, argv]) => ({ us, command: argv.slice(0, 3).join(' ').slice(0, 80) }))
      .filter((s) => !/^(INFO|CONFIG|SLOWLOG)/i.test(s.command))
    log(`  finished in ${seconds(finishMs)}: ${JSON.stringify(finish)}`)

    log('verifying …')
    const checks = new Checks()
    const verified = await verify(store, redis, seeded, checks)
    for (const line of verified) log(`  ${line}`)
    if (checks.problems.length > 0) {
      throw new Error(`verification failed (${checks.problems.length}):\n${checks.problems.join('\n')}`)
    }
    log(`  ${checks.passed} checks passed`)
    return {
      redisVersion,
      seedMs,
      finishMs,
      finish,
      rssBefore,
      rssPeak,
      memoryBefore,
      memoryAfter,
      memoryPeak,
      phases,
      redisCpuS,
      commands,
      slow,
      ...(load === undefined ? {} : { load }),
      tenants: new Set(seeded.inputs.map((r) => r.tenantId)).size,
      delegated: seeded.inputs.filter((r) => r.kind === 'delegated').length,
      counts: countsOf(seeded.inputs),
      verified,
    }
  } finally {
    probe.disconnect()
    redis.disconnect()
  }
}

/** A step's duration from when the one before it was seen done (watched every 25 ms). */
function phase(end: number | undefined, from: number | undefined): string {
  return end === undefined || from === undefined ? 'not seen' : seconds(end - from)
}

function section(report: Report): string {
  const r = report
  const n = TOTAL.toLocaleString('en')
  const rate = Math.round(r.finish.registrations / (r.finishMs / 1000))
  const command = `npm run bench:upgrade -- --registrations ${TOTAL}${args['under-load'] ? ` --under-load --load-clients ${LOAD_CLIENTS}` : ''}`
  const lines = [
    `### ${n} registrations`,
    '',
    `Written by bench/upgrade-finish.ts on ${new Date().toISOString()} (\`${command}\`): ${n} registrations`,
    `seeded as the previous release wrote them (its Lua, test/support/previous-release.ts; ${r.delegated.toLocaleString('en')} delegated,`,
    `${r.tenants.toLocaleString('en')} tenants, ${r.counts.needs_consent} needs_consent and ${r.counts.revoked} revoked by its status change), then`,
    "`finishUpgrade()` of this release's store on it, in the bench process against its own redis-server.",
    '',
    `Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, load average`,
    `(1, 5, 15 min) ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} at the end, Node ${process.version}, Redis ${r.redisVersion}.`,
    '',
    '| figure | value |',
    '|---|---:|',
    `| seeding as the previous release (pipelined, ${CONCURRENCY} in flight) | ${seconds(r.seedMs)} (${Math.round(TOTAL / (r.seedMs / 1000))}/s) |`,
    `| finishUpgrade() wall time | ${seconds(r.finishMs)} |`,
    `| registrations per second (re-set / wall time) | ${rate} |`,
    `| registrations re-set / index entries pruned | ${r.finish.registrations} / ${r.finish.pruned} |`,
    `| bench process RSS before / peak during the finish | ${mib(r.rssBefore)} / ${mib(r.rssPeak)} |`,
    `| Redis used_memory before / after (highest sample meanwhile) | ${mib(r.memoryBefore)} / ${mib(r.memoryAfter)} (${mib(r.memoryPeak)}) |`,
    `| … until the marker "3" (every entry re-set from its record, deleted ones pruned, summaries marked) | ${phase(r.phases.marker, 0)} |`,
    `| … then the legacy claims moved into their buckets | ${phase(r.phases.claims, r.phases.marker)} |`,
    `| … then the legacy idle entries moved into their buckets | ${phase(r.phases.idle, r.phases.claims)} |`,
    `| … then dropRetired(): every registration of the earlier \`all\` re-indexed again (indexEarlier), then the earlier keys dropped | ${phase(r.phases.dropped, r.phases.idle)} |`,
    `| Redis CPU (user + sys) during the finish | ${r.redisCpuS.toFixed(1)} s |`,
    `| Redis commands processed during the finish (INFO total_commands_processed: the scripts' own calls count${r.load === undefined ? '' : ", the traffic's too"}) | ${r.commands.toLocaleString('en')} (${(r.commands / TOTAL).toFixed(1)} per registration) |`,
    `| SLOWLOG entries over ${SLOW_US / 1000} ms (Redis 7 logs a script's slow inner command beside the script) | ${r.slow.length === 0 ? 'none' : `${r.slow.length}, slowest ${(Math.max(...r.slow.map((s) => s.us)) / 1000).toFixed(1)} ms`} |`,
  ]
  if (r.load !== undefined) {
    lines.push(
      `| obtain-token-like requests meanwhile (get + admit, ${LOAD_CLIENTS} clients) / failed | ${r.load.requests} / ${r.load.failures} |`,
      `| … their latency median / p99 / max | ${quantile(r.load.latencies, 0.5).toFixed(1)} / ${quantile(r.load.latencies, 0.99).toFixed(1)} / ${Math.max(...r.load.latencies).toFixed(1)} ms |`,
    )
  }
  lines.push('', 'Verified afterwards (the run fails otherwise):', ...r.verified.map((v) => `- ${v}`))
  if (r.slow.length > 0) {
    lines.push(
      '',
      'Slow commands (SLOWLOG, slowest first; an EVALSHA and a command it ran with the same time are one event):',
    )
    for (const s of [...r.slow].sort((a, b) => b.us - a.us).slice(0, 5))
      lines.push(`- ${(s.us / 1000).toFixed(1)} ms: \`${s.command}\``)
  }
  return `${lines.join('\n')}\n`
}

const INTRO = `${UPGRADE_HEADING}

How long \`finishUpgrade()\` (\`consent-broker-admin finish-upgrade\`) takes on a store the previous release
wrote, written by bench/upgrade-finish.ts (\`npm run bench:upgrade\`), one subsection per size; each run
replaces its own size's (bench/scale.ts keeps this section when it rewrites the rest of the file).
`

/**
 * Puts the run's subsection (`### N registrations`) into the section of `path`: replaces that
 * size's subsection, or adds it at the section's end (the section itself appended when missing).
 */
function writeSection(path: string, subsection: string): void {
  let text = readFileSync(path, 'utf8')
  let bounds = sectionBounds(text, UPGRADE_HEADING)
  if (bounds === undefined) {
    text = `${text.trimEnd()}\n\n${INTRO}`
    bounds = sectionBounds(text, UPGRADE_HEADING) as { start: number; end: number }
  }
  const { start, end: sectionEnd } = bounds
  const title = subsection.slice(0, subsection.indexOf('\n') + 1)
  const at = text.indexOf(`\n${title}`, start)
  if (at >= 0 && at < sectionEnd) {
    const after = text.indexOf('\n### ', at + 1)
    const end = after >= 0 && after < sectionEnd ? after + 1 : sectionEnd
    text = `${text.slice(0, at + 1)}${subsection}${end < text.length ? '\n' : ''}${text.slice(end)}`
  } else {
    const before = text.slice(0, sectionEnd).trimEnd()
    const rest = text.slice(sectionEnd)
    text = `${before}\n\n${subsection}${rest === '' ? '' : `\n${rest}`}`
  }
  writeFileSync(path, text)
}

const server = await startRedisServer()
let failed = false
try {
  const report = await run(server)
  const text = section(report)
  console.log(`\n${text}`)
  if (report.load !== undefined && report.load.failures > 0) {
    console.log(`first failure under load: ${report.load.firstFailure}`)
  }
  if (!args['no-write']) {
    writeSection(args.out, text)
    log(`wrote the section to ${args.out}`)
  }
} catch (error) {
  failed = true
  console.error(error)
} finally {
  await server.destroy()
}
process.exitCode = failed ? 1 : 0
