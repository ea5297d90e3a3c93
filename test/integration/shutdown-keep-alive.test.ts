// SIGTERM of one broker instance (a real process) under ~200 obtain-token requests per second of
// keep-alive traffic, repeated: no request fails and no connection is reset.
//
// The client is a plain Node keep-alive agent that retries nothing, behind a balancer that works
// like a Kubernetes Service: it polls every instance's /readyz and opens NEW connections only to
// ready instances, while requests keep flowing on the connections already open, whatever instance
// they lead to, until the server says `Connection: close` or closes them. That is the case the
// drain exists for: the instance must tell every kept-alive connection to close (its next answer
// says so), keep accepting while the balancer notices /readyz 503, and never close under a client
// a connection it has not told to close while the grace lasts.
import { randomBytes } from 'node:crypto'
import { Agent, request as httpRequest, type IncomingMessage } from 'node:http'
import { createConnection, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { type RunningEmulator, startEmulator } from '../../emulator/server.js'
import { type BrokerProcess, consentOverHttp, productionEnv, spawnBroker } from '../support/broker-process.js'
import { randomMasterKeys } from '../support/config.js'
import { XsoarClient } from '../support/xsoar-client.js'

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
const RATE_PER_S = 200
const ROUNDS = 3
const POLL_MS = 100
const SHUTDOWN_DRAIN_MS = 3_000
const RESPONSE_DEADLINE_MS = 5_000
// The drain, a request's deadline, a second of margin and 3 s of grace for idle connections.
const SHUTDOWN_TIMEOUT_MS = SHUTDOWN_DRAIN_MS + RESPONSE_DEADLINE_MS + 1_000 + 3_000

let emulator: RunningEmulator
const running = new Set<BrokerProcess>()
const shared = {
  REDIS_KEY_PREFIX: `proc:${randomBytes(6).toString('hex')}:`,
  MASTER_KEYS: randomMasterKeys(),
  COOKIE_SECRET: randomBytes(32).toString('hex'),
  RATE_LIMIT_PER_REGISTRATION: '1000000',
  RATE_LIMIT_PER_IP: '1000000',
  SHUTDOWN_DRAIN_MS: String(SHUTDOWN_DRAIN_MS),
  RESPONSE_DEADLINE_MS: String(RESPONSE_DEADLINE_MS),
  UPSTREAM_TIMEOUT_MS: String(RESPONSE_DEADLINE_MS - 1_000),
  SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
  LOG_LEVEL: 'info',
}

beforeAll(async () => {
  emulator = await startEmulator({ port: 0 })
})

afterAll(async () => {
  await Promise.all([...running].map((broker) => broker.stop(5_000)))
  await emulator?.close()
})

async function startInstance(): Promise<BrokerProcess> {
  const broker = await spawnBroker({
    env: (port) =>
      productionEnv({ port, redisUrl: inject('redisUrl'), authorityUrl: emulator.url, env: shared }),
    // (start-up on a loaded 2-core machine, while the others carry the load, can take a while)
    readyTimeoutMs: 90_000,
  })
  running.add(broker)
  return broker
}

/**
 * One /readyz probe on a connection of its own: the status, or `refused` when nothing listens. A
 * healthy instance on a loaded 2-core machine can take a while: 5 s before it counts as no answer.
 */
function probe(port: number): Promise<number | 'refused'> {
  return new Promise((resolve) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, path: '/readyz', agent: false, timeout: 5_000 },
      (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode ?? 0))
      },
    )
    req.on('timeout', () => req.destroy(new Error('probe timed out')))
    req.on('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED' ? 'refused' : 0))
    req.end()
  })
}

/** What the balancer saw of one instance's readiness, in time. */
interface ReadinessLog {
  /** The first /readyz 503 (shutting down, still accepting). */
  first503At?: number
  firstUnreadyAt?: number
  firstRefusedAt?: number
}

/**
 * New connections go round-robin to the instances whose last /readyz probe answered 200; open
 * connections stay where they are. Node's keep-alive agent does the rest, as in any client.
 */
