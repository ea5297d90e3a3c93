// CPU per request of the obtain-token cache hit against the floor (bench/targets.ts), both driven
// in this process with Fastify's `inject` (no sockets, no load generator): what the broker's own
// work per hit costs, robust to network noise and a busy machine. Not a throughput figure — `npm
// run bench` measures that over real connections; this one is for finding and checking cuts.
// Rounds alternate floor and hit; each round sends `--requests` requests, `--concurrency` at a time,
// and reads the process's CPU time (user + system). Redis runs in its own process (not counted).
// Its options: USAGE below (`npx tsx bench/hit-cost.ts --help`). With --callgrind (under
// `valgrind --tool=callgrind --instr-atstart=no`) instructions are counted over the measured rounds
// only, bracketed by callgrind_control -i on/off, not over start-up or the warm-up: a count the
// machine's other work doesn't change — but two runs of the same code at --requests 500 --rounds 2
// counted 781 and 848 million (garbage collection and Redis's replies interleave differently), so
// it shows a change of about 10 % or more, not the 1–2 % of one small cut.
import { execFileSync } from 'node:child_process'
import { loadavg } from 'node:os'
import type { FastifyInstance } from 'fastify'
import { pino } from 'pino'
import { LOG_LEVELS } from '../src/config/types.js'
import { contosoRegistration, encryptedBodies, startBackend, TOKEN_REQUEST_HEADERS } from './backend.js'
import { benchOptions, choiceOption, integerOption } from './options.js'
import { median } from './support.js'
import { buildTarget } from './targets.js'

const USAGE = `usage: npx tsx bench/hit-cost.ts [--requests N] [--warmup N] [--concurrency N] [--rounds N]
                                 [--log-level L] [--only floor|hit] [--callgrind]
  --requests     requests per round and target      default 20000
  --warmup       requests per target before rounds  default 5000
  --concurrency  requests in flight                 default 50
  --rounds       rounds of (floor, hit)             default 5
  --log-level    the targets' log level             default info
  --only         drive one target only
  --callgrind    bracket the measured rounds for valgrind --tool=callgrind --instr-atstart=no`
const args = benchOptions(USAGE, {
  requests: { type: 'string', default: '20000' },
  warmup: { type: 'string', default: '5000' },
  concurrency: { type: 'string', default: '50' },
  rounds: { type: 'string', default: '5' },
  'log-level': { type: 'string', default: 'info' },
  only: { type: 'string' },
  callgrind: { type: 'boolean', default: false },
})
const REQUESTS = integerOption(USAGE, 'requests', args.requests, 1)
const CONCURRENCY = integerOption(USAGE, 'concurrency', args.concurrency, 1, 10_000)
const ROUNDS = integerOption(USAGE, 'rounds', args.rounds, 1, 1000)
const WARMUP = integerOption(USAGE, 'warmup', args.warmup, 0)
const LOG_LEVEL = choiceOption(USAGE, 'log-level', args['log-level'], LOG_LEVELS)
const ONLY = args.only === undefined ? undefined : choiceOption(USAGE, 'only', args.only, ['floor', 'hit'])

/** Sends every body once, `CONCURRENCY` at a time; CPU µs per request. Counted by callgrind when `measured`. */
async function drive(app: FastifyInstance, url: string, bodies: string[], measured = true): Promise<number> {
  let next = 0
  let failure: string | undefined
  // one copy for the whole drive, made outside the measured requests
  const headers = { ...TOKEN_REQUEST_HEADERS }
  const worker = async () => {
    while (next < bodies.length) {
      const payload = bodies[next++]!
      const response = await app.inject({ method: 'POST', url, headers, payload })
      if (response.statusCode !== 200 && failure === undefined)
        failure = `${response.statusCode} ${response.body}`
    }
  }
  const before = process.cpuUsage()
  const counted = args.callgrind && measured
  if (counted) execFileSync('callgrind_control', ['-i', 'on', String(process.pid)])
  await Promise.all(Array.from({ length: CONCURRENCY }, worker))
  if (counted) execFileSync('callgrind_control', ['-i', 'off', String(process.pid)])
  const used = process.cpuUsage(before)
  if (failure !== undefined) throw new Error(`${url}: ${failure}`)
  return (used.user + used.system) / bodies.length
}

async function main(): Promise<void> {
  const backend = await startBackend()
  const apps: FastifyInstance[] = []
  try {
    const { env } = backend
    const registration = await contosoRegistration(env)
    const key = registration.key
    // Both targets log to the same discarding destination, synchronously, as the bench's do.
    const sink = pino.destination({ dest: '/dev/null', sync: true })
    const logLevel = LOG_LEVEL
    const floor = await buildTarget({ mode: 'floor', env, logLevel, key }, sink)
    const broker = await buildTarget({ mode: 'broker', env, logLevel }, sink)
    apps.push(floor, broker)
    await Promise.all([floor.ready(), broker.ready()])
    const bodies = (count: number) => encryptedBodies(registration, count)
    // Prime the cache (the hit path's one upstream call) and warm both up.
    await drive(broker, '/obtain-token', bodies(1), false)
    if (ONLY !== 'hit') await drive(floor, '/json', bodies(WARMUP), false)
    if (ONLY !== 'floor') await drive(broker, '/obtain-token', bodies(WARMUP), false)
    const floorRuns: number[] = []
    const hitRuns: number[] = []
    for (let round = 1; round <= ROUNDS; round++) {
      if (ONLY !== 'hit') floorRuns.push(await drive(floor, '/json', bodies(REQUESTS)))
      if (ONLY !== 'floor') hitRuns.push(await drive(broker, '/obtain-token', bodies(REQUESTS)))
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
    await backend.close()
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error)
    process.exit(1)
  },
)
