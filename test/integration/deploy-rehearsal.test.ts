// The reference deployment of deploy/, rehearsed with the real parts: Debian's nginx terminating TLS
// (a self-signed certificate made here) in front of three built brokers (`node dist/src/main.js`)
// on one redis-server, and Debian's Prometheus scraping the three with the shipped scrape
// configuration and alert rules. The shipped files are used as they are, except for what a test
// machine must change (ports, paths, the brokers' addresses, shorter intervals); each of those
// edits must match exactly, so a change to the shipped files that the test would silently ignore
// fails here. Every process is started in a temporary directory on free ports and stopped by pid.
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type RunningEmulator, startEmulator } from '../../emulator/server.js'
import {
  type BrokerProcess,
  consentOverHttp,
  ensureBuilt,
  findFreePort,
  productionEnv,
  REPO_ROOT,
  spawnBroker,
} from '../support/broker-process.js'
import { createTestFetch } from '../support/https-fetch.js'
import { type RedisServerHandle, startRedisServer } from '../support/redis-server.js'
import { XsoarClient } from '../support/xsoar-client.js'

const run = promisify(execFile)
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Debian installs nginx in /usr/sbin, which is not on every user's PATH. */
function binary(name: string, fallback: string): string {
  return existsSync(fallback) ? fallback : name
}
const NGINX = binary('nginx', '/usr/sbin/nginx')
const PROMETHEUS = binary('prometheus', '/usr/bin/prometheus')
const PROMTOOL = binary('promtool', '/usr/bin/promtool')

const SHIPPED = {
  nginx: join(REPO_ROOT, 'deploy/nginx/consent-broker.conf'),
  prometheus: join(REPO_ROOT, 'deploy/prometheus/prometheus.yml'),
  rules: join(REPO_ROOT, 'deploy/prometheus/consent-broker-alerts.yml'),
  ruleTests: join(REPO_ROOT, 'deploy/prometheus/consent-broker-alerts.test.yml'),
  dashboard: join(REPO_ROOT, 'deploy/grafana/consent-broker.json'),
}

/** The client's own loopback address, distinct from the 127.0.0.1 nginx connects to the brokers from. */
const CLIENT_ADDRESS = '127.0.0.2'
/** Brokers 1 and 2 trust the proxy's forwarded headers; broker 3 does not (TRUST_PROXY unset). */
const TRUSTS_PROXY = [true, true, false]

/** Replaces `from` by `to` exactly `count` times, or fails naming what the shipped file lacks. */
function edit(text: string, from: string, to: string, count = 1): string {
  const found = text.split(from).length - 1
  if (found !== count)
    throw new Error(`expected ${count} × ${JSON.stringify(from)} in the shipped file, found ${found}`)
  return text.split(from).join(to)
}

interface Daemon {
  readonly child: ChildProcess
  readonly exited: Promise<void>
  output(): string
}

function startDaemon(command: string, args: string[]): Daemon {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout?.on('data', (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-20_000)
  })
  child.stderr?.on('data', (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-20_000)
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const killOnExit = () => child.kill('SIGKILL')
  process.once('exit', killOnExit)
  void exited.then(() => process.removeListener('exit', killOnExit))
  return { child, exited, output: () => output }
}

