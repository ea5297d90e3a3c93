// The steady-state figure that matters to callers across many token expiries: obtain-token latency
// at a fixed request rate while tokens keep expiring (emulator lifetimes of a few seconds, each
// upstream call held 200 ms as Entra's often are), with refresh-ahead on and off, against the same
// rate on a token that never expires. Runs alternate (hit, ahead on, ahead off) per round. Each
// target has a registration and token cache of its own (its own key prefix): a shared cache would
// let the hit target's long-lived token serve the others, and no token would expire during a run.
// Called by bench/obtain-token.ts (`npm run bench`), which owns the Redis, emulator and targets; or
// alone, for focused measurements: `npx tsx bench/expiries.ts --help`.
import { type ChildProcess, fork } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { loadavg } from 'node:os'
import { fileURLToPath, pathToFileURL } from 'node:url'
import autocannon from 'autocannon'
import { LOG_LEVELS } from '../src/config/types.js'
import type { Env } from '../src/config.js'
import { encryptContent, XsoarClient } from '../test/support/xsoar-client.js'
import { CONTOSO, contosoRegistration, startBackend, TOKEN_REQUEST_HEADERS } from './backend.js'
import { benchOptions, choiceOption, integerOption } from './options.js'
import { median } from './support.js'

/** What the caller of obtain-token's bench lends this section. */
export interface ExpiryBenchDeps {
  emulatorUrl: string
  /** The broker environment; each target gets its own REDIS_KEY_PREFIX and registration. */
  env: Env
  redisUrl: string
  rounds: number
  /** Seconds per run (default EXPIRY_DURATION_S). */
  duration?: number
  /** Requests per second (default EXPIRY_RATE). */
  rate?: number
  /** Starts a broker target with `env`; returns its URL. */
  target: (env: Env) => Promise<{ url: string; child: ChildProcess }>
  stop: (child: ChildProcess) => Promise<void>
  /** autocannon at a fixed rate, one pre-built body per request. */
  load: (
    name: string,
    url: string,
    bodies: string[],
    options: { connections: number; duration: number; rate: number },
  ) => Promise<{
    name: string
    requests: number
    p50: number
    p99: number
    max: number
    non2xx: number
    errors: number
  }>
  /** Client-credentials calls the emulator answered so far. */
  upstreamCalls: () => Promise<number>
}

export const EXPIRY_LIFETIME_S = 6
const MARGIN_S = 1
const UPSTREAM_DELAY_MS = 200
export const EXPIRY_RATE = 200
const EXPIRY_CONNECTIONS = 10
export const EXPIRY_DURATION_S = 30

