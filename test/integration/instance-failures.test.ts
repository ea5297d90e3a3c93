// Broker instances failing under load, as real processes (node dist/src/main.js) on one Redis and
// one emulator: an instance SIGKILLed while it holds a token-refresh lock costs the others one short
// lease.
import { randomBytes } from 'node:crypto'
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest'
import { type RunningEmulator, startEmulator } from '../../emulator/server.js'
import type { ConsentValues } from '../support/broker.js'
import { type BrokerProcess, consentOverHttp, productionEnv, spawnBroker } from '../support/broker-process.js'
import { randomMasterKeys } from '../support/config.js'
import { XsoarClient } from '../support/xsoar-client.js'

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
const OPERATOR_TOKEN = randomBytes(24).toString('hex')

let emulator: RunningEmulator
let running: BrokerProcess[] = []

beforeAll(async () => {
  emulator = await startEmulator({ port: 0 })
})

afterEach(async () => {
  await Promise.all(running.map((broker) => broker.stop(5000)))
  running = []
  await fetch(`${emulator.url}/_emulator/reset`, { method: 'POST' })
})

afterAll(async () => {
  await emulator?.close()
})

/** Three instances of one deployment: same Redis, key prefix and master keys. */
async function startInstances(extra: Record<string, string> = {}): Promise<BrokerProcess[]> {
  const shared = {
    REDIS_KEY_PREFIX: `proc:${randomBytes(6).toString('hex')}:`,
    MASTER_KEYS: randomMasterKeys(),
    OPERATOR_TOKENS: `ops:${OPERATOR_TOKEN}`,
    RATE_LIMIT_PER_REGISTRATION: '1000000',
    RATE_LIMIT_PER_IP: '1000000',
    LOG_LEVEL: 'warn',
    ...extra,
  }
  const brokers = await Promise.all(
    [0, 1, 2].map(() =>
      spawnBroker({
        env: (port) =>
          productionEnv({ port, redisUrl: inject('redisUrl'), authorityUrl: emulator.url, env: shared }),
      }),
    ),
  )
  running.push(...brokers)
  return brokers
}

function clientFor(values: ConsentValues, appName: string, broker: BrokerProcess): XsoarClient {
  return new XsoarClient({ ...values, appName, urlOverride: `${broker.url}/obtain-token` })
}

async function scrape(broker: BrokerProcess, name: string): Promise<number> {
  const text = await fetch(`${broker.url}/metrics`, {
    headers: { authorization: `Bearer ${OPERATOR_TOKEN}` },
  }).then((r) => r.text())
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${name} `) || line.startsWith(`${name}{`))
    .reduce((sum, line) => sum + Number(line.split(' ').pop()), 0)
}

describe('an instance killed while holding a refresh lock', () => {
  it("the other instances' callers all get 200 within 5 s (the lease lapses, one takes over)", async () => {
    const [leader, b, c] = await startInstances()
    const values = await consentOverHttp(leader!.url, {
      slug: 'ms-graph-mail',
      username: 'admin@contoso.example',
    })
    const calls = () => emulator.state.stats.token_requests.client_credentials ?? 0
    // The next client-credentials call (the leader's) hangs at the "identity provider".
    await fetch(`${emulator.url}/_emulator/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ grantType: 'client_credentials', delayMs: 30_000, count: 1 }),
    })
    const before = calls()
    const leaderRequest = clientFor(values, 'ms-graph-mail', leader!)
      .getAccessToken()
      .catch(() => undefined)
    const deadline = Date.now() + 10_000
    while (calls() === before) {
      if (Date.now() > deadline) throw new Error('the leader never called the identity provider')
      await sleep(20)
    }
    // Callers on the other instances now wait for the leader's lock …
    const waiters = [b!, c!].flatMap((broker) =>
      Array.from({ length: 10 }, async (_, i) => {
        await sleep(i * 30)
        const client = clientFor(values, 'ms-graph-mail', broker)
        const sent = Date.now()
        const answer = await client.getAccessToken()
        return { status: answer.status, body: answer.body, done: Date.now(), sent }
      }),
    )
    await sleep(400)
    // … and the leader dies mid-call, its lock still held.
    leader!.signal('SIGKILL')
    const killedAt = Date.now()
    await leader!.exited
    await leaderRequest
    const answers = await Promise.all(waiters)
    for (const answer of answers) expect(answer.status, answer.body).toBe(200)
    const latest = Math.max(...answers.map((a) => a.done))
    expect(latest - killedAt).toBeLessThan(5000)
    // One takeover, one more upstream call (not one per waiter).
    expect(calls() - before).toBe(2)
    expect(
      (await scrape(b!, 'consent_broker_lock_takeovers_total')) +
        (await scrape(c!, 'consent_broker_lock_takeovers_total')),
    ).toBe(1)
  }, 60_000)
})