/** Sends `signal` to the daemon's pid, then SIGKILL after 10 s; resolves once it has exited. */
async function stopDaemon(daemon: Daemon | undefined, signal: NodeJS.Signals): Promise<void> {
  if (daemon === undefined || daemon.child.exitCode !== null || daemon.child.signalCode !== null) return
  const pid = daemon.child.pid
  if (pid === undefined) return
  process.kill(pid, signal)
  const timer = setTimeout(() => daemon.child.kill('SIGKILL'), 10_000)
  await daemon.exited
  clearTimeout(timer)
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const value = await probe()
      if (value !== undefined) return value
    } catch (error) {
      last = error
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`)
    await sleep(250)
  }
}

let dir: string
let certificate: string
let testFetch: typeof fetch
let redis: RedisServerHandle
let emulator: RunningEmulator
const brokers: BrokerProcess[] = []
const metricsPorts: number[] = []
let nginx: Daemon | undefined
let prometheus: Daemon | undefined
let httpsPort: number
let httpPort: number
let prometheusUrl: string
let publicUrl: string
let shortenedRules: string
/** The admin-consent integration of the consent test, reused across the Redis outage. */
let mailClient: XsoarClient

beforeAll(async () => {
  await ensureBuilt()
  dir = await mkdtemp(join(tmpdir(), 'consent-broker-deploy-'))

  // A self-signed certificate for 127.0.0.1, trusted by the test's own client only.
  // biome-ignore format: one openssl command line, grouped by option
  await run('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', join(dir, 'privkey.pem'), '-out', join(dir, 'fullchain.pem'), '-days', '1',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
  ])
  certificate = await readFile(join(dir, 'fullchain.pem'), 'utf8')
  testFetch = createTestFetch({ ca: certificate, localAddress: CLIENT_ADDRESS })

  // Its own Redis (it is stopped below), with AOF so that a restart keeps the registrations.
  redis = await startRedisServer({ appendOnly: true })
  httpsPort = await findFreePort()
  httpPort = await findFreePort()
  publicUrl = `https://127.0.0.1:${httpsPort}`
  // The app registrations' redirect URI is the public https one (Entra allows only loopback http).
  emulator = await startEmulator({ port: 0, redirectUris: [`${publicUrl}/callback`] })
  // One deployment: the same keys, secrets and prefix on every instance.
  const shared = productionEnv({ port: 0, redisUrl: redis.url, authorityUrl: emulator.url })
  brokers.push(
    ...(await Promise.all(
      [0, 1, 2].map((i) =>
        spawnBroker({
          // three start at once on a machine that may be busy: be patient
          readyTimeoutMs: 120_000,
          env: async (port) => ({
            ...shared,
            PORT: String(port),
            PUBLIC_URL: publicUrl,
            METRICS_PORT: String(await findFreePort()),
            METRICS_REGISTRATIONS_INTERVAL_SECONDS: '0',
            ...(TRUSTS_PROXY[i] ? { TRUST_PROXY: 'true' } : {}),
          }),
        }),
      ),
    )),
  )
  // (the ports the brokers ended up on: nginx and Prometheus are configured with them below)
  const brokerPorts = brokers.map((broker) => broker.port)
  metricsPorts.push(...brokers.map((broker) => Number(broker.env.METRICS_PORT)))

  // nginx: the shipped site configuration with this machine's ports, paths and brokers.
  let site = await readFile(SHIPPED.nginx, 'utf8')
  site = edit(site, 'listen 80;', `listen 127.0.0.1:${httpPort};`)
  site = edit(site, 'listen [::]:80;', '')
  site = edit(site, 'listen 443 ssl http2;', `listen 127.0.0.1:${httpsPort} ssl http2;`)
  site = edit(site, 'listen [::]:443 ssl http2;', '')
  site = edit(site, '/etc/nginx/tls/fullchain.pem', join(dir, 'fullchain.pem'))
  site = edit(site, '/etc/nginx/tls/privkey.pem', join(dir, 'privkey.pem'))
  site = edit(site, '/var/log/nginx/consent-broker.access.log', join(dir, 'access.log'))
  for (let i = 0; i < 3; i++)
    site = edit(site, `server broker-${i + 1}:3000`, `server 127.0.0.1:${brokerPorts[i]}`)
  await writeFile(join(dir, 'consent-broker.conf'), site)
  await mkdir(join(dir, 'nginx-temp'))
  // The main file a distribution's nginx.conf would be, in the temporary directory.
  await writeFile(
    join(dir, 'nginx.conf'),
    [
      'daemon off;',
      'worker_processes 1;',
      // as root, keep the worker's user (it must read the temporary directory)
      ...(userInfo().uid === 0 ? ['user root;'] : []),
      `pid ${join(dir, 'nginx.pid')};`,
      `error_log ${join(dir, 'error.log')} warn;`,
      'events { worker_connections 256; }',
      'http {',
      `  client_body_temp_path ${join(dir, 'nginx-temp/body')};`,
      `  proxy_temp_path ${join(dir, 'nginx-temp/proxy')};`,
      `  fastcgi_temp_path ${join(dir, 'nginx-temp/fastcgi')};`,
      `  uwsgi_temp_path ${join(dir, 'nginx-temp/uwsgi')};`,
      `  scgi_temp_path ${join(dir, 'nginx-temp/scgi')};`,
      `  include ${join(dir, 'consent-broker.conf')};`,
      '}',
      '',
    ].join('\n'),
  )
  nginx = startDaemon(NGINX, ['-p', dir, '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf')])
  await until(
    'nginx to proxy /readyz',
    async () => {
      if (nginx?.child.exitCode !== null) throw new Error(`nginx exited: ${nginx?.output()}`)
      const ready = await testFetch(`${publicUrl}/readyz`)
      return ready.status === 200 ? true : undefined
    },
    20_000,
  )

  // Prometheus: the shipped configuration and rules, scraping the three brokers every 2 s and
  // evaluating every second; the rules' `for:` durations shortened to 2 s.
  const prometheusPort = await findFreePort()
  prometheusUrl = `http://127.0.0.1:${prometheusPort}`
  let config = await readFile(SHIPPED.prometheus, 'utf8')
  config = edit(config, 'scrape_interval: 15s', 'scrape_interval: 2s')
  config = edit(config, 'evaluation_interval: 15s', 'evaluation_interval: 1s')
  for (let i = 0; i < 3; i++) config = edit(config, `broker-${i + 1}:9464`, `127.0.0.1:${metricsPorts[i]}`)
  await writeFile(join(dir, 'prometheus.yml'), config)
  const rules = await readFile(SHIPPED.rules, 'utf8')
  shortenedRules = rules.replace(/^(\s+for:) \S+$/gm, '$1 2s')
  await writeFile(join(dir, 'consent-broker-alerts.yml'), shortenedRules)
  prometheus = startDaemon(PROMETHEUS, [
    `--config.file=${join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${join(dir, 'prometheus-data')}`,
    `--web.listen-address=127.0.0.1:${prometheusPort}`,
    '--log.level=warn',
  ])
  await until(
    'Prometheus to be ready',
    async () => {
      if (prometheus?.child.exitCode !== null) throw new Error(`prometheus exited: ${prometheus?.output()}`)
      return (await fetch(`${prometheusUrl}/-/ready`)).status === 200 ? true : undefined
    },
    30_000,
  )
}, 300_000)

