// obtain-token end to end: real consent through the Entra ID emulator, the real identity provider,
// the Redis store, the broker listening on a real port, and the independent XSOAR test client.
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { promisify } from 'node:util'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest'
import { type RunningEmulator, startEmulator } from '../../emulator/server.js'
import type { Env } from '../../src/config.js'
import { type ConsentValues, consentViaEmulator, type RunningBroker, startBroker } from '../support/broker.js'
import { assertNoSecretLogged, memoryLogger } from '../support/log-capture.js'
import { monitorRedis } from '../support/redis-monitor.js'
import { XsoarClient } from '../support/xsoar-client.js'

const CONTOSO = '7c3b1e5a-4d2f-4b8e-9a61-2f0c8d4e6b13'

let emulator: RunningEmulator
const brokers: RunningBroker[] = []
/** Every log line any broker of this file wrote. */
const logs: string[] = []
/** Every secret seen in this file: no log line may contain one. */
const secrets = new Set<string>()

/** Every broker of this file logs here (the process logger, at debug). */
function captureLogger() {
  return memoryLogger('debug', logs).logger
}

async function broker(env: Env = {}): Promise<{ broker: RunningBroker; url: string }> {
  const running = await startBroker({
    authorityUrl: emulator.url,
    redisUrl: inject('redisUrl'),
    logger: captureLogger(),
    env,
  })
  brokers.push(running)
  const address = await running.app.listen({ port: 0, host: '127.0.0.1' })
  return { broker: running, url: `${address}/obtain-token` }
}

async function consent(running: RunningBroker, slug: string, username: string): Promise<ConsentValues> {
  const values = await consentViaEmulator(running.app, { slug, username })
  secrets.add(values.key)
  const stored = await running.store.registrations.get(values.registrationId)
  if (stored?.secrets.refreshToken) secrets.add(stored.secrets.refreshToken)
  return values
}

function client(values: ConsentValues, appName: string, url: string): XsoarClient {
  return new XsoarClient({
    id: values.id,
    token: values.token,
    key: values.key,
    appName,
    integrationName: 'Integration Test',
    integrationVersion: '9.9.9',
    urlOverride: url,
  })
}

/** Sends and records the access token and encrypted_token as secrets. */
async function obtain(c: XsoarClient, options: { scope?: string | null; resource?: string } = {}) {
  const body = c.body(options)
  secrets.add(JSON.parse(body).encrypted_token)
  const answer = await c.post(body)
  if (answer.ok) {
    expect(typeof answer.expiresIn).toBe('number')
    c.refreshToken = answer.refreshToken
    secrets.add(answer.accessToken)
  }
  return answer
}

async function stats(): Promise<{ client_credentials: number; refresh_token: number }> {
  const response = await fetch(`${emulator.url}/_emulator/stats`)
  const body = (await response.json()) as {
    token_requests: { client_credentials: number; refresh_token: number }
  }
  return body.token_requests
}