export interface ExpiryRun {
  name: string
  requests: number
  p50: number
  p99: number
  max: number
  non2xx: number
  errors: number
  upstream: number
  /** Callers that waited for an upstream call (token cache `miss` or `shared`) during the run. */
  waited: number
  /** The machine's 1-minute load average around the run. */
  load: number
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** An admin registration for Contoso under a key prefix of its own; the client to ask for it. */
async function ownRegistration(env: Env, redisUrl: string): Promise<{ env: Env; client: XsoarClient }> {
  const targetEnv = {
    ...env,
    REDIS_URL: redisUrl,
    REDIS_KEY_PREFIX: `bench-expiry:${randomBytes(4).toString('hex')}:`,
  }
  const { integrationId, key } = await contosoRegistration(targetEnv)
  const client = new XsoarClient({ id: integrationId, token: CONTOSO, key, appName: 'ms-graph-mail' })
  return { env: targetEnv, client }
}

function bodies(client: XsoarClient, count: number): string[] {
  const now = Math.floor(Date.now() / 1000)
  return Array.from({ length: count }, () =>
    JSON.stringify({
      app_name: client.instance.appName,
      registration_id: client.registrationId,
      encrypted_token: encryptContent(client.instance.token, client.instance.key, now),
      scope: null,
      resource: '',
    }),
  )
}

/** Callers of a target that waited for an upstream call so far (its token cache misses and shares). */
async function callersWaited(base: string, operatorToken: string): Promise<number> {
  const text = await (
    await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${operatorToken}` } })
  ).text()
  let sum = 0
  for (const line of text.split('\n')) {
    if (!line.startsWith('consent_broker_token_cache_total{')) continue
    if (line.includes('result="miss"') || line.includes('result="shared"'))
      sum += Number(line.split(' ').pop())
  }
  return sum
}

async function emulatorPost(url: string, body: unknown): Promise<void> {
  const response = await fetch(`${url}/_emulator/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  if (!response.ok) throw new Error(`emulator refused ${JSON.stringify(body)}: ${response.status}`)
}

/** Runs the section; returns every run and the medians per target. */
export async function measureExpiries(
  deps: ExpiryBenchDeps,
): Promise<{ runs: ExpiryRun[]; medians: ExpiryRun[] }> {
  const { emulatorUrl } = deps
  const duration = deps.duration ?? EXPIRY_DURATION_S
  const rate = deps.rate ?? EXPIRY_RATE
  // Every upstream call takes 200 ms from now on (a fault with a large count).
  await emulatorPost(emulatorUrl, {
    grantType: 'client_credentials',
    delayMs: UPSTREAM_DELAY_MS,
    count: 1_000_000,
  })
  // An operator token of the run's own, to read each target's token cache counters.
  const operatorToken = randomBytes(24).toString('hex')
  const margin = { TOKEN_REFRESH_MARGIN_SECONDS: String(MARGIN_S), OPERATOR_TOKENS: `bench:${operatorToken}` }
  const waitedSoFar = (base: string) => callersWaited(base, operatorToken)
  const settings = {
    hit: margin,
    on: { ...margin, TOKEN_REFRESH_AHEAD_FRACTION: '0.5' },
    off: { ...margin, TOKEN_REFRESH_AHEAD_FRACTION: '0' },
  }
  const targets: Partial<
    Record<keyof typeof settings, { url: string; child: ChildProcess; client: XsoarClient }>
  > = {}
  const runs: ExpiryRun[] = []
  try {
    for (const kind of ['hit', 'on', 'off'] as const) {
      const { env, client } = await ownRegistration({ ...deps.env, ...settings[kind] }, deps.redisUrl)
      targets[kind] = { ...(await deps.target(env)), client }
    }
    for (let round = 1; round <= deps.rounds; round++) {
      for (const kind of ['hit', 'on', 'off'] as const) {
        const { url: base, client } = targets[kind]!
        const url = `${base}/obtain-token`
        // hit: a token that outlives the run; on/off: tokens of a few seconds, many expiries per run.
        await emulatorPost(emulatorUrl, { accessTokenLifetimeSec: kind === 'hit' ? 3600 : EXPIRY_LIFETIME_S })
        const prime = bodies(client, 1)
        const primed = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: prime[0],
        })
        if (!primed.ok) throw new Error(`priming ${kind} failed: ${primed.status} ${await primed.text()}`)
        // The run starts on the token just primed (in use from then on: steady state). Idle since
        // its last run, the target's previous token expired unrefreshed, as it should: refresh-ahead
        // serves tokens in use, so waiting here would make the run's first requests one miss.
        const before = await deps.upstreamCalls()
        const waitedBefore = await waitedSoFar(base)
        const name =
          kind === 'hit'
            ? `cache hit, token outlives the run, run ${round}`
            : `${EXPIRY_LIFETIME_S} s tokens, refresh-ahead ${kind}, run ${round}`
        const loadBefore = loadavg()[0]!
        const figures = await deps.load(name, url, bodies(client, rate * (duration + 2)), {
          connections: EXPIRY_CONNECTIONS,
          duration,
          rate,
        })
        runs.push({
          ...figures,
          upstream: (await deps.upstreamCalls()) - before,
          waited: (await waitedSoFar(base)) - waitedBefore,
          load: Math.round(((loadBefore + loadavg()[0]!) / 2) * 10) / 10,
        })
        // A token request sent at the run's very end is still held by the emulator, which reads the
        // lifetime when it answers: changing the lifetime for the next run now would hand this
        // target a token of the next run's lifetime (an "off" target then served one 3600 s token
        // through its whole next run: 0 expiries). Let it finish first.
        await sleep(UPSTREAM_DELAY_MS * 2)
      }
    }
  } finally {
    for (const t of Object.values(targets)) await deps.stop(t.child)
    await fetch(`${emulatorUrl}/_emulator/faults`, { method: 'DELETE' })
  }
  const medians = ['cache hit', 'refresh-ahead on', 'refresh-ahead off'].map((label, i) => {
    const mine = runs.filter((_, index) => index % 3 === i)
    return {
      name: `${label}, median of ${deps.rounds}`,
      requests: median(mine.map((r) => r.requests)),
      p50: median(mine.map((r) => r.p50)),
      p99: median(mine.map((r) => r.p99)),
      max: median(mine.map((r) => r.max)),
      non2xx: mine.reduce((s, r) => s + r.non2xx, 0),
      errors: mine.reduce((s, r) => s + r.errors, 0),
      upstream: median(mine.map((r) => r.upstream)),
      waited: median(mine.map((r) => r.waited)),
      load: median(mine.map((r) => r.load)),
    }
  })
  return { runs, medians }
}