afterAll(async () => {
  await stopDaemon(prometheus, 'SIGTERM')
  await stopDaemon(nginx, 'SIGQUIT')
  await Promise.all(brokers.map((broker) => broker.stop()))
  await emulator?.close()
  await redis?.destroy()
  if (dir !== undefined) await rm(dir, { recursive: true, force: true })
}, 60_000)

/** The broker whose log has the completion line of request `id`, and that line. */
function completionLine(requestId: string): { broker: number; line: Record<string, unknown> } | undefined {
  for (const [index, broker] of brokers.entries()) {
    for (const text of broker.stdout) {
      if (!text.includes(requestId)) continue
      const line = JSON.parse(text) as Record<string, unknown>
      if (line.reqId === requestId && line.msg === 'request completed') return { broker: index, line }
    }
  }
  return undefined
}

async function prometheusApi<T>(path: string): Promise<T> {
  const response = await fetch(`${prometheusUrl}${path}`)
  const body = (await response.json()) as { status: string; data: T; error?: string }
  if (body.status !== 'success') throw new Error(`${path}: ${body.error ?? response.status}`)
  return body.data
}

interface ActiveAlert {
  labels: Record<string, string>
  state: 'pending' | 'firing'
}

async function activeAlerts(name: string): Promise<ActiveAlert[]> {
  const data = await prometheusApi<{ alerts: ActiveAlert[] }>('/api/v1/alerts')
  return data.alerts.filter((alert) => alert.labels.alertname === name)
}