async function emulatorPost(path: string, body: unknown = {}): Promise<void> {
  const response = await fetch(`${emulator.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  expect(response.status, await response.clone().text()).toBe(200)
}

function jwtClaims(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as Record<
    string,
    unknown
  >
}

function errorOf(body: string): { code: string; message: string; [k: string]: unknown } {
  expect(body.includes('\n')).toBe(false)
  return (JSON.parse(body) as { error: { code: string; message: string } }).error
}

beforeAll(async () => {
  emulator = await startEmulator({ port: 0 })
})

beforeEach(async () => {
  await emulatorPost('/_emulator/reset')
})

afterEach(async () => {
  for (const running of brokers.splice(0)) await running.close()
})

afterAll(async () => {
  await emulator?.close()
  // No log line of any broker in this file contains a Key, a token or an encrypted_token.
  expect(logs.length).toBeGreaterThan(0)
  assertNoSecretLogged(logs, secrets)
})

describe('obtain-token with real consent', () => {
  it('admin consent: client credentials once, then the cache; the Token comes back as refresh_token', async () => {
    const { broker: b, url } = await broker()
    const values = await consent(b, 'ms-graph-mail', 'admin@contoso.example')
    expect(values.token).toBe(CONTOSO)
    const c = client(values, 'ms-graph-mail', url)
    const before = await stats()
    const startedAt = Date.now()
    const first = await obtain(c)
    expect(first.status, first.body).toBe(200)
    expect(first.headers.get('cache-control')).toBe('no-store')
    expect(first.headers.get('x-content-type-options')).toBe('nosniff')
    expect(first.headers.get('content-security-policy')).toBe("default-src 'none'; frame-ancestors 'none'")
    expect(first.headers.get('x-frame-options')).toBe('DENY')
    expect(first.headers.get('cross-origin-resource-policy')).toBe('same-origin')
    expect(first.headers.get('referrer-policy')).toBe('no-referrer')
    expect(first.refreshToken).toBe(values.token)
    expect(jwtClaims(first.accessToken)).toMatchObject({ aud: 'https://graph.microsoft.com', tid: CONTOSO })
    const second = await obtain(c)
    expect(second.accessToken).toBe(first.accessToken)
    const after = await stats()
    expect(after.client_credentials - before.client_credentials).toBe(1)
    const meta = await b.store.registrations.getMeta(values.registrationId)
    expect(meta?.lastClient).toBe('Integration Test/9.9.9')
    const issuedAt = Date.parse(meta?.lastIssuedAt ?? '')
    expect(issuedAt).toBeGreaterThanOrEqual(startedAt)
    expect(issuedAt).toBeLessThanOrEqual(Date.now())
  })

  it('a cache hit of a registration seen before sends Redis one command (the admit script)', async () => {
    // The notifications dispatcher polls its outbox on the same connection every second; a minute
    // apart, its polls stay out of the few hundred milliseconds this test watches.
    const { broker: b, url } = await broker({ WEBHOOK_POLL_INTERVAL_MS: '60000' })
    const values = await consent(b, 'ms-graph-mail', 'admin@contoso.example')
    const c = client(values, 'ms-graph-mail', url)
    expect((await obtain(c)).status).toBe(200) // miss: upstream call, cache write, usage
    expect((await obtain(c)).status).toBe(200) // hit
    const commands: string[] = []
    const marker = `${b.keyPrefix}request-done`
    let markerSeen: () => void = () => undefined
    const done = new Promise<void>((resolve) => {
      markerSeen = resolve
    })
    const monitor = await monitorRedis(inject('redisUrl'), ({ args, source }) => {
      // this broker's commands only (other test files share the server); not those run inside Lua
      if (source !== 'lua' && args.some((arg) => arg.includes(b.keyPrefix))) commands.push(args[0]!)
      if (args[1] === marker) markerSeen()
    })
    try {
      expect((await obtain(c)).status).toBe(200)
      // MONITOR reports asynchronously: wait for a command sent after the request on the broker's
      // own connection (so it is reported after the request's commands)
      await b.redis?.echo(marker)
      await done
    } finally {
      monitor.close()
    }
    expect(commands.map((name) => name.toLowerCase())).toEqual(['evalsha', 'echo'])
  })

  it('delegated consent: refresh grant, rotation stored, the Microsoft refresh token never returned', async () => {
    const { broker: b, url } = await broker()
    const values = await consent(b, 'ms-graph-mail-listener', 'user@contoso.example')
    const initial = (await b.store.registrations.get(values.registrationId))?.secrets.refreshToken
    // The emulator's refresh tokens are `1.` + 64 random bytes (base64url).
    expect(initial).toMatch(/^1\.[\w-]{86}$/)
    const c = client(values, 'ms-graph-mail-listener', url)
    const startedAt = Date.now()
    const answer = await obtain(c)
    expect(answer.status, answer.body).toBe(200)
    expect(answer.refreshToken).toBe(values.token)
    expect(jwtClaims(answer.accessToken)).toMatchObject({ aud: 'https://graph.microsoft.com', tid: CONTOSO })
    const stored = await b.store.registrations.get(values.registrationId)
    expect(stored?.secrets.refreshToken).toMatch(/^1\.[\w-]{86}$/)
    expect(stored?.secrets.refreshToken).not.toBe(initial)
    const refreshedAt = Date.parse(stored?.usage.lastRefreshAt ?? '')
    expect(refreshedAt).toBeGreaterThanOrEqual(startedAt)
    expect(refreshedAt).toBeLessThanOrEqual(Date.now())
    secrets.add(stored!.secrets.refreshToken!)
    expect(answer.body).not.toContain(stored!.secrets.refreshToken!)
    expect(answer.body).not.toContain(initial!)
  })

  it('Defender: scope null, "graph" and a full scope; a scope not allowed is a clear 400', async () => {
    const { broker: b, url } = await broker()
    const values = await consent(b, 'ms-defender-atp', 'admin@contoso.example')
    const c = client(values, 'ms-defender-atp', url)
    const plain = await obtain(c, { scope: null })
    expect(plain.status, plain.body).toBe(200)
    expect(jwtClaims(plain.accessToken).aud).toBe('https://api.securitycenter.microsoft.com')
    const graph = await obtain(c, { scope: 'graph' })
    expect(graph.status, graph.body).toBe(200)
    expect(jwtClaims(graph.accessToken).aud).toBe('https://graph.microsoft.com')
    const full = 'https://securitycenter.onmicrosoft.com/windowsatpservice/.default'
    const fullAnswer = await obtain(c, { scope: full })
    expect(fullAnswer.status, fullAnswer.body).toBe(200)
    expect(JSON.parse(fullAnswer.body).scope).toBe(full)
    const denied = await obtain(c, { scope: 'https://management.azure.com/.default' })
    expect(denied.status).toBe(400)
    expect(denied.errorMessage).toMatch(
      /^invalid_scope: scope "https:\/\/management.azure.com\/.default" is not allowed for ms-defender-atp; allowed: /,
    )
  })

  it('Log Analytics: the two-resource loop works, each request sending the last refresh_token', async () => {
    const { broker: b, url } = await broker()
    const values = await consent(b, 'ms-azure-log-analytics', 'user@contoso.example')
    const c = client(values, 'ms-azure-log-analytics', url)
    for (let round = 0; round < 2; round++) {
      for (const resource of ['https://management.azure.com', 'https://api.loganalytics.io']) {
        const answer = await obtain(c, { resource })
        expect(answer.status, answer.body).toBe(200)
        expect(jwtClaims(answer.accessToken).aud).toBe(resource)
        expect(c.refreshToken).toBe(values.token)
      }
    }
    // Two refreshes (one per resource); the second round came from the cache.
    expect((await stats()).refresh_token).toBe(2)
  })

  it('rejections with a real registration', async () => {
    const { broker: b, url } = await broker()
    const values = await consent(b, 'ms-graph-user', 'admin@contoso.example')
    const c = client(values, 'ms-graph-user', url)
    const wrongKey = client({ ...values, key: randomBytes(32).toString('base64') }, 'ms-graph-user', url)
    const refused = await obtain(wrongKey)
    expect(errorOf(refused.body).code).toBe('invalid_key')
    expect(refused.headers.get('x-content-type-options')).toBe('nosniff')
    expect(refused.headers.get('cache-control')).toBe('no-store')
    const skewed = client(values, 'ms-graph-user', url)
    skewed.now = () => Math.floor(Date.now() / 1000) - 3600
    expect(errorOf((await obtain(skewed)).body).code).toBe('stale_token')
    const body = c.body()
    secrets.add(JSON.parse(body).encrypted_token)
    expect((await c.post(body)).status).toBe(200)
    const replay = await c.post(body)
    expect(replay.status).toBe(401)
    expect(replay.errorMessage).toMatch(/^replayed_token: /)
    const mismatch = await c.post(c.body({ content: 'a9e4f7c2-1b3d-4e5f-8a7b-6c5d4e3f2a10' }))
    expect(errorOf(mismatch.body).code).toBe('token_mismatch')
    const otherApp = client(values, 'ms-graph-mail', url)
    expect(errorOf((await obtain(otherApp)).body).code).toBe('unknown_registration')
  })
})

describe('obtain-token when Entra ID says no', () => {
  it('revoked at the tenant → needs_consent and 401 consent_required (admin and delegated)', async () => {
    const { broker: b, url } = await broker()
    // Every token is inside the refresh margin, so every request goes upstream.
    await emulatorPost('/_emulator/faults', { accessTokenLifetimeSec: 60 })
    const admin = await consent(b, 'ms-graph-mail', 'admin@contoso.example')
    const delegated = await consent(b, 'ms-graph-mail-listener', 'user@contoso.example')
    const ca = client(admin, 'ms-graph-mail', url)
    const cd = client(delegated, 'ms-graph-mail-listener', url)
    expect((await obtain(ca)).status).toBe(200)
    expect((await obtain(cd)).status).toBe(200)
    await emulatorPost(`/_emulator/tenants/${CONTOSO}/revoke`)
    for (const [c, values, slug] of [
      [ca, admin, 'ms-graph-mail'],
      [cd, delegated, 'ms-graph-mail-listener'],
    ] as const) {
      const answer = await obtain(c)
      expect(answer.status, answer.body).toBe(401)
      const error = errorOf(answer.body)
      expect(error.code).toBe('consent_required')
      expect(error.consent_url).toBe(`${b.config.publicUrl}/${slug}`)
      expect(answer.errorMessage).toContain(`${b.config.publicUrl}/${slug}`)
      const meta = await b.store.registrations.getMeta(values.registrationId)
      expect(meta?.status).toBe('needs_consent')
      expect(meta?.statusDetail?.code).toMatch(/^AADSTS/)
    }
    const before = await stats()
    expect(errorOf((await obtain(ca)).body).code).toBe('consent_required')
    expect(await stats()).toEqual(before)
  })

  it('429 with Retry-After: 503 with Retry-After, and no upstream call before it', async () => {
    const { broker: b, url } = await broker()
    const values = await consent(b, 'ms-graph-mail', 'admin@contoso.example')
    await b.store.tokens.deleteGroup(`tenant:ms-graph-mail:global:${CONTOSO}`)
    await emulatorPost('/_emulator/faults', {
      status: 429,
      retryAfter: 2,
      grantType: 'client_credentials',
      count: 1,
    })
    const c = client(values, 'ms-graph-mail', url)
    const before = (await stats()).client_credentials
    const throttled = await obtain(c)
    expect(throttled.status, throttled.body).toBe(503)
    expect(errorOf(throttled.body).code).toBe('upstream_throttled')
    expect(throttled.headers.get('retry-after')).toBe('2')
    const again = await obtain(c)
    expect(again.status).toBe(503)
    expect(Number(again.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
    expect((await stats()).client_credentials - before).toBe(1)
    await new Promise((r) => setTimeout(r, 2100))
    const ok = await obtain(c)
    expect(ok.status, ok.body).toBe(200)
    expect((await stats()).client_credentials - before).toBe(2)
  })

  it('an upstream slower than the upstream timeout → 504 within the response deadline', async () => {
    const { broker: b, url } = await broker({ UPSTREAM_TIMEOUT_MS: '500', RESPONSE_DEADLINE_MS: '1500' })
    const values = await consent(b, 'ms-graph-mail', 'admin@contoso.example')
    await b.store.tokens.deleteGroup(`tenant:ms-graph-mail:global:${CONTOSO}`)
    await emulatorPost('/_emulator/faults', { delayMs: 3000, grantType: 'client_credentials', count: 5 })
    const c = client(values, 'ms-graph-mail', url)
    const started = Date.now()
    const answer = await obtain(c)
    const elapsed = Date.now() - started
    expect(answer.status, answer.body).toBe(504)
    expect(errorOf(answer.body).code).toBe('upstream_timeout')
    expect(answer.errorMessage).toMatch(/^upstream_timeout: /)
    expect(elapsed).toBeLessThan(1500 + 250)
    await emulatorPost('/_emulator/reset')
  })
})

describe('the README’s obtain-token one-liner', () => {
  /** The `node -e` script of the README's "Try the values" block, exactly as printed there. */
  async function readmeScript(): Promise<string> {
    const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8')
    const block = readme.slice(readme.indexOf('Try the values the way an integration uses them'))
    const match = /node -e '([^']+)' "<app>" "<ID>" "<Token>" "<Key>"/.exec(block)
    if (match === null)
      throw new Error('README: the one-liner taking "<app>" "<ID>" "<Token>" "<Key>" is gone')
    return match[1]!
  }

  it('gets a token for any app with the values its page shows, and names the right app for the wrong one', async () => {
    const script = await readmeScript()
    const { broker: running, url } = await broker()
    const values = await consent(running, 'ms-graph-user', 'admin@fabrikam.example')
    const id = `${values.registrationId}@${url}`
    const run = async (app: string) => {
      const { stdout } = await promisify(execFile)(process.execPath, [
        '-e',
        script,
        app,
        id,
        values.token,
        values.key,
      ])
      return JSON.parse(stdout) as { access_token?: string; error?: { code: string; message: string } }
    }
    const answer = await run('ms-graph-user')
    expect(answer.access_token).toMatch(/^ey/)
    secrets.add(answer.access_token as string)
    const wrong = await run('ms-graph-mail')
    expect(wrong.error?.code).toBe('unknown_registration')
    expect(wrong.error?.message).toContain('this ID belongs to a ms-graph-user registration')
  })
})
