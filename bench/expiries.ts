// The steady-state figure that matters to callers across many token expiries: obtain-token latency
// at a fixed request rate while tokens keep expiring (emulator lifetimes of a few seconds, each
// upstream call held 200 ms as Entra's often are), with refresh-ahead on and off, against the same
// rate on a token that never expires. Runs alternate (hit, ahead on, ahead off) per round.
// Called by bench/obtain-token.ts (`npm run bench`), which owns the Redis, emulator and targets.
import type { ChildProcess } from 'node:child_process'
import type { Env } from '../src/config.js'
import { encryptContent, type XsoarClient } from '../test/support/xsoar-client.js'

/** What the caller of obtain-token's bench lends this section. */
export interface ExpiryBenchDeps {
  emulatorUrl: string
  env: Env
  client: XsoarClient
  rounds: number
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
  const { emulatorUrl, client } = deps
  // Every upstream call takes 200 ms from now on (a fault with a large count).
  await emulatorPost(emulatorUrl, {
    grantType: 'client_credentials',
    delayMs: UPSTREAM_DELAY_MS,
    count: 1_000_000,
  })
  const margin = { TOKEN_REFRESH_MARGIN_SECONDS: String(MARGIN_S) }
  const targets = {
    hit: await deps.target({ ...deps.env, ...margin }),
    on: await deps.target({ ...deps.env, ...margin, TOKEN_REFRESH_AHEAD_FRACTION: '0.5' }),
    off: await deps.target({ ...deps.env, ...margin, TOKEN_REFRESH_AHEAD_FRACTION: '0' }),
  }
  const runs: ExpiryRun[] = []
  try {
    for (let round = 1; round <= deps.rounds; round++) {
      for (const kind of ['hit', 'on', 'off'] as const) {
        const url = `${targets[kind].url}/obtain-token`
        // hit: a token that outlives the run; on/off: tokens of a few seconds, many expiries per run.
        await emulatorPost(emulatorUrl, { accessTokenLifetimeSec: kind === 'hit' ? 3600 : EXPIRY_LIFETIME_S })
        const prime = bodies(client, 1)
        const primed = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: prime[0],
        })
        if (!primed.ok) throw new Error(`priming ${kind} failed: ${primed.status} ${await primed.text()}`)
        if (kind !== 'hit') await new Promise((r) => setTimeout(r, EXPIRY_LIFETIME_S * 1000))
        const before = await deps.upstreamCalls()
        const name =
          kind === 'hit'
            ? `cache hit, token outlives the run, run ${round}`
            : `${EXPIRY_LIFETIME_S} s tokens, refresh-ahead ${kind}, run ${round}`
        const figures = await deps.load(name, url, bodies(client, EXPIRY_RATE * (EXPIRY_DURATION_S + 2)), {
          connections: EXPIRY_CONNECTIONS,
          duration: EXPIRY_DURATION_S,
          rate: EXPIRY_RATE,
        })
        runs.push({ ...figures, upstream: (await deps.upstreamCalls()) - before })
      }
    }
  } finally {
    for (const t of Object.values(targets)) await deps.stop(t.child)
    await fetch(`${emulatorUrl}/_emulator/faults`, { method: 'DELETE' })
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!
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
    }
  })
  return { runs, medians }
}

/** The RESULTS.md section. */
export function expiriesSection(result: { runs: ExpiryRun[]; medians: ExpiryRun[] }): string {
  const row = (r: ExpiryRun) =>
    `| ${r.name} | ${r.requests} | ${r.p50} | ${r.p99} | ${r.max} | ${r.non2xx} | ${r.errors} | ${r.upstream} |`
  const [hit, on, off] = result.medians as [ExpiryRun, ExpiryRun, ExpiryRun]
  return `## Across token expiries (refresh-ahead on and off)
- ${EXPIRY_RATE} req/s (autocannon \`overallRate\`, ${EXPIRY_CONNECTIONS} connections) for ${EXPIRY_DURATION_S} s per run on one broker
  target per setting, runs alternating (hit, on, off) each round. Every client-credentials call is
  held ${UPSTREAM_DELAY_MS} ms by the emulator. **hit**: a 3600 s token (no expiry during the run).
  **on / off**: ${EXPIRY_LIFETIME_S} s tokens, \`TOKEN_REFRESH_MARGIN_SECONDS=${MARGIN_S}\`, so a token is served for
  ${EXPIRY_LIFETIME_S - MARGIN_S} s and each run spans about ${Math.round(EXPIRY_DURATION_S / (EXPIRY_LIFETIME_S - MARGIN_S))} expiries; \`TOKEN_REFRESH_AHEAD_FRACTION\` 0.5 (on) or 0 (off).
  \`upstream\`: client-credentials calls during the run.

| run | requests | p50 ms | p99 ms | max ms | non-2xx | errors | upstream |
|---|---|---|---|---|---|---|---|
${result.runs.map(row).join('\n')}
${result.medians.map(row).join('\n')}

- **p99 across expiries, refresh-ahead on: ${on.p99} ms** vs cache hit ${hit.p99} ms at the same rate
  (goal: equal); refresh-ahead off: ${off.p99} ms (max ${off.max} ms: callers waiting for the upstream call
  at each expiry).
`
}