/** The RESULTS.md section. */
export function expiriesSection(result: { runs: ExpiryRun[]; medians: ExpiryRun[] }): string {
  const row = (r: ExpiryRun) =>
    `| ${r.name} | ${r.requests} | ${r.p50} | ${r.p99} | ${r.max} | ${r.non2xx} | ${r.errors} | ${r.upstream} | ${r.waited} | ${r.load} |`
  const [hit, on, off] = result.medians as [ExpiryRun, ExpiryRun, ExpiryRun]
  return `## Across token expiries (refresh-ahead on and off)
- ${EXPIRY_RATE} req/s (autocannon \`overallRate\`, ${EXPIRY_CONNECTIONS} connections) for ${EXPIRY_DURATION_S} s per run on one broker
  target per setting (each with its own registration and token cache), runs alternating (hit, on,
  off) each round. Every client-credentials call is
  held ${UPSTREAM_DELAY_MS} ms by the emulator. **hit**: a 3600 s token (no expiry during the run).
  **on / off**: ${EXPIRY_LIFETIME_S} s tokens, \`TOKEN_REFRESH_MARGIN_SECONDS=${MARGIN_S}\`, so a token is served for
  ${EXPIRY_LIFETIME_S - MARGIN_S} s and each run spans about ${Math.round(EXPIRY_DURATION_S / (EXPIRY_LIFETIME_S - MARGIN_S))} expiries; \`TOKEN_REFRESH_AHEAD_FRACTION\` 0.5 (on) or 0 (off).
  \`upstream\`: client-credentials calls during the run; \`waited\`: callers that waited for one
  (the target's token cache misses and shares); \`load\`: the machine's 1-minute load average
  around the run.

| run | requests | p50 ms | p99 ms | max ms | non-2xx | errors | upstream | waited | load |
|---|---|---|---|---|---|---|---|---|---|
${result.runs.map(row).join('\n')}
${result.medians.map(row).join('\n')}

- **p99 across expiries, refresh-ahead on: ${on.p99} ms** vs cache hit ${hit.p99} ms at the same rate
  (goal: equal); refresh-ahead off: ${off.p99} ms (max ${off.max} ms: callers waiting for the upstream call
  at each expiry).
`
}

// ---- alone: `npx tsx bench/expiries.ts [--rounds 3] [--duration 30] [--rate 200]` --------------------

