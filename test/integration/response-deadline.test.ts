// "The deadline is a deadline": every obtain-token answer comes within RESPONSE_DEADLINE_MS as the
// server measures it (the completion line's durationMs, from the request's arrival until its answer
// is written), also while the broker process competes for the CPU with busy loops and the identity
// provider answers nothing in time — the case where answers are cut by the deadline itself.
// A timed assertion, because the bound is the behaviour the issue states.
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { cpus } from 'node:os'
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest'
import { type RunningEmulator, startEmulator } from '../../emulator/server.js'
import type { ConsentValues } from '../support/broker.js'
import { type BrokerProcess, consentOverHttp, productionEnv, spawnBroker } from '../support/broker-process.js'
import { XsoarClient } from '../support/xsoar-client.js'

const RESPONSE_DEADLINE_MS = 3_000
const LOAD_MS = 15_000
const CALLERS = 12

let emulator: RunningEmulator
let broker: BrokerProcess | undefined
const hogs: ChildProcess[] = []

beforeAll(async () => {
  emulator = await startEmulator({ port: 0 })
})

afterAll(async () => {
  for (const hog of hogs) hog.kill('SIGKILL')
  await broker?.stop(5_000)
  await fetch(`${emulator.url}/_emulator/faults`, { method: 'DELETE' }).catch(() => undefined)
  await emulator?.close()
})

/** A process spinning on the CPU until killed. */
function busyLoop(): ChildProcess {
  const hog = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' })
  hogs.push(hog)
  return hog
}

describe('the response deadline under CPU contention', () => {
  it('every obtain-token answer within RESPONSE_DEADLINE_MS by the server, identity provider stalled, CPU contended', async () => {
    broker = await spawnBroker({
      env: (port) =>
        productionEnv({
          port,
          redisUrl: inject('redisUrl'),
          authorityUrl: emulator.url,
          env: {
            REDIS_KEY_PREFIX: `proc:${randomBytes(6).toString('hex')}:`,
            RESPONSE_DEADLINE_MS: String(RESPONSE_DEADLINE_MS),
            // The upstream call is cut by what is left of the request's deadline, not by its own timeout.
            UPSTREAM_TIMEOUT_MS: String(RESPONSE_DEADLINE_MS - 1),
            // No cached token is ever servable (tokens live 60 s, the margin is 120 s): every request
            // needs the identity provider.
            TOKEN_REFRESH_MARGIN_SECONDS: '120',
            RATE_LIMIT_PER_REGISTRATION: '1000000',
            RATE_LIMIT_PER_IP: '1000000',
            LOG_LEVEL: 'info',
          },
        }),
      readyTimeoutMs: 90_000,
    })
    const registrations: Array<{ values: ConsentValues; app: string }> = []
    for (const app of ['ms-graph-mail', 'ms-graph-user', 'ms-defender-atp']) {
      for (const username of ['admin@contoso.example', 'admin@fabrikam.example']) {
        registrations.push({ values: await consentOverHttp(broker.url, { slug: app, username }), app })
      }
    }
    await fetch(`${emulator.url}/_emulator/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ accessTokenLifetimeSec: 60 }),
    })
    // From now on the identity provider holds every token request far past the deadline.
    const stalled = await fetch(`${emulator.url}/_emulator/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ grantType: 'client_credentials', delayMs: 60_000, count: 100_000 }),
    })
    expect(stalled.ok).toBe(true)

    // More spinning processes than cores: the broker gets a share of the CPU, never a core of its own.
    for (let i = 0; i < cpus().length + 1; i++) busyLoop()
    const seenBefore = broker.stdout.length
    const statuses: number[] = []
    const until = Date.now() + LOAD_MS
    await Promise.all(
      Array.from({ length: CALLERS }, async (_, i) => {
        const { values, app } = registrations[i % registrations.length]!
        const client = new XsoarClient({ ...values, appName: app })
        while (Date.now() < until) {
          const answer = await client.getAccessToken()
          statuses.push(answer.status)
        }
      }),
    )
    for (const hog of hogs.splice(0)) hog.kill('SIGKILL')

    const running = broker
    const completedLines = () =>
      running.stdout
        .slice(seenBefore)
        .map(
          (line) =>
            JSON.parse(line) as { msg: string; url?: string; statusCode?: number; durationMs?: number },
        )
        .filter((line) => line.msg === 'request completed' && line.url === '/obtain-token')
    // Every request was answered, and the server logged each answer (its last lines may still be
    // on their way through the pipe).
    expect(statuses.length).toBeGreaterThan(CALLERS)
    await vi.waitFor(() => expect(completedLines()).toHaveLength(statuses.length), { timeout: 10_000 })
    const completed = completedLines()
    expect(statuses.every((status) => status >= 500)).toBe(true)
    // The deadline itself cut some of them (the identity provider stalled, no backoff answer yet).
    expect(
      completed.filter((line) => (line.durationMs ?? 0) >= RESPONSE_DEADLINE_MS / 2).length,
    ).toBeGreaterThan(0)
    const slowest = Math.max(...completed.map((line) => line.durationMs ?? Number.POSITIVE_INFINITY))
    expect(slowest).toBeLessThanOrEqual(RESPONSE_DEADLINE_MS)
  }, 180_000)
})
