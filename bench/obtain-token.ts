// `npm run bench`: the obtain-token hot path (cache hit, Redis store) against a bare Fastify JSON
// route started the same way, in the same run; then the cold path (one upstream call to the
// emulator per request); then latency across many token expiries with refresh-ahead on and off
// (bench/expiries.ts). A third target, `floor`, is the bare route plus only the work a cache hit
// must do (AES-GCM open, one Redis call, one log line; see bench/server.ts): what an implementation
// making one Redis call per request can't beat here (batching a tick's calls was tried: no clear gain). Runs alternate (bare, floor, hit, bare, …) so all see the same machine; prints each
// run, the medians, their ratios, and writes bench/RESULTS.md with the machine it ran on. `--pin on` (or `auto`: when `taskset` exists and there are ≥ 2 cores) runs the
// measured server on CPU 0 and everything else (autocannon, redis-server, emulator) on CPU 1 — the
// same for bare and broker. Off by default: pinned, the bare route fell to ~55 % of its unpinned rate
// and the load generator may then be what limits it, which would flatter the ratio.
//
//   npm run bench -- [--connections 50] [--duration 10] [--rounds 3] [--pin off|auto|on]
//                    [--log-level info] [--profile <dir>]
// (--profile writes V8 CPU profiles of the targets, for finding hot-path costs)
import { type ChildProcess, execFileSync, fork } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { cpus, loadavg, totalmem } from 'node:os'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { type Env, loadConfig } from '../src/config.js'
import { createRedisStore } from '../src/store/redis.js'
import { createRedisConnection, type RedisClient } from '../src/store/redis-connection.js'
import { encryptContent, XsoarClient } from '../test/support/xsoar-client.js'
import { CONTOSO, contosoRegistration, startBackend, TOKEN_REQUEST_HEADERS } from './backend.js'
import { expiriesSection, measureExpiries } from './expiries.js'
import { median, scanKeys, sleep } from './support.js'

const { values: args } = parseArgs({
  options: {
    connections: { type: 'string', default: '50' },
    duration: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '3' },
    pin: { type: 'string', default: 'off' },
    'log-level': { type: 'string', default: 'info' },
    profile: { type: 'string' },
  },
})
const CONNECTIONS = Number(args.connections)
const DURATION = Number(args.duration)
const PROFILE = args.profile
const ROUNDS = Math.max(1, Number(args.rounds))
// Pre-built encrypted tokens per second of a hit run (each is accepted once); above the rates seen.
const HIT_BODIES_PER_SECOND = 25_000
const WARMUP = 3
const COLD_DURATION = Math.max(3, Math.round(DURATION / 2))
const LOG_LEVEL = args['log-level']

interface Figures {
  name: string
  connections: number
  requests: number
  rps: number
  p50: number
  p99: number
  max: number
  non2xx: number
  errors: number
}