describe('the shipped alert rules', () => {
  it('pass promtool check rules and their promtool unit tests', async () => {
    const checked = await run(PROMTOOL, ['check', 'rules', SHIPPED.rules])
    expect(checked.stdout).toMatch(/SUCCESS: 8 rules found/)
    const tested = await run(PROMTOOL, ['test', 'rules', SHIPPED.ruleTests])
    expect(tested.stdout).toMatch(/SUCCESS/)
    // the test's copy differs only in its `for:` durations
    const original = (await readFile(SHIPPED.rules, 'utf8')).split('\n')
    const copy = shortenedRules.split('\n')
    expect(copy).toHaveLength(original.length)
    const changed = original.filter((line, i) => line !== copy[i])
    expect(changed.length).toBeGreaterThan(0)
    for (const line of changed) expect(line).toMatch(/^\s+for: \d+m$/)
  })
})

describe('nginx in front of three brokers', () => {
  it('terminates TLS with the test certificate, which only the test client trusts', async () => {
    const ready = await testFetch(`${publicUrl}/healthz`)
    expect(ready.status).toBe(200)
    expect(await ready.json()).toEqual({ status: 'ok' })
    // the broker knows it is served over https (PUBLIC_URL): HSTS
    expect(ready.headers.get('strict-transport-security')).toMatch(/max-age=31536000/)
    // the process-wide fetch does not trust the self-signed certificate
    await expect(fetch(`${publicUrl}/healthz`)).rejects.toThrow()
  })

  it('redirects plain http to https', async () => {
    const answer = await testFetch(`http://127.0.0.1:${httpPort}/ms-graph-mail?x=1`)
    expect(answer.status).toBe(308)
    expect(answer.headers.get('location')).toBe('https://127.0.0.1/ms-graph-mail?x=1')
  })

  it('balances requests over all three instances', async () => {
    const seen = new Set<number>()
    for (let i = 0; i < 9; i++) {
      const id = `balance-${randomBytes(6).toString('hex')}`
      const answer = await testFetch(`${publicUrl}/healthz`, { headers: { 'x-request-id': id } })
      expect(answer.status).toBe(200)
      const found = await until('the completion line', async () => completionLine(id), 5000)
      seen.add(found.broker)
    }
    expect([...seen].sort()).toEqual([0, 1, 2])
  })

  it('keeps a well-formed client request id and replaces a malformed one', async () => {
    const kept = await testFetch(`${publicUrl}/healthz`, {
      headers: { 'x-request-id': 'client-chosen.id:1' },
    })
    expect(kept.headers.get('x-request-id')).toBe('client-chosen.id:1')
    const replaced = await testFetch(`${publicUrl}/healthz`, {
      headers: { 'x-request-id': 'bad id <script>' },
    })
    const id = replaced.headers.get('x-request-id') ?? ''
    expect(id).toMatch(/^[0-9a-f]{32}$/) // nginx's $request_id
    const found = await until('the completion line', async () => completionLine(id), 5000)
    expect(found.line.url).toBe('/healthz')
  })

  it("refuses a body over 16 KiB with the broker's own 413 JSON, and passes one just under", async () => {
    const tooLarge = JSON.stringify({ app_name: 'ms-graph-mail', padding: 'x'.repeat(16 * 1024) })
    const atProxy = await testFetch(`${publicUrl}/obtain-token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'too-large-1' },
      body: tooLarge,
    })
    expect(atProxy.status).toBe(413)
    expect(atProxy.headers.get('content-type')).toMatch(/^application\/json/)
    const proxyBody = (await atProxy.json()) as { error: { code: string; message: string } }
    // what a broker answers to the same body
    const direct = await fetch(`${brokers[0]!.url}/obtain-token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'too-large-1' },
      body: tooLarge,
    })
    expect(direct.status).toBe(413)
    expect(proxyBody).toEqual(await direct.json())
    // just under the limit: it reaches a broker, which answers for itself (no such registration)
    const underLimit = JSON.stringify({
      app_name: 'ms-graph-mail',
      registration_id: 'no-such-registration',
      encrypted_token: 'AAAA',
      resource: 'x'.repeat(15 * 1024),
    })
    const passed = await testFetch(`${publicUrl}/obtain-token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'under-limit-1' },
      body: underLimit,
    })
    expect(Buffer.byteLength(underLimit)).toBeLessThan(16 * 1024)
    expect([400, 401]).toContain(passed.status)
    const found = await until('the completion line', async () => completionLine('under-limit-1'), 5000)
    expect(found.line).toMatchObject({ url: '/obtain-token', statusCode: passed.status })
  })

  it('completes an admin and a delegated consent over https, then serves tokens through the proxy', async () => {
    for (const [slug, username] of [
      ['ms-graph-mail', 'admin@contoso.example'],
      ['ms-graph-mail-listener', 'user@fabrikam.example'],
    ] as const) {
      const values = await consentOverHttp(publicUrl, { slug, username, fetch: testFetch })
      // the ID integrations paste names the public https origin
      expect(values.id).toBe(`${values.registrationId}@${publicUrl}/obtain-token`)
      const client = new XsoarClient({ ...values, appName: slug, fetch: testFetch })
      if (slug === 'ms-graph-mail') mailClient = client
      const first = await client.getAccessToken()
      expect(first.status, first.body).toBe(200)
      expect(first.accessToken.split('.')).toHaveLength(3)
      // served again (cache) by whichever instance nginx picks
      for (let i = 0; i < 3; i++) {
        const again = await client.getAccessToken()
        expect(again.status, again.body).toBe(200)
        expect(again.accessToken).toBe(first.accessToken)
      }
    }
  })

  it('shows the broker the real client address only when TRUST_PROXY is set', async () => {
    const seen = new Map<number, Set<unknown>>()
    for (let i = 0; i < 9; i++) {
      const id = `address-${randomBytes(6).toString('hex')}`
      // a client claiming another address: nginx replaces, not appends, X-Forwarded-For
      const answer = await testFetch(`${publicUrl}/healthz`, {
        headers: { 'x-request-id': id, 'x-forwarded-for': '203.0.113.7' },
      })
      expect(answer.status).toBe(200)
      const found = await until('the completion line', async () => completionLine(id), 5000)
      const ips = seen.get(found.broker) ?? new Set()
      ips.add(found.line.ip)
      seen.set(found.broker, ips)
    }
    expect([...seen.keys()].sort()).toEqual([0, 1, 2])
    for (const [broker, ips] of seen) {
      // trusted: the address nginx saw; untrusted: nginx's own address
      expect([...ips], `broker ${broker + 1}`).toEqual([TRUSTS_PROXY[broker] ? CLIENT_ADDRESS : '127.0.0.1'])
    }
    // why a broker with TRUST_PROXY must be reachable only through the proxy: directly, the
    // forwarded header is believed
    const direct = await fetch(`${brokers[0]!.url}/healthz`, {
      headers: { 'x-request-id': 'direct-forged', 'x-forwarded-for': '203.0.113.7' },
    })
    expect(direct.status).toBe(200)
    const line = await until('the completion line', async () => completionLine('direct-forged'), 5000)
    expect(line.line.ip).toBe('203.0.113.7')
  })
})

describe('Prometheus with the shipped configuration', () => {
  it('scrapes the three instances and loads the rules', async () => {
    const targets = await until(
      'three healthy targets',
      async () => {
        const data = await prometheusApi<{
          activeTargets: Array<{ labels: { job: string; instance: string }; health: string }>
        }>('/api/v1/targets')
        const up = data.activeTargets.filter((t) => t.labels.job === 'consent-broker' && t.health === 'up')
        return up.length === 3 ? up : undefined
      },
      30_000,
    )
    expect(targets.map((t) => t.labels.instance).sort()).toEqual(
      metricsPorts.map((port) => `127.0.0.1:${port}`).sort(),
    )
    const rules = await prometheusApi<{ groups: Array<{ name: string; rules: Array<{ name: string }> }> }>(
      '/api/v1/rules',
    )
    expect(rules.groups.map((g) => g.name).sort()).toEqual([
      'consent-broker-availability',
      'consent-broker-registrations',
      'consent-broker-tokens',
    ])
    expect(rules.groups.flatMap((g) => g.rules.map((r) => r.name))).toContain('ConsentBrokerRedisUnreachable')
    // the token requests of the tests above, summed over the instances that served them
    const served = await until(
      'the successful token requests in Prometheus',
      async () => {
        const data = await prometheusApi<{ result: Array<{ value: [number, string] }> }>(
          `/api/v1/query?query=${encodeURIComponent('sum(consent_broker_obtain_token_requests_total{outcome="success"})')}`,
        )
        const value = Number(data.result[0]?.value[1] ?? 0)
        return value >= 8 ? value : undefined
      },
      20_000,
    )
    expect(served).toBe(8)
    const ready = await prometheusApi<{ result: Array<{ value: [number, string] }> }>(
      `/api/v1/query?query=${encodeURIComponent('consent_broker_ready{job="consent-broker"}')}`,
    )
    expect(ready.result.map((r) => r.value[1])).toEqual(['1', '1', '1'])
    expect(await activeAlerts('ConsentBrokerRedisUnreachable')).toEqual([])
  })

  it('fires ConsentBrokerRedisUnreachable when Redis stops, and clears it after a restart', async () => {
    await redis.stop()
    // meanwhile the instances say they are not ready, and integrations get the broker's 503
    const notReady = await until(
      'a not_ready answer',
      async () => {
        const answer = await testFetch(`${publicUrl}/readyz`)
        return answer.status === 503 ? ((await answer.json()) as { error: { code: string } }) : undefined
      },
      15_000,
    )
    expect(notReady.error.code).toBe('not_ready')
    const refused = await mailClient.getAccessToken()
    expect(refused.status, refused.body).toBe(503)
    expect(refused.errorMessage).toMatch(/^store_unavailable: /)
    const firing = await until(
      'the alert to fire for the three instances',
      async () => {
        const alerts = await activeAlerts('ConsentBrokerRedisUnreachable')
        const instances = alerts.filter((a) => a.state === 'firing').map((a) => a.labels.instance)
        return instances.length === 3 ? instances.sort() : undefined
      },
      60_000,
    )
    expect(firing).toEqual(metricsPorts.map((port) => `127.0.0.1:${port}`).sort())
    // the instances kept answering their scrapes: down Redis is not a down instance
    const up = await prometheusApi<{ result: Array<{ value: [number, string] }> }>(
      `/api/v1/query?query=${encodeURIComponent('up{job="consent-broker"}')}`,
    )
    expect(up.result.map((r) => r.value[1])).toEqual(['1', '1', '1'])

    await redis.restart()
    await until(
      'the alert to clear',
      async () => ((await activeAlerts('ConsentBrokerRedisUnreachable')).length === 0 ? true : undefined),
      60_000,
    )
    // the registration made before the outage (AOF) serves tokens again, through the proxy
    const after = await until(
      'a token after the restart',
      async () => {
        const answer = await mailClient.getAccessToken()
        return answer.status === 200 ? answer : undefined
      },
      20_000,
    )
    expect(after.accessToken.split('.')).toHaveLength(3)
  })

  it('runs every query of the Grafana dashboard over metrics the brokers really export', async () => {
    const dashboard = JSON.parse(await readFile(SHIPPED.dashboard, 'utf8')) as {
      panels: Array<{ type: string; title: string; targets?: Array<{ expr: string }> }>
    }
    const expressions = dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((t) => t.expr))
    expect(expressions.length).toBeGreaterThan(15)
    for (const expr of expressions) {
      await prometheusApi(`/api/v1/query?query=${encodeURIComponent(expr)}`)
    }
    const names = new Set(
      await prometheusApi<string[]>(
        `/api/v1/label/__name__/values?match[]=${encodeURIComponent('{job="consent-broker"}')}`,
      ),
    )
    const used = new Set(
      expressions.flatMap((expr) => expr.match(/\b(?:consent_broker_\w+|up)(?=\{)/g) ?? []),
    )
    const missing = [...used].filter((name) => !names.has(name))
    expect(missing).toEqual([])
  })
})
