// Server CPU time per request of the floor and of the obtain-token cache hit over real sockets, at a
// FIXED request rate both can sustain: each target runs in its own process (bench/server.ts, as
// `npm run bench` starts them) and its user + system time is read from /proc/<pid>/stat around each
// run. Unlike a throughput ratio at saturation, this barely moves when other work shares the
// machine (the load generator, Redis and other processes are not counted), so it is the figure to
// compare a hot-path change with on a busy machine. Linux only (/proc). Rounds alternate floor and
// hit; reported: every round, the medians and floor / hit (what the throughput ratio would be if the
// server's CPU were the only limit).
// Its options: USAGE below (`npx tsx bench/cpu-per-request.ts --help`).
import { type ChildProcess, fork } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'
import { createRedisConnection } from '../src/store/redis-connection.js'
import { contosoRegistration, encryptedBodies, startBackend, TOKEN_REQUEST_HEADERS } from './backend.js'
import { benchOptions, integerOption } from './options.js'
import { median } from './support.js'
import type { Start } from './targets.js'

const USAGE = `usage: npx tsx bench/cpu-per-request.ts [--rate R] [--duration S] [--rounds N] [--connections N]
                                        [--cpu-prof DIR]
  --rate         requests per second, the same for both targets  default 4000
  --duration     seconds per run (rate × duration requests)      default 5
  --rounds       rounds of (floor, hit)                          default 5
  --connections  autocannon connections                          default 50
  --cpu-prof     a directory: each target writes a V8 CPU profile there when it stops, for finding
                 where its time goes (profiling slows both: read its figures as relative)`
const args = benchOptions(USAGE, {
  rate: { type: 'string', default: '4000' },
  duration: { type: 'string', default: '5' },
  rounds: { type: 'string', default: '5' },
  connections: { type: 'string', default: '50' },
  'cpu-prof': { type: 'string' },
})
const RATE = integerOption(USAGE, 'rate', args.rate, 1)
const DURATION = integerOption(USAGE, 'duration', args.duration, 1, 3600)
const ROUNDS = integerOption(USAGE, 'rounds', args.rounds, 1, 1000)
const CONNECTIONS = integerOption(USAGE, 'connections', args.connections, 1, 10_000)
/** USER_HZ: /proc reports CPU time in clock ticks of 10 ms on Linux. */
const MS_PER_TICK = 10

const children: ChildProcess[] = []

/** User + system CPU time of a process so far, in ms. */
function cpuMs(pid: number): number {
  // Fields after the command name (which may hold spaces, so split after its closing parenthesis).
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return (Number(fields[11]) + Number(fields[12])) * MS_PER_TICK
}