/** Analysis written by hand into RESULTS.md (kept here so a new run keeps it). */
const NOTES = `## Where the time goes
Measured on this 2-core machine on 2026-11-26, single runs unless said otherwise (req/s figures
differ between runs by ±15 %; the table above is what counts).
- Ablation, one extra cost at a time on top of the bare route (a throw-away harness, 8 s runs, quiet
  machine): bare ~31 000 req/s; + one auto-pipelined ioredis EVALSHA per request and the completion
  log line ~22 000; + request id header ~21 000; + @fastify/helmet, cookie and formbody hooks
  ~19 800; + AES-GCM open of the request (~4 µs alone in a micro-benchmark, more in the server)
  ~14 700–18 000.
- The floor target measures, in every run, the work the issue requires per cache hit (decrypt, a
  shared replay claim and rate limits in Redis) plus our one log line per request; its median stays
  below 0.6 of bare before any other check, metric or header. Without any log line (\`--log-level
  warn\` for all targets, 3 rounds at 08:09): floor / bare 0.55 (rounds 0.52, 0.62, 0.50), hit / bare
  0.34, hit / floor 0.62. So on this machine, with autocannon, redis-server and the server sharing
  two cores, 0.6 is at best the floor's own level. Tried on the floor only (a local change, 3 rounds
  at 08:48): one Lua call for the claims of all requests of an event-loop tick instead of one per
  request gave floor / bare 0.53 (rounds 0.57, 0.56, 0.43), no clear gain, so the broker keeps one
  call per request.
- Steps taken on the hit path, each measured: auto-pipelining; one atomic \`admit\` Lua call (four
  Redis commands → two); \`createLogger\` (the completion line no longer walks ~20 redaction paths for
  each plain field: 19.3 → 2.3 µs per line); then, today, the per-IP limit folded into \`admit\` (two
  commands → one; a Cluster keeps two, another hash slot), the replay marker taken from the GCM
  nonce and tag instead of SHA-256, the Token compared without hashing, no await before \`admit\`
  when the Key is already imported, and a locally cached token served without the issuer's async
  path. Quiet machine, one round each: hit 9 120 req/s (ratio 0.28) before today's steps, 9 789
  (0.30) after the first three, ~10 900 (0.32) after all.
- Profile of the broker now (\`--profile\`, share of its busy CPU): socket I/O ~21 % (the HTTP
  response, as for bare, plus the Redis round trip), ioredis ~10 %, AES-GCM ~8 %, logging ~8 %, GC ~7 %,
  the route's own code ~12 %, Fastify, JSON and validation the rest: no single cost left that is
  worth a trade-off.
- Not taken: an asynchronous log destination (\`pino.destination({ sync: false })\`: +3 % in one run,
  lines lost on a crash); a larger young generation (\`--max-semi-space-size=32\`: slower in one run);
  CPU pinning (\`--pin on\`: the bare route falls to ~55 % pinned, which flatters the ratio, so it is
  not the default and not claimed).
- 2026-11-30, \`bench/hit-cost.ts\` (CPU time per request, floor and hit driven in one process with
  \`inject\`, 20–25 alternating rounds of 1 000 requests; the machine at load 13–22 on 2 cores, so
  only ratios within one run mean anything): floor / hit 0.64–0.77 across runs. Switching off one
  part of the hit at a time moved it by no more than that spread: no response deadline timer 0.72,
  no metrics 0.70, no usage touch 0.73, no security headers 0.67, against 0.68–0.70 with all. A
  route that answers a constant (no ObtainToken, no AES, no Redis) inside the broker's app still gave
  0.71–0.75: what separates hit from floor is mostly the app around the route (hooks, request id,
  headers written and validated by Node, the larger answer), not the checks. Taken: one onRequest
  hook instead of two, no cookie parsing outside the browser routes, a plain onSend callback; no
  measurable change at this load. The p99 rise from 11 to 21 ms between the 26th and the 30th tracks
  the slower machine (bare 28 851 → 11 428 req/s; mean latency at 50 connections 5 → 9 ms, p99 about
  2.3× the mean both times), not a new per-request timer.
- Later on 2026-11-30: the cookie plugin moved into the browser routes' scope (its onSend hook no
  longer runs for obtain-token), \`encrypted_token\` checked by a base64 round trip before the regular
  expression, deadline timers in whole milliseconds, imported Keys cached by id, no blocked-key
  lookup while none is blocked, Redis key tags without a replace scan: \`hit-cost\` 0.77 before and
  0.77–0.78 after (load 3–4), within its noise. Server CPU per request at a fixed 4 000 req/s
  (\`bench/cpu-per-request.ts\`: each target process's CPU time from /proc, so other work on the
  machine barely moves it; load 2–3, local variants of the broker, 5 alternating rounds): floor
  69 µs, broker 94 µs; without the security headers 90, without the request id 92, without the
  response deadline timer and the request counter 95. The broker's ~25 µs above the floor is spread
  over some forty functions (its checks, admit's script arguments, the body schema's patterns,
  allocations and GC), none above 2 µs: no single cost left to cut, and the headers and request id
  the floor leaves out are a quarter of it. On the quiet machine of the run above: floor 63 µs, hit
  101 µs.
- Session of 2026-11-30 evening (one more pass at the gap): a registration admitted before is served
  from one cache entry with its checks' inputs prepared once (imported Key, the Token's bytes,
  scopes, token group, limit key); apps by slug in a Map; the per-instance token cache keyed by
  group then scope (no key string per request); the two per-hit counters deferred to scrape time
  (prom-client hashed and validated labels on each \`inc\`); the body schema's string bounds counted
  with \`.length\` (Ajv's default walked every string for code points: ~1 µs per body); no async
  wrapper layers in the route, \`runScript\` and \`admit\`; the replay marker and the plaintext
  without copies. In process (\`hit-cost\`, back to back, load ~2.5): floor / hit 0.75 before, 0.84
  after (hit 124 → 113 µs, floor 94–95). Tried and dropped: a request logger that makes its pino
  child only when used (0.84/0.90 without it, 0.78/0.76 with it: no gain). Under callgrind (1 000
  measured requests after a 3 000-request warm-up): 795 million instructions before, 740 after,
  floor 626 — but the same code twice counted 781 and 848, so only the direction is shown. The table
  committed then (1efe0a7, the final hot path): hit / floor 0.78 over 5 rounds (0.74–0.80), hit /
  bare 0.35, hit p99 11 ms while the machine slowed during the run (bare 33 487 → 25 832 req/s, its
  own p99 4 → 7 ms). Two earlier runs of nearly the same hot path the same afternoon: 5 rounds at
  460cf08, hit / floor 0.75 (0.66–0.84), hit / bare 0.40, p99 8 ms; 3 rounds at a slower moment
  (bare 19 949), 0.87 (0.71, 0.88, 1.00). The session before: 0.76, hit / bare 0.32, p99 10 ms.
- Why the throughput ratio moves less than the server's CPU: at saturation the server, redis-server
  and the load generator share the two cores, and \`cpu-per-request\` (now reporting all three)
  shows each of them pays for the hit: Redis 14–16 µs per request against the floor's 11 (admit also
  reads the registration's version and status, the check that makes a revocation apply on the next
  request, and reads the windows' time left), and the load generator parses 11 response headers
  (405 bytes) against the floor's 5 (155 bytes): five of the API's security headers and the request
  id are what the floor leaves out. Floor / hit of the three together was 0.75 and 0.88 in two runs
  20 minutes apart (server alone 0.70 and 0.80), the same range as the throughput runs (0.75–0.87):
  the run-to-run spread is as large as the whole remaining gap. Reaching 0.85 reliably would
  take removing required work: the registration check in admit, the security headers or the
  request id.
- Session of 2026-11-30 night (a faster 2-core AMD EPYC: bare ~47 000 req/s, floor ~23 000). Before
  any change, 3 rounds: hit / floor 0.77 (0.74, 0.84, 1.08). Server CPU per request at 4 000 req/s
  (\`cpu-per-request\`, 5 rounds, three runs): floor 39.5–43.5 µs, hit 49.5–54.9 µs (0.79–0.80); at
  saturation (\`--rate 100000\`) each server process used ~0.87 of a core, so the server's CPU per
  request sets the ratio. A CPU profile of both (\`--cpu-prof\`, the hit's extra ~10 µs per request
  spread over its checks ~2 µs, the Redis client ~2 µs for a longer command and reply, routing,
  hooks and request id ~1 µs, GC and the rest) and switching off, one at a time, the API's security
  headers, the drain onSend hook and the response deadline timer (each within ±0.01 of the ratio)
  found no single cost worth a trade-off in the server. On the Redis side the admission script was
  the largest single difference: per call (INFO commandstats, 7 alternating runs of 20 000 pipelined
  calls) 6.1 µs of Redis CPU against the floor script's 3.7. Taken: the windows are counted inline
  instead of in Lua functions made on every call, and their time left is read only past the limit
  (the two PTTLs of an allowed request gone): 5.0 µs. Then three 5-round runs of the whole
  benchmark: hit / floor 0.85 (0.87, 0.88, 0.89, 0.84, 0.73; p99 7 ms), 0.80 (0.79, 0.80, 1.05,
  0.80, 0.62; p99 7 ms) and 0.87 (0.85, 1.00, 0.87, 0.89, 0.64; p99 6 ms). In each, the hit's fifth
  round fell to 14 000–16 000 req/s. Part of that was the benchmark's own: the replay markers (one
  key per request, kept 601 s) grew Redis's keyspace by ~200 000 keys a run, and a SET costs ~3× as
  much for the ~350 000 keys after the keyspace crosses 2^20 or 2^21 keys while Redis rehashes its
  key table (measured: 1.5 → 4.5–5.3 µs); by the count of keys written, the fifth hit run crossed
  2^21 each time. The markers are now deleted between runs (see Method). The table committed then
  was the first run with that: 0.80 (0.90, 0.88, 0.83, 0.79, 0.76; p99 9 ms), the machine slower
  meanwhile (bare 38 788–47 260). The broker alone under 70 s of continuous load (seven 10 s runs,
  markers kept) held 17 300–19 900 req/s with a steady RSS of 175–194 MiB: no slow-down of its own.
  A fifth run after the last commit of the session (same code): 0.78 (0.74, 0.91, 0.77, 0.86, 0.77;
  p99 9 ms). Over the five runs since the script change, hit / floor was 0.78–0.87, median 0.80: the
  goal of 0.85 is reached in two runs of five, not reliably; the fifth round is still the hit's
  lowest in the run above, unexplained. Looked at and left: the \`encrypted_token\` base64 round
  trip (80 ns), the deadline timer (~0.2 µs), deoptimisations (none on the hot path), dropping CORP
  and Referrer-Policy from the API's headers (the load generator's parser pays ~0.2 µs per header;
  kept, security first).
- Session of 2026-11-30, late night, on a slower 2-core AMD EPYC (bare ~7 200–7 400 req/s, floor ~4
  800–5 000; \`cpu-per-request\` at 4 000 req/s: floor 201.9, hit 249.5 µs of server CPU per
  request, 0.81, against ~40 and ~50 µs the evening before), the hot path unchanged since the runs
  above: hit / floor 0.87 in 3 rounds (0.82, 0.87, 0.72), then two 5-round runs, 0.77 (0.88, 0.83,
  0.71, 0.73, 0.79; hit p99 28 ms) and 0.78 (0.78, 0.80, 0.76, 0.74, 0.82; p99 26 ms: the table
  committed then). Around those two, in the same hour and on the same machine, the code as it was
  before this work on the hot path (d5ad8df, with its own benchmark script, in a worktree of its
  own): 0.71 (0.76, 0.68, 0.66, 0.73, 0.69; hit p99 30 ms) just before, 0.66 (0.64, 0.68, 0.65,
  0.75, 0.62; p99 29 ms) just after. So, alternating old, new, new, old: the ratio rose by 0.06–0.12
  and the hit's p99 fell (29–30 → 26–28 ms), but over the seven 5-round runs on two machines since
  the last hot-path change hit / floor was 0.77–0.87 (median 0.80), and 0.85 is reached in two of
  them: not reliably.
- Session of 2026-12-01 (a 2-core AMD EPYC of middling speed: bare ~17 000–22 000 req/s, floor ~8
  000–11 000), the hot path unchanged (this session changed only which bodies obtain-token accepts,
  JSON alone, and how unknown paths are answered): two 5-round runs back to back. hit / floor 0.83
  (0.85, 0.82, 0.84, 0.89, 0.64; hit p99 20 ms; the table committed then, bare steady at 16 700–22
  500 req/s), then 0.79 (0.85, 0.86, 0.79, 0.71, 0.92; hit p99 30 ms, the machine slowing during the
  run: bare 21 309 → 12 588 req/s). Over the nine 5-round runs on three machines since the last
  hot-path change, hit / floor was 0.77–0.87, median 0.80; 0.85 is reached in two of them: not
  reliably.
- Second session of 2026-12-01 (a 2-core AMD EPYC whose speed moved a lot: bare 13 500–32 800
  req/s; a CPU-bound loop alone on both cores varied ±25 % from one second to the next, so the
  noise is the machine's). The hot path unchanged but for one header check per request (an
  HTTP/1.1 request without Host is now refused by the broker rather than by Node). Two 5-round runs,
  before and after the day's store changes (webhook subjects, the Cluster index-move journal, the
  never-shown Key): hit / floor 0.78 (0.67, 0.86, 0.66, 0.65, 0.81; hit p99 12 ms; bare 19 300–30 900)
  and 0.81 (0.81, 0.71, 0.79, 1.07, 0.80; hit p99 16 ms, floor's 14 ms; bare 13 600–20 800: the table
  above). The p99 rose with the slower machine, the floor's by as much. Shorter rounds did not tame
  the noise: 15 rounds of 3 s gave 0.70 (0.57–0.97). Measured beside them: \`cpu-per-request\` at
  3 000 req/s, server floor 87.8 µs, hit 104.4 µs (0.84; all three processes 0.87); at saturation
  (\`--rate 40000\`, 4 rounds of 5 s) server 78.1 and 87.7 µs (0.89; all three 0.92), the throughputs
  per round 1.00, 0.79, 0.89, 0.89 of the floor. With autocannon and no rate, 8 s runs: the server
  process used only 60–73 % of a core and the load generator 66–78 %, so neither is saturated and
  the throughput is set by how the three processes share two cores, which the server's CPU alone
  doesn't predict. A V8 profile of both at 4 000 req/s over three alternating rounds (busy time
  4 645 ms floor, 5 602 ms hit, profiled): the broker's own code (services, store, crypto, route)
  ~37 % of the gap, ioredis ~12 % (the longer admission command and reply), Fastify ~8 %, GC ~7 %,
  the rest spread over Node's HTTP and stream internals — no single cost to cut. Over the eleven
  5-round runs on four machines since the last hot-path change, hit / floor was 0.77–0.87, median
  0.80; 0.85 is reached in two of them: not reliably.
`

