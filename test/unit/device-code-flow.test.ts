// The device code method's service against a scripted identity provider and the memory store, with
// a fake clock and sleep: the poller waits the interval Microsoft names, adds 5 s on each
// slow_down, retries a transient failure, stops on the first final answer, and one lease means one
// poller per flow; the page's view is for the starting browser only and shows an ended flow once.
import type { FastifyBaseLogger } from 'fastify'
import { pino } from 'pino'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { Config } from '../../src/config.js'
import {
  type DeviceAuthorization,
  type DevicePoll,
  type IdentityProvider,
  UpstreamError,
  type VerifiedIdToken,
} from '../../src/entra/types.js'
import { createMetrics, type Metrics } from '../../src/metrics.js'
import { DeviceCodeFlow } from '../../src/services/device-code-flow.js'
import { pollLeaseName } from '../../src/services/device-code-records.js'
import { createMemoryStore } from '../../src/store/memory.js'
import type { Store } from '../../src/store/types.js'
import { testConfig } from '../support/config.js'

const TID = '7c3b1e5a-4d2f-4b8e-9a61-2f0c8d4e6b13'
const CLIENT = '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d'
const USER: VerifiedIdToken = {
  tid: TID,
  oid: '3f6c2a1e-8b4d-4c7a-9e15-0a1b2c3d4e02',
  preferredUsername: 'user@contoso.example',
  name: 'User',
  wids: [],
}
const log = pino({ level: 'silent' }) as unknown as FastifyBaseLogger
const oauth = (error: string, code: number) =>
  new UpstreamError('oauth', `device code poll: AADSTS${code}`, { error, errorCodes: [code], status: 400 })

/** Answers polls from a script; the last answer repeats. */
class ScriptedIdp implements IdentityProvider {
  script: (DevicePoll | UpstreamError)[] = []
  polls: number[] = []
  constructor(readonly clock: () => number) {}
  signInUrl(): never {
    throw new Error('not used')
  }
  redeemCode(): never {
    throw new Error('not used')
  }
  adminConsentUrl(): never {
    throw new Error('not used')
  }
  clientCredentials(): never {
    throw new Error('not used')
  }
  refresh(): never {
    throw new Error('not used')
  }
  async startDeviceAuthorization(): Promise<DeviceAuthorization> {
    return {
      deviceCode: 'DAQABAAEAAAD.device',
      userCode: 'BCDFGHJKL',
      verificationUri: 'https://login.example.test/devicelogin',
      expiresIn: 900,
      interval: 5,
    }
  }
  async pollDeviceAuthorization(): Promise<DevicePoll> {
    this.polls.push(this.clock())
    const next = this.script.length > 1 ? this.script.shift()! : this.script[0]!
    if (next instanceof UpstreamError) throw next
    return next
  }
}

let config: Config
let store: Store
let idp: ScriptedIdp
let now: number
let sleeps: number[]
let flows: DeviceCodeFlow[]
let metrics: Metrics

function newFlow(): DeviceCodeFlow {
  const flow = new DeviceCodeFlow({
    config,
    store,
    idp,
    metrics,
    clock: () => now,
    log,
    // Time passes only through the poller's own waits.
    sleep: async (ms) => {
      sleeps.push(ms)
      now += ms
    },
  })
  flows.push(flow)
  return flow
}

beforeEach(() => {
  config = testConfig({ authorityUrl: 'https://login.example.test' })
  store = createMemoryStore({ keyRing: config.keyRing })
  now = Date.parse('2026-01-01T00:00:00Z')
  idp = new ScriptedIdp(() => now)
  sleeps = []
  flows = []
  metrics = createMetrics()
})

afterEach(async () => {
  for (const flow of flows) await flow.stop()
  await store.close()
})

const granted: DevicePoll = {
  status: 'granted',
  tokens: { idToken: USER, accessToken: 'at', refreshToken: 'rt' },
}

/** An instance whose poller waits until it is stopped (its waits end only on abort). */
function parkedFlow(): DeviceCodeFlow {
  const flow = new DeviceCodeFlow({
    config,
    store,
    idp,
    metrics: createMetrics(),
    clock: () => now,
    log,
    sleep: (_ms, signal) => new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve())),
  })
  flows.push(flow)
  return flow
}

async function startAndSettle(flow = newFlow()) {
  const started = await flow.start(
    'ms-graph-mail-listener',
    undefined,
    { tenantId: TID, clientId: CLIENT },
    undefined,
    log,
  )
  if (started.kind !== 'started') throw new Error(`start failed: ${started.failure.reason}`)
  // Let the poll loop run to its end (fake sleeps resolve at once).
  for (let i = 0; i < 200 && flow.polling > 0; i++) await new Promise((resolve) => setImmediate(resolve))
  return { flow, ...started }
}