class Balancer {
  readonly agent: Agent
  readonly #ready = new Map<BrokerProcess, boolean>()
  readonly readiness = new Map<BrokerProcess, ReadinessLog>()
  /** Connections opened so far. */
  opened = 0
  /** Which instance each socket leads to. */
  readonly socketTarget = new WeakMap<Socket, BrokerProcess>()
  #next = 0
  #polling = true
  readonly #pollers: Array<Promise<void>> = []

  constructor(instances: BrokerProcess[]) {
    for (const instance of instances) this.add(instance)
    this.agent = new Agent({ keepAlive: true, maxSockets: 64 })
    // The agent asks for a connection to "the service"; the balancer picks the instance.
    ;(this.agent as unknown as { createConnection: () => Socket }).createConnection = () => {
      const ready = [...this.#ready].filter(([, isReady]) => isReady).map(([instance]) => instance)
      const target = ready[this.#next++ % Math.max(1, ready.length)]
      if (target === undefined) throw new Error('no ready instance')
      const socket = createConnection({ host: '127.0.0.1', port: target.port })
      this.opened++
      this.socketTarget.set(socket, target)
      return socket
    }
  }

  add(instance: BrokerProcess): void {
    this.#ready.set(instance, true)
    this.readiness.set(instance, {})
    this.#pollers.push(this.#poll(instance))
  }

  remove(instance: BrokerProcess): void {
    this.#ready.delete(instance)
  }

  /**
   * Probes one instance every POLL_MS until it is removed, each on its own (as a Kubernetes probe
   * per pod): a slow answer from one instance delays no other's, so the victim's 503 is seen early
   * in its drain whatever the others take.
   */
  async #poll(instance: BrokerProcess): Promise<void> {
    while (this.#polling && this.#ready.has(instance)) {
      const status = await probe(instance.port)
      const log = this.readiness.get(instance)
      if (log === undefined || !this.#ready.has(instance)) return
      const at = Date.now()
      if (status !== 200 && log.firstUnreadyAt === undefined) log.firstUnreadyAt = at
      if (status === 503 && log.first503At === undefined) log.first503At = at
      if (status === 'refused' && log.firstRefusedAt === undefined) log.firstRefusedAt = at
      this.#ready.set(instance, status === 200)
      await sleep(POLL_MS)
    }
  }

  async stop(): Promise<void> {
    this.#polling = false
    await Promise.all(this.#pollers)
    this.agent.destroy()
  }
}

interface Outcome {
  status: number
  /** The client's error code (ECONNRESET, EPIPE, …) when the request failed. */
  error?: string
  target: BrokerProcess | undefined
  connectionClose: boolean
  reusedSocket: boolean
  sentAt: number
}

function send(
  balancer: { agent: Agent; socketTarget?: WeakMap<Socket, BrokerProcess> },
  client: XsoarClient,
  port: number,
): Promise<Outcome> {
  const sentAt = Date.now()
  return new Promise((resolve) => {
    let target: BrokerProcess | undefined
    const body = client.body()
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/obtain-token',
        agent: balancer.agent,
        headers: { ...client.headers(), 'content-length': Buffer.byteLength(body) },
      },
      (res: IncomingMessage) => {
        res.resume()
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            target,
            connectionClose: res.headers.connection === 'close',
            reusedSocket: req.reusedSocket,
            sentAt,
          }),
        )
        res.on('error', (error: NodeJS.ErrnoException) =>
          resolve({
            status: 0,
            error: error.code ?? error.message,
            target,
            connectionClose: false,
            reusedSocket: req.reusedSocket,
            sentAt,
          }),
        )
      },
    )
    req.on('socket', (socket: Socket) => {
      target = balancer.socketTarget?.get(socket)
    })
    req.on('error', (error: NodeJS.ErrnoException) =>
      resolve({
        status: 0,
        error: error.code ?? error.message,
        target,
        connectionClose: false,
        reusedSocket: req.reusedSocket,
        sentAt,
      }),
    )
    req.end(body)
  })
}