const children: ChildProcess[] = []

/** CPU affinity: the measured server on one core, the load generator and its helpers on another. */
interface Pinning {
  server: string
  rest: string
}

function resolvePinning(mode: string | undefined): Pinning | undefined {
  if (mode === 'off') return undefined
  let available = true
  try {
    execFileSync('taskset', ['--version'], { stdio: 'ignore' })
  } catch {
    available = false
  }
  if (mode === 'on' && !available) throw new Error('--pin on: taskset (util-linux) not found')
  if (mode !== 'on' && mode !== 'auto') throw new Error(`--pin ${mode}: expected auto, on or off`)
  return available && cpus().length >= 2 ? { server: '0', rest: '1' } : undefined
}
const PIN = resolvePinning(args.pin)

/** Pins every thread of `pid` (and what it starts later) to `cpu`. */
function pin(pid: number | undefined, cpu: string): void {
  if (pid === undefined) throw new Error('cannot pin a process without a pid')
  execFileSync('taskset', ['-a', '-p', '-c', cpu, String(pid)], { stdio: 'ignore' })
}

function medianFigures(name: string, runs: Figures[]): Figures {
  return {
    name,
    connections: runs[0]!.connections,
    requests: median(runs.map((f) => f.requests)),
    rps: median(runs.map((f) => f.rps)),
    p50: median(runs.map((f) => f.p50)),
    p99: median(runs.map((f) => f.p99)),
    max: median(runs.map((f) => f.max)),
    non2xx: runs.reduce((sum, f) => sum + f.non2xx, 0),
    errors: runs.reduce((sum, f) => sum + f.errors, 0),
  }
}