describe('device code polling', () => {
  it('polls at once, then every interval, 5 s more after each slow_down, until granted', async () => {
    idp.script = [
      { status: 'pending' },
      { status: 'slow_down' },
      { status: 'pending' },
      { status: 'slow_down' },
      granted,
    ]
    const start = now
    const { flow, flowId, browserSecret } = await startAndSettle()
    expect(idp.polls.map((t) => t - start)).toEqual([0, 5000, 15_000, 25_000, 40_000])
    expect(sleeps).toEqual([5000, 10_000, 10_000, 15_000])
    // Every poll is counted as an upstream request of the device_code grant.
    const scrape = await metrics.registry.metrics()
    for (const [outcome, count] of [
      ['pending', 2],
      ['slow_down', 2],
      ['ok', 1],
    ] as const)
      expect(scrape).toContain(
        `consent_broker_upstream_requests_total{grant="device_code",outcome="${outcome}",code=""} ${count}`,
      )
    const view = await flow.view('ms-graph-mail-listener', flowId, browserSecret)
    expect(view.kind).toBe('completed')
    const listed = await store.registrations.list({})
    expect(listed.items).toHaveLength(1)
    expect(listed.items[0]?.ownClientId).toBe(CLIENT)
    // Shown once.
    expect((await flow.view('ms-graph-mail-listener', flowId, browserSecret)).kind).toBe('failed')
  })

  it('polls on after a transient failure, and stops on declined, expired and 7000218', async () => {
    idp.script = [
      new UpstreamError('unavailable', 'device code poll: HTTP 503', { status: 503 }),
      oauth('authorization_declined', 70019),
    ]
    const declined = await startAndSettle()
    expect(idp.polls).toHaveLength(2)
    const view = await declined.flow.view('ms-graph-mail-listener', declined.flowId, declined.browserSecret)
    expect(view.kind === 'failed' && view.failure.reason).toBe('cancelled')

    for (const [error, reason] of [
      [oauth('expired_token', 70020), 'device_code_expired'],
      [oauth('invalid_client', 7000218), 'own_app_public_client_disabled'],
      [oauth('invalid_grant', 65001), 'own_app_missing_permissions'],
    ] as const) {
      idp.script = [error]
      const ended = await startAndSettle()
      const shown = await ended.flow.view('ms-graph-mail-listener', ended.flowId, ended.browserSecret)
      expect(shown.kind === 'failed' && shown.failure.reason).toBe(reason)
    }
    expect((await store.registrations.list({})).items).toEqual([])
  })

  it('stops at the device code’s end even if Microsoft keeps answering pending', async () => {
    idp.script = [{ status: 'pending' }]
    const { flow, flowId, browserSecret } = await startAndSettle()
    // 900 s at one poll per 5 s: 180 polls, then the broker's own check of the expiry.
    expect(idp.polls.length).toBe(180)
    const view = await flow.view('ms-graph-mail-listener', flowId, browserSecret)
    expect(view.kind === 'failed' && view.failure.reason).toBe('device_code_expired')
  })

  it('lets one instance poll a flow: another takes over only once the lease is free', async () => {
    idp.script = [{ status: 'pending' }]
    const first = newFlow()
    const second = newFlow()
    // The holding instance's poller parks in its wait until stopped.
    const parking = parkedFlow()
    const started = await parking.start(
      'ms-graph-mail-listener',
      undefined,
      { tenantId: TID, clientId: CLIENT },
      undefined,
      log,
    )
    if (started.kind !== 'started') throw new Error('start failed')
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve))
    expect(parking.polling).toBe(1)
    // Views on the other instances find the lease held: they show the page and poll nothing.
    const view = await first.view('ms-graph-mail-listener', started.flowId, started.browserSecret)
    expect(view.kind).toBe('pending')
    await second.view('ms-graph-mail-listener', started.flowId, started.browserSecret)
    expect(first.polling + second.polling).toBe(0)
    expect(await store.locks.acquire(pollLeaseName(started.flowId), 1000)).toBeNull()
    // The holder stops (releases its lease): the next view takes over.
    await parking.stop()
    await first.view('ms-graph-mail-listener', started.flowId, started.browserSecret)
    expect(first.polling).toBe(1)
  })

  it('shows the flow to the starting browser only', async () => {
    idp.script = [{ status: 'pending' }]
    const flow = parkedFlow()
    const started = await flow.start(
      'ms-graph-mail-listener',
      undefined,
      { tenantId: TID, clientId: CLIENT },
      undefined,
      log,
    )
    if (started.kind !== 'started') throw new Error('start failed')
    const last = started.browserSecret.at(-1) === 'A' ? 'B' : 'A'
    for (const secret of [undefined, 'x'.repeat(43), `${started.browserSecret.slice(0, -1)}${last}`]) {
      const view = await flow.view('ms-graph-mail-listener', started.flowId, secret)
      expect(view.kind === 'failed' && view.failure.reason).toBe('session_missing')
    }
    expect((await flow.view('ms-graph-mail', started.flowId, started.browserSecret)).kind).toBe('failed')
    expect((await flow.view('ms-graph-mail-listener', started.flowId, started.browserSecret)).kind).toBe(
      'pending',
    )
  })

  it('refuses admin-consent families before asking Microsoft', async () => {
    const flow = newFlow()
    const started = await flow.start(
      'ms-graph-mail',
      undefined,
      { tenantId: TID, clientId: CLIENT },
      undefined,
      log,
    )
    expect(started.kind === 'failed' && started.failure.reason).toBe('own_app_needs_secret')
    expect(idp.polls).toEqual([])
  })
})