describe('SIGTERM of one instance under keep-alive load', () => {
  it(`${ROUNDS} times at ${RATE_PER_S} req/s: 0 connection resets, 0 failed requests; /readyz 503 for the drain first`, async () => {
    const instances = await Promise.all([startInstance(), startInstance(), startInstance()])
    const values = await consentOverHttp(instances[0]!.url, {
      slug: 'ms-graph-mail',
      username: 'admin@contoso.example',
    })
    const client = new XsoarClient({ ...values, appName: 'ms-graph-mail' })
    // The token is cached first: the load measures shutdown, not the first call to Microsoft.
    const warm = await send({ agent: new Agent() }, client, instances[0]!.port)
    expect(warm.status).toBe(200)
    const balancer = new Balancer(instances)
    const outcomes: Array<Promise<Outcome>> = []
    let loading = true
    const load = (async () => {
      const start = Date.now()
      let sent = 0
      while (loading) {
        const due = Math.floor(((Date.now() - start) * RATE_PER_S) / 1000)
        for (; sent < due; sent++) outcomes.push(send(balancer, client, instances[0]!.port))
        await sleep(5)
      }
    })()

    try {
      const live = [...instances]
      await sleep(1_500)
      for (let round = 0; round < ROUNDS; round++) {
        const victim = live.shift()!
        // A client that keeps one connection to the victim idle through the whole drain.
        const idle = { agent: new Agent({ keepAlive: true, maxSockets: 1 }) }
        expect((await send(idle, client, victim.port)).status).toBe(200)
        const termAt = Date.now()
        victim.signal('SIGTERM')
        const starting = startInstance()
        // Once the victim no longer accepts, that connection was never told to close: it is still
        // served, told `Connection: close` now, and only then closed.
        while ((await probe(victim.port)) !== 'refused') await sleep(20)
        const late = await send(idle, client, victim.port)
        idle.agent.destroy()
        expect(late).toMatchObject({ status: 200, reusedSocket: true, connectionClose: true })
        const exit = await victim.exited
        running.delete(victim)
        balancer.remove(victim)
        expect({ code: exit.code, signal: exit.signal }).toEqual({ code: 0, signal: null })
        expect(exit.at - termAt).toBeLessThan(SHUTDOWN_TIMEOUT_MS)
        // Unready first, for the drain; only then no longer accepting.
        const seen = balancer.readiness.get(victim)!
        expect(seen.first503At, 'the balancer saw /readyz answer 503').toBeDefined()
        expect(seen.firstUnreadyAt).toBe(seen.first503At)
        expect(seen.firstRefusedAt! - termAt).toBeGreaterThanOrEqual(SHUTDOWN_DRAIN_MS)
        // Announced once, never an error line per probe.
        const lines = victim.stdout.map((line) => JSON.parse(line) as { level: number; msg: string })
        expect(lines.filter((line) => line.level >= 50)).toEqual([])
        expect(lines.filter((line) => line.msg.startsWith('shutting down: unready'))).toHaveLength(1)
        expect(victim.stderr()).toBe('')
        // A replacement joins (as a rolling update does) before the next round.
        const replacement = await starting
        balancer.add(replacement)
        live.push(replacement)
        await sleep(1_000)
      }
    } finally {
      loading = false
      await load
    }
    const results = await Promise.all(outcomes)
    await balancer.stop()

    const failed = results.filter((r) => r.status !== 200)
    const summary = failed
      .slice(0, 5)
      .map((r) => ({ status: r.status, error: r.error, reused: r.reusedSocket }))
    expect(failed.length, JSON.stringify(summary)).toBe(0)
    expect(results.filter((r) => r.error !== undefined)).toEqual([])
    // The load was real, kept alive, and reached the instances while they drained.
    expect(results.length).toBeGreaterThan(RATE_PER_S * 5)
    // (kept alive: connections carry many requests each; under a saturated CPU, the agent queues)
    expect(balancer.opened).toBeLessThan(results.length / 3)
    expect(results.filter((r) => r.connectionClose).length).toBeGreaterThanOrEqual(ROUNDS)
  }, 400_000)
})