async function target(start: Start): Promise<{ url: string; pid: number }> {
  const child = fork(fileURLToPath(new URL('./server.ts', import.meta.url)), [], {
    execArgv: [
      '--import',
      'tsx',
      ...(args['cpu-prof'] === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${args['cpu-prof']}`]),
    ],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  })
  children.push(child)
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m: { port: number }) => resolve(m.port))
    child.once('exit', (code) => reject(new Error(`${start.mode} target exited with ${code}`)))
    child.send(start)
  })
  return { url: `http://127.0.0.1:${port}`, pid: child.pid! }
}

/** CPU µs per answered request of one run: the target's, Redis's and the load generator's (this process). */
interface RunCost {
  usPerRequest: number
  redisUs: number
  clientUs: number
  rps: number
}

/**
 * One run of exactly `count` requests at the fixed rate; every body is used once. A request count
 * rather than a duration: autocannon's rate may overshoot, and a body sent twice is a replay.
 */
async function run(
  url: string,
  pid: number,
  redisPid: number,
  bodies: string[],
  count: number,
): Promise<RunCost> {
  let next = 0
  let failure: string | undefined
  const before = cpuMs(pid)
  const redisBefore = cpuMs(redisPid)
  const clientBefore = process.cpuUsage()
  const result = await autocannon({
    url,
    connections: CONNECTIONS,
    amount: count,
    overallRate: RATE,
    requests: [
      {
        method: 'POST',
        headers: { ...TOKEN_REQUEST_HEADERS },
        setupRequest: (request) => ({ ...request, body: bodies[next++ % bodies.length]! }),
        onResponse: (status, body) => {
          if (status !== 200 && failure === undefined) failure = `${status} ${body.slice(0, 300)}`
        },
      },
    ],
  })
  // (checked first: once the bodies run out they are sent again, and the replays are refused)
  if (next > bodies.length) throw new Error(`${url}: ${next} requests, only ${bodies.length} bodies`)
  if (failure !== undefined) throw new Error(`${url}: ${failure}`)
  const total = result.requests.total
  const client = process.cpuUsage(clientBefore)
  return {
    usPerRequest: ((cpuMs(pid) - before) * 1000) / total,
    redisUs: ((cpuMs(redisPid) - redisBefore) * 1000) / total,
    clientUs: (client.user + client.system) / total,
    rps: result.requests.average,
  }
}

/** redis-server's process id, from INFO (the backend's server is a child of this process). */
async function redisPidOf(redisUrl: string): Promise<number> {
  const redis = createRedisConnection({ url: redisUrl })
  try {
    const info = (await redis.info('server')) as string
    const pid = Number(/process_id:(\d+)/.exec(info)?.[1])
    if (!Number.isInteger(pid)) throw new Error('INFO server named no process_id')
    return pid
  } finally {
    redis.disconnect()
  }
}

async function main(): Promise<void> {
  const backend = await startBackend()
  try {
    const { env } = backend
    const redisPid = await redisPidOf(backend.redisUrl)
    const registration = await contosoRegistration(env)
    const key = registration.key
    const bodies = (count: number) => encryptedBodies(registration, count)
    const floor = await target({ mode: 'floor', env, logLevel: 'info', key })
    const hit = await target({ mode: 'broker', env, logLevel: 'info' })
    const perRun = RATE * DURATION
    // A margin of one body per connection, should autocannon set up a request it never sends.
    const runBodies = () => bodies(perRun + CONNECTIONS)
    // Warm-up (and the hit's one upstream call, priming its token cache).
    await run(`${floor.url}/json`, floor.pid, redisPid, runBodies(), perRun)
    await run(`${hit.url}/obtain-token`, hit.pid, redisPid, runBodies(), perRun)
    const floorRuns: RunCost[] = []
    const hitRuns: RunCost[] = []
    const describe = (c: RunCost) =>
      `${c.usPerRequest.toFixed(1)} µs (Redis ${c.redisUs.toFixed(1)}, load generator ${c.clientUs.toFixed(1)}; ${c.rps.toFixed(0)} req/s)`
    console.log(`${ROUNDS} rounds of ${DURATION} s at ${RATE} req/s, ${CONNECTIONS} connections`)
    for (let round = 1; round <= ROUNDS; round++) {
      const f = await run(`${floor.url}/json`, floor.pid, redisPid, runBodies(), perRun)
      const h = await run(`${hit.url}/obtain-token`, hit.pid, redisPid, runBodies(), perRun)
      floorRuns.push(f)
      hitRuns.push(h)
      console.log(
        `round ${round}: floor ${describe(f)}, hit ${describe(h)}; load ${loadavg()[0]!.toFixed(1)}`,
      )
    }
    const medianOf = (runs: RunCost[], pick: (c: RunCost) => number) => median(runs.map(pick))
    const total = (c: RunCost) => c.usPerRequest + c.redisUs + c.clientUs
    const f = medianOf(floorRuns, (c) => c.usPerRequest)
    const h = medianOf(hitRuns, (c) => c.usPerRequest)
    console.log(
      `medians: floor ${f.toFixed(1)} µs, hit ${h.toFixed(1)} µs server CPU per request; floor / hit ${(f / h).toFixed(2)}`,
    )
    console.log(
      `  Redis: floor ${medianOf(floorRuns, (c) => c.redisUs).toFixed(1)} µs, hit ${medianOf(hitRuns, (c) => c.redisUs).toFixed(1)} µs; load generator: floor ${medianOf(floorRuns, (c) => c.clientUs).toFixed(1)} µs, hit ${medianOf(hitRuns, (c) => c.clientUs).toFixed(1)} µs`,
    )
    // On a machine where all three share the cores, throughput at saturation goes as the inverse
    // of their sum.
    console.log(
      `  all three: floor ${medianOf(floorRuns, total).toFixed(1)} µs, hit ${medianOf(hitRuns, total).toFixed(1)} µs; floor / hit ${(medianOf(floorRuns, total) / medianOf(hitRuns, total)).toFixed(2)}`,
    )
  } finally {
    for (const child of children) child.kill('SIGTERM')
    await backend.close()
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error)
    for (const child of children) child.kill('SIGTERM')
    process.exit(1)
  },
)