async function target(
  mode: 'bare' | 'broker' | 'floor',
  env: Env,
  key?: string,
): Promise<{ url: string; child: ChildProcess }> {
  const child = fork(fileURLToPath(new URL('./server.ts', import.meta.url)), [], {
    execArgv: [
      '--import',
      'tsx',
      ...(PROFILE === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${PROFILE}`]),
    ],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  })
  children.push(child)
  if (PIN !== undefined) pin(child.pid, PIN.server)
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m: { port: number }) => resolve(m.port))
    child.once('exit', (code) => reject(new Error(`${mode} target exited with ${code}`)))
    child.send({ mode, env, logLevel: LOG_LEVEL, key })
  })
  return { url: `http://127.0.0.1:${port}`, child }
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  await exited
}

/** Runs autocannon with one pre-built body per request (each encrypted_token is accepted once). */
async function load(
  name: string,
  url: string,
  bodies: string[],
  options: { connections: number; duration: number; rate?: number },
): Promise<Figures> {
  let next = 0
  let firstFailure: string | undefined
  const result = await autocannon({
    url,
    connections: options.connections,
    duration: options.duration,
    ...(options.rate === undefined ? {} : { overallRate: options.rate }),
    requests: [
      {
        method: 'POST',
        headers: { ...TOKEN_REQUEST_HEADERS },
        setupRequest: (request) => {
          const body = bodies[next++ % bodies.length]!
          return { ...request, body }
        },
        onResponse: (status, body) => {
          if (status >= 300 && firstFailure === undefined) firstFailure = `${status} ${body.slice(0, 300)}`
        },
      },
    ],
  })
  // The bare route checks no replay: it may reuse its bodies.
  if (next > bodies.length && !name.includes('bare'))
    console.warn(`${name}: ${next} requests reused bodies (only ${bodies.length} built)`)
  return {
    name,
    connections: options.connections,
    requests: result.requests.total,
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    max: result.latency.max,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  }
}

function bodiesFor(client: XsoarClient, count: number): string[] {
  const now = Math.floor(Date.now() / 1000)
  const out: string[] = new Array(count)
  for (let i = 0; i < count; i++) {
    out[i] = JSON.stringify({
      app_name: client.instance.appName,
      registration_id: client.registrationId,
      encrypted_token: encryptContent(client.instance.token, client.instance.key, now),
      scope: null,
      resource: '',
    })
  }
  return out
}

async function emulatorStats(url: string): Promise<number> {
  const response = await fetch(`${url}/_emulator/stats`)
  const body = (await response.json()) as { token_requests: { client_credentials: number } }
  return body.token_requests.client_credentials
}

/**
 * Deletes the replay markers every run leaves (the floor's and the broker's, one per request, kept
 * 601 s), then gives Redis a moment to shrink its key table, so every run starts from the same
 * keyspace. Without this the keyspace grew by ~200 000 keys a run, and a SET costs ~3× as much
 * (measured) for the ~350 000 keys after the keyspace crosses a power of two while Redis rehashes
 * its key table: whichever run crossed 2^20 or 2^21 paid for it (by the count of keys written,
 * the hit's fifth run in each of three runs of the benchmark).
 */
async function dropReplayMarkers(redis: RedisClient, keyPrefix: string): Promise<void> {
  const markers = await scanKeys(redis, `${keyPrefix}*seen:*`)
  for (let i = 0; i < markers.length; i += 5000) await redis.del(...markers.slice(i, i + 5000))
  await sleep(1000)
}

function row(f: Figures): string {
  return `| ${f.name} | ${f.connections} | ${f.requests} | ${f.rps.toFixed(0)} | ${f.p50} | ${f.p99} | ${f.non2xx} | ${f.errors} |`
}

async function main(): Promise<void> {
  // Before anything starts: redis-server and the emulator (in this process) inherit the affinity.
  if (PIN !== undefined) pin(process.pid, PIN.rest)
  const backend = await startBackend()
  try {
    const { env } = backend
    const keyPrefix = env.REDIS_KEY_PREFIX ?? ''
    const config = loadConfig(env)
    const connection = createRedisConnection({ url: backend.redisUrl })
    const store = createRedisStore({ redis: connection, keyRing: config.keyRing, keyPrefix })
    // An admin-consent registration for Contoso, consented at the emulator.
    const { integrationId: id, key } = await contosoRegistration(env)

    const bare = await target('bare', env)
    const floor = await target('floor', env, key)
    const broker = await target('broker', env)
    const client = new XsoarClient({
      id,
      token: CONTOSO,
      key,
      appName: 'ms-graph-mail',
      urlOverride: `${broker.url}/obtain-token`,
    })
    // Prime the cache (the one upstream call of the hot path).
    const primed = await client.getAccessToken()
    if (!primed.ok) throw new Error(`priming failed: ${primed.body}`)

    const bareBodies = bodiesFor(client, 1000)
    const hitBodies = (seconds: number) => {
      const count = HIT_BODIES_PER_SECOND * seconds
      return bodiesFor(client, count)
    }

    console.log(
      `measuring ${ROUNDS} rounds (bare, floor, hit) of ${DURATION} s each at ${CONNECTIONS} connections, after ${WARMUP} s warm-ups${PIN === undefined ? '' : `; servers pinned to CPU ${PIN.server}, the rest to CPU ${PIN.rest}`}…`,
    )
    const loadBefore = loadavg()[0]!
    await load('warm-up bare', `${bare.url}/json`, bareBodies, { connections: CONNECTIONS, duration: WARMUP })
    await load('warm-up floor', `${floor.url}/json`, hitBodies(WARMUP), {
      connections: CONNECTIONS,
      duration: WARMUP,
    })
    await load('warm-up broker', `${broker.url}/obtain-token`, hitBodies(WARMUP), {
      connections: CONNECTIONS,
      duration: WARMUP,
    })
    await dropReplayMarkers(connection, keyPrefix)
    const bareRuns: Figures[] = []
    const floorRuns: Figures[] = []
    const hotRuns: Figures[] = []
    const runLoads: number[] = []
    for (let round = 1; round <= ROUNDS; round++) {
      // built before the round, outside the measurement
      const floorBodies = hitBodies(DURATION + 1)
      const bodies = hitBodies(DURATION + 1)
      runLoads.push(loadavg()[0]!)
      const bareRun = await load(`bare Fastify JSON route, run ${round}`, `${bare.url}/json`, bareBodies, {
        connections: CONNECTIONS,
        duration: DURATION,
      })
      runLoads.push(loadavg()[0]!)
      const floorRun = await load(
        `floor (required work only), run ${round}`,
        `${floor.url}/json`,
        floorBodies,
        {
          connections: CONNECTIONS,
          duration: DURATION,
        },
      )
      await dropReplayMarkers(connection, keyPrefix)
      runLoads.push(loadavg()[0]!)
      const hotRun = await load(
        `obtain-token, cache hit, run ${round}`,
        `${broker.url}/obtain-token`,
        bodies,
        {
          connections: CONNECTIONS,
          duration: DURATION,
        },
      )
      await dropReplayMarkers(connection, keyPrefix)
      bareRuns.push(bareRun)
      floorRuns.push(floorRun)
      hotRuns.push(hotRun)
      console.log(
        `round ${round}: bare ${bareRun.rps.toFixed(0)} req/s p99 ${bareRun.p99} ms; floor ${floorRun.rps.toFixed(0)} req/s p99 ${floorRun.p99} ms; hit ${hotRun.rps.toFixed(0)} req/s p99 ${hotRun.p99} ms; ratio ${(hotRun.rps / bareRun.rps).toFixed(2)} (floor ${(floorRun.rps / bareRun.rps).toFixed(2)})`,
      )
    }
    await stop(bare.child)
    await stop(floor.child)
    await stop(broker.child)
    const bareFigures = medianFigures(`bare Fastify JSON route, median of ${ROUNDS}`, bareRuns)
    const floorFigures = medianFigures(`floor (required work only), median of ${ROUNDS}`, floorRuns)
    const hotFigures = medianFigures(`obtain-token, cache hit, median of ${ROUNDS}`, hotRuns)
    const loadAfter = loadavg()[0]!

    // Cold path: tokens live 60 s at the emulator, inside the 300 s refresh margin, so no request is
    // served from the cache. At 1 connection every request is one upstream call; at CONNECTIONS
    // concurrent misses of one tenant share a call (single-flight), which the ratio below shows.
    const lifetime = await fetch(`${backend.emulatorUrl}/_emulator/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ accessTokenLifetimeSec: 60 }),
    })
    if (!lifetime.ok) throw new Error('could not shorten the emulator token lifetime')
    // The hot run's token (3600 s) is still cached in Redis: drop it so the cold run starts cold.
    await store.tokens.deleteGroup(`tenant:ms-graph-mail:global:${CONTOSO}`)
    await store.close()
    const cold = await target('broker', env)
    const coldClient = new XsoarClient({ ...client.instance, urlOverride: `${cold.url}/obtain-token` })
    const coldBodies = bodiesFor(coldClient, 12_000 + 10_000 * COLD_DURATION)
    await load('warm-up cold', `${cold.url}/obtain-token`, coldBodies.slice(0, 2000), {
      connections: 1,
      duration: 2,
    })
    const c0 = await emulatorStats(backend.emulatorUrl)
    const cold1 = await load(
      'obtain-token, cold (miss), 1 connection',
      `${cold.url}/obtain-token`,
      coldBodies.slice(2000, 12_000),
      {
        connections: 1,
        duration: COLD_DURATION,
      },
    )
    const c1 = await emulatorStats(backend.emulatorUrl)
    const coldN = await load(
      `obtain-token, cold (miss), ${CONNECTIONS} connections`,
      `${cold.url}/obtain-token`,
      coldBodies.slice(12_000),
      { connections: CONNECTIONS, duration: COLD_DURATION },
    )
    const c2 = await emulatorStats(backend.emulatorUrl)
    await stop(cold.child)

    // Across many token expiries, refresh-ahead on and off (bench/expiries.ts).
    const expiries = await measureExpiries({
      emulatorUrl: backend.emulatorUrl,
      env,
      redisUrl: backend.redisUrl,
      rounds: ROUNDS,
      target: (targetEnv) => target('broker', targetEnv),
      stop,
      load,
      upstreamCalls: () => emulatorStats(backend.emulatorUrl),
    })
    for (const f of [...expiries.runs, ...expiries.medians]) {
      console.log(
        `${f.name.padEnd(52)} p50 ${String(f.p50).padStart(4)} ms   p99 ${String(f.p99).padStart(4)} ms   max ${String(f.max).padStart(5)} ms   upstream ${f.upstream}   waited ${f.waited}   non-2xx ${f.non2xx}   errors ${f.errors}   load ${f.load}`,
      )
    }

    const ratio = hotFigures.rps / bareFigures.rps
    const floorRatio = floorFigures.rps / bareFigures.rps
    const overFloor = hotFigures.rps / floorFigures.rps
    const perRound = bareRuns.flatMap((b, i) => [b, floorRuns[i]!, hotRuns[i]!])
    const figures = [bareFigures, floorFigures, hotFigures, cold1, coldN]
    const roundRatios = hotRuns.map((h, i) => (h.rps / bareRuns[i]!.rps).toFixed(2))
    const floorRoundRatios = floorRuns.map((f, i) => (f.rps / bareRuns[i]!.rps).toFixed(2))
    const overFloorRounds = hotRuns.map((h, i) => (h.rps / floorRuns[i]!.rps).toFixed(2))
    console.log()
    for (const f of [...perRound, ...figures]) {
      console.log(
        `${f.name.padEnd(44)} ${f.rps.toFixed(0).padStart(7)} req/s   p50 ${String(f.p50).padStart(4)} ms   p99 ${String(f.p99).padStart(4)} ms   non-2xx ${f.non2xx}`,
      )
    }
    const upstream1 = c1 - c0
    const upstreamN = c2 - c1
    console.log(
      `ratio of the medians obtain-token / bare: ${ratio.toFixed(2)} (target ≥ 0.6; per round ${roundRatios.join(', ')}); hot p99 median ${hotFigures.p99} ms (target ≤ 10 ms)`,
    )
    console.log(
      `floor / bare: ${floorRatio.toFixed(2)} (per round ${floorRoundRatios.join(', ')}); obtain-token / floor: ${overFloor.toFixed(2)} (target ≥ 0.85; per round ${overFloorRounds.join(', ')})`,
    )
    console.log(
      `cold: ${upstream1} upstream calls for ${cold1.requests} requests at 1 connection; ${upstreamN} for ${coldN.requests} at ${CONNECTIONS}`,
    )

    const cpu = cpus()
    const redisVersion = execFileSync('redis-server', ['--version']).toString().trim()
    const results = `# obtain-token benchmark

Written by \`npm run bench\` (bench/obtain-token.ts); do not edit by hand.

## Machine
- CPU: ${cpu[0]?.model ?? 'unknown'}, ${cpu.length} cores
- Memory: ${(totalmem() / 2 ** 30).toFixed(1)} GiB
- Node.js ${process.version} (${process.platform}/${process.arch}); ${redisVersion}
- Date: ${new Date().toISOString()}
- Load average (1 min) before / after the alternating runs: ${loadBefore.toFixed(2)} / ${loadAfter.toFixed(2)}; at the start of
  each run: ${runLoads.map((l) => l.toFixed(2)).join(', ')} (the benchmark's own processes count in these; a load
  well above the core count before the first run means other work competes and every figure is noisy)
- CPU pinning: ${PIN === undefined ? 'none (taskset missing, fewer than 2 cores, or --pin off)' : `measured server (bare or broker) on CPU ${PIN.server}; autocannon, redis-server and the emulator on CPU ${PIN.rest} (\`taskset -a -p -c\`)`}

## Method
- Each target runs in its own forked Node process (\`--import tsx\`, same flags), the logger of
  src/logger.ts (\`createLogger\`) at level \`${LOG_LEVEL}\`, output discarded. autocannon ${CONNECTIONS} connections, in
  the parent process; redis-server (no persistence) and the Entra ID emulator run on the same machine.
- The targets are started once and warmed up (${WARMUP} s each); then ${ROUNDS} rounds run bare, floor and hit for
  ${DURATION} s each, in turn (only one target is under load at a time), so a change of the machine's load
  hits all alike. Reported: every run, and per target the median of the runs (requests/s, p50 and p99
  each taken separately); the ratios are of those medians. The replay markers a run leaves in
  Redis (one per request) are deleted before the next run, so every run starts from the same
  keyspace (a growing one made Redis rehash its key table in whichever run crossed a power of two). The same pinning, Node flags and logger
  apply to every target; the bare route is not slowed down in any way (it writes no log line).
- **bare**: Fastify, one POST JSON route with body and response schemas returning a token-sized body.
- **floor**: the bare route plus only what every cache hit must do, written as directly as possible
  (bench/server.ts): AES-GCM-open the request's \`encrypted_token\` under the Key, one auto-pipelined
  ioredis call of one Lua script (replay claim \`SET NX PX\`, per-registration and per-IP counters),
  and one completion log line. No other check, no metrics, no security headers, no request id. No
  implementation making one Redis call per request can be faster than this on the same machine.
- **obtain-token, cache hit**: the real broker (\`buildApp\`, the Redis store as \`createStoreFromConfig\`
  builds it, auto-pipelining included; Entra identity provider) with an admin-consent registration of
  \`ms-graph-mail\`; every request carries a fresh \`encrypted_token\` (pre-built; each is accepted
  once), so each does the full check: schema, app, AES-GCM under the registration's Key, timestamp,
  Token, status, scope, then one atomic \`admit\` Lua call (per-IP limit, the registration still
  active at the version checked, replay claim, per-registration limit), the access token from the
  per-instance cache of fresh tokens, usage touch (at most every 30 s), metrics, security headers,
  request id, the completion log line: one Redis command per request. Rate limits raised so one
  client may send this much.
- **cold**: emulator access tokens live 60 s, inside the 300 s refresh margin, so no request is a
  cache hit: each goes through single-flight, the Redis lock, a cache re-read and a client-credentials
  call to the emulator (which signs an RS256 JWT), then the cache write.

## Results
| run | connections | requests | req/s | p50 ms | p99 ms | non-2xx | errors |
|---|---|---|---|---|---|---|---|
${perRound.map(row).join('\n')}
${figures.map(row).join('\n')}

- **Ratio obtain-token (hit) / bare, medians: ${ratio.toFixed(2)}** (target ≥ 0.6): ${ratio >= 0.6 ? 'met' : 'missed'}
  (per round: ${roundRatios.join(', ')})
- **obtain-token (hit) p99, median: ${hotFigures.p99} ms** (target ≤ 10 ms): ${hotFigures.p99 <= 10 ? 'met' : 'missed'}
  (per run: ${hotRuns.map((f) => `${f.p99} ms`).join(', ')})
- **Ratio obtain-token (hit) / floor, medians: ${overFloor.toFixed(2)}** (target ≥ 0.85): ${overFloor >= 0.85 ? 'met' : 'missed'}
  (per round: ${overFloorRounds.join(', ')}): what the broker's own checks, metrics, headers and
  code cost on top of the floor.
- Floor / bare, medians: ${floorRatio.toFixed(2)} (per round: ${floorRoundRatios.join(', ')}): the most any
  implementation that logs each request and makes one Redis call for it can reach here.
- Cold path: ${upstream1} client-credentials calls for ${cold1.requests} requests at 1 connection (one per
  request, give or take one in flight when counted: the cost of a miss is the p50 above); ${upstreamN} calls for ${coldN.requests} requests at ${CONNECTIONS}
  connections (concurrent misses of one tenant share one call).

${expiriesSection(expiries)}
${NOTES}
`
    writeFileSync(new URL('./RESULTS.md', import.meta.url), results)
    console.log('wrote bench/RESULTS.md')
  } finally {
    for (const child of children) await stop(child)
    await backend.close()
  }
}

main().catch((error: unknown) => {
  console.error(error)
  for (const child of children) child.kill('SIGKILL')
  process.exit(1)
})