const USAGE = `usage: npx tsx bench/expiries.ts [--rounds N] [--duration S] [--rate R] [--log-level L] [--profile DIR]
  Latency of obtain-token across token expiries, refresh-ahead on vs off vs a cache hit, alone
  (its own redis-server, emulator and three broker targets; runs alternate hit, on, off per round).
  --rounds     rounds of (hit, on, off)                 default 3
  --duration   seconds per run                          default ${EXPIRY_DURATION_S}
  --rate       requests per second (autocannon)         default ${EXPIRY_RATE}
  --log-level  the targets' log level (lines discarded) default info
  --profile    a directory: V8 CPU profiles of the targets (one file each, in start order hit, on, off)
  Prints each run and the medians with p50/p99/max and the machine's load average.`

/** autocannon at a fixed rate, one pre-built body per request (each encrypted_token is accepted once). */
async function fixedRateLoad(
  name: string,
  url: string,
  requestBodies: string[],
  options: { connections: number; duration: number; rate: number },
) {
  let next = 0
  const result = await autocannon({
    url,
    connections: options.connections,
    duration: options.duration,
    overallRate: options.rate,
    requests: [
      {
        method: 'POST',
        headers: { ...TOKEN_REQUEST_HEADERS },
        setupRequest: (request) => ({ ...request, body: requestBodies[next++ % requestBodies.length]! }),
      },
    ],
  })
  return {
    name,
    requests: result.requests.total,
    p50: result.latency.p50,
    p99: result.latency.p99,
    max: result.latency.max,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  }
}

async function alone(): Promise<void> {
  const args = benchOptions(USAGE, {
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: String(EXPIRY_DURATION_S) },
    rate: { type: 'string', default: String(EXPIRY_RATE) },
    'log-level': { type: 'string', default: 'info' },
    profile: { type: 'string' },
  })
  const rounds = integerOption(USAGE, 'rounds', args.rounds, 1, 1000)
  const duration = integerOption(USAGE, 'duration', args.duration, 1, 3600)
  const rate = integerOption(USAGE, 'rate', args.rate, 1)
  const logLevel = choiceOption(USAGE, 'log-level', args['log-level'], LOG_LEVELS)
  const backend = await startBackend()
  const children: ChildProcess[] = []
  try {
    const { env } = backend
    const result = await measureExpiries({
      emulatorUrl: backend.emulatorUrl,
      env,
      redisUrl: backend.redisUrl,
      rounds,
      duration,
      rate,
      target: async (targetEnv) => {
        const child = fork(fileURLToPath(new URL('./server.ts', import.meta.url)), [], {
          execArgv: [
            '--import',
            'tsx',
            ...(args.profile === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${args.profile}`]),
          ],
          stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
        })
        children.push(child)
        const port = await new Promise<number>((resolve, reject) => {
          child.once('message', (m: { port: number }) => resolve(m.port))
          child.once('exit', (code) => reject(new Error(`broker target exited with ${code}`)))
          child.send({ mode: 'broker', env: targetEnv, logLevel })
        })
        return { url: `http://127.0.0.1:${port}`, child }
      },
      stop: async (child) => {
        if (child.exitCode !== null) return
        const exited = new Promise((resolve) => child.once('exit', resolve))
        child.kill('SIGTERM')
        await exited
      },
      load: fixedRateLoad,
      upstreamCalls: async () => {
        const stats = (await (await fetch(`${backend.emulatorUrl}/_emulator/stats`)).json()) as {
          token_requests: { client_credentials: number }
        }
        return stats.token_requests.client_credentials
      },
    })
    for (const f of [...result.runs, ...result.medians]) {
      console.log(
        `${f.name.padEnd(52)} n ${String(f.requests).padStart(5)}   p50 ${String(f.p50).padStart(4)} ms   p99 ${String(f.p99).padStart(4)} ms   max ${String(f.max).padStart(5)} ms   upstream ${String(f.upstream).padStart(2)}   waited ${String(f.waited).padStart(3)}   non-2xx ${f.non2xx}   errors ${f.errors}   load ${f.load}`,
      )
    }
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL')
    await backend.close()
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  alone().catch((error: unknown) => {
    console.error(error)
    process.exit(1)
  })
}
