// Operations surface of the app: the OpenAPI document generated from the route schemas, /metrics
// behind an operator token, the METRICS_PORT listener, and the metric set actually moving when
// consents, token requests and upstream calls happen (scraped over HTTP, as Prometheus would).
import { randomBytes } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { findDemoClient } from '../../emulator/demo-data.js'
import { buildMetricsServer } from '../../src/routes/metrics.js'
import { consentViaEmulator, runConsentViaEmulator } from '../support/broker.js'
import { useBrokerOnRedis } from '../support/use-broker.js'
import { XsoarClient } from '../support/xsoar-client.js'

const OPERATOR_TOKEN = `ops-${randomBytes(16).toString('hex')}`

const { emulator, broker } = useBrokerOnRedis({
  env: { OPERATOR_TOKENS: `ops:${OPERATOR_TOKEN}`, METRICS_REGISTRATIONS_INTERVAL_SECONDS: '0' },
})
let baseUrl: string

beforeAll(async () => {
  await broker.app.listen({ host: '127.0.0.1', port: 0 })
  baseUrl = `http://127.0.0.1:${(broker.app.server.address() as AddressInfo).port}`
})

type OpenApi = {
  openapi: string
  paths: Record<string, Record<string, Record<string, unknown>>>
  components: { securitySchemes: Record<string, unknown> }
}

describe('GET /openapi.json', () => {
  let doc: OpenApi

  beforeAll(async () => {
    const response = await broker.app.inject({ method: 'GET', url: '/openapi.json' })
    expect(response.statusCode).toBe(200)
    expect(response.headers['content-type']).toMatch(/^application\/json/)
    doc = response.json()
  })

  it('documents obtain-token with its request and response schemas', () => {
    expect(doc.openapi).toMatch(/^3\./)
    const post = doc.paths['/obtain-token']?.post as {
      tags: string[]
      requestBody: {
        content: Record<string, { schema: { required: string[]; properties: Record<string, unknown> } }>
      }
      responses: Record<
        string,
        { content: Record<string, { schema: { properties: Record<string, unknown> } }> }
      >
    }
    expect(Object.keys(doc.paths['/obtain-token'] ?? {})).toEqual(['post'])
    expect(post.tags).toEqual(['tokens'])
    const body = post.requestBody.content['application/json']!.schema
    expect(body.required).toEqual(['app_name', 'registration_id', 'encrypted_token'])
    expect(Object.keys(body.properties)).toEqual(
      expect.arrayContaining(['app_name', 'registration_id', 'encrypted_token', 'scope', 'resource']),
    )
    const ok = post.responses['200']!.content['application/json']!.schema
    expect(Object.keys(ok.properties)).toEqual(
      expect.arrayContaining(['access_token', 'token_type', 'expires_in', 'scope', 'refresh_token']),
    )
    expect(ok.properties.expires_in).toMatchObject({ type: 'integer' })
    for (const status of ['400', '401', '429', '503', '504']) {
      const error = post.responses[status]?.content['application/json']?.schema
      expect(Object.keys(error?.properties ?? {}), status).toEqual(['error', 'message', 'request_id'])
    }
  })

  it('documents the operator API with its bearer security scheme', () => {
    const adminPaths = Object.keys(doc.paths).filter((path) => path.startsWith('/admin/api/'))
    expect(adminPaths).toEqual(
      expect.arrayContaining(['/admin/api/tenants', '/admin/api/registrations/{id}']),
    )
    for (const path of adminPaths) {
      for (const [method, operation] of Object.entries(doc.paths[path]!)) {
        expect(operation.security, `${method} ${path}`).toEqual([{ operatorToken: [] }])
      }
    }
    expect(doc.components.securitySchemes.operatorToken).toMatchObject({ type: 'http', scheme: 'bearer' })
    expect(doc.paths['/metrics']?.get?.security).toEqual([{ operatorToken: [] }])
  })

  it('leaves out HTML pages, static assets and itself', async () => {
    const paths = Object.keys(doc.paths)
    for (const path of paths) {
      expect(path, path).toMatch(/^\/(obtain-token|admin\/api\/|healthz|readyz|metrics)/)
    }
    expect(paths).not.toContain('/openapi.json')
    // Those routes exist: they are hidden, not missing.
    for (const url of ['/admin', '/ms-graph-mail', '/static/app.css', '/callback']) {
      const response = await broker.app.inject({ method: 'GET', url, headers: { accept: 'text/html' } })
      expect(response.statusCode, url).not.toBe(404)
    }
  })
})

describe('GET /metrics on the public listener', () => {
  it('refuses without a valid operator token', async () => {
    for (const authorization of [
      undefined,
      'Bearer wrong-token-wrong-token-wrong',
      `Basic ${OPERATOR_TOKEN}`,
      OPERATOR_TOKEN,
    ]) {
      const response = await fetch(`${baseUrl}/metrics`, {
        headers: authorization === undefined ? {} : { authorization },
      })
      expect(response.status, String(authorization)).toBe(401)
      expect(response.headers.get('www-authenticate')).toMatch(/^Bearer/)
      const body = (await response.json()) as { error: { code: string } }
      expect(body.error.code).toBe('unauthorized')
      expect(JSON.stringify(body)).not.toContain('consent_broker_')
    }
  })

  it('serves the Prometheus text format to an operator', async () => {
    const response = await fetch(`${baseUrl}/metrics`, {
      headers: { authorization: `Bearer ${OPERATOR_TOKEN}` },
    })
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
    expect(response.headers.get('cache-control')).toBe('no-store')
    const text = await response.text()
    expect(text).toMatch(/^# HELP consent_broker_/m)
    expect(text).toMatch(/^consent_broker_process_resident_memory_bytes \d+/m)
    expect(text).toMatch(/^consent_broker_nodejs_eventloop_lag_seconds /m)
  })
})

describe('the METRICS_PORT listener', () => {
  let server: FastifyInstance

  beforeAll(async () => {
    server = buildMetricsServer(broker.app.metrics.registry, pino({ level: 'silent' }))
    await server.listen({ host: '127.0.0.1', port: 0 })
  })
  afterAll(async () => {
    await server.close()
  })

  it('serves /metrics without a token, and nothing else', async () => {
    const url = `http://127.0.0.1:${(server.server.address() as AddressInfo).port}`
    const metrics = await fetch(`${url}/metrics`)
    expect(metrics.status).toBe(200)
    expect(await metrics.text()).toMatch(
      /^consent_broker_obtain_token_requests_total|^# HELP consent_broker_/m,
    )
    expect((await fetch(`${url}/`)).status).toBe(404)
    expect((await fetch(`${url}/obtain-token`, { method: 'POST' })).status).toBe(404)
    expect((await fetch(`${url}/admin/api/tenants`)).status).toBe(404)
  })
})

/** The value of one sample (labels matched as a subset); undefined when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  let total: number | undefined
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (match === null || match[1] !== name) continue
    const found: Record<string, string> = {}
    for (const pair of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) found[pair[1]!] = pair[2]!
    if (Object.entries(labels).every(([key, value]) => found[key] === value)) {
      total = (total ?? 0) + Number(match[3])
    }
  }
  return total
}

async function scrape(): Promise<string> {
  const response = await fetch(`${baseUrl}/metrics`, {
    headers: { authorization: `Bearer ${OPERATOR_TOKEN}` },
  })
  expect(response.status).toBe(200)
  return response.text()
}

describe('metrics move where their events happen', () => {
  it('counts consents, upstream calls, token requests, cache, locks and registrations', async () => {
    const values = await consentViaEmulator(broker.app, {
      slug: 'ms-graph-mail',
      username: 'admin@contoso.example',
    })
    let text = await scrape()
    const consent = { app: 'ms-graph-mail', kind: 'admin' }
    expect(
      sample(text, 'consent_broker_consents_total', { ...consent, stage: 'started' }),
    ).toBeGreaterThanOrEqual(1)
    expect(sample(text, 'consent_broker_consents_total', { ...consent, stage: 'completed' })).toBe(1)
    expect(sample(text, 'consent_broker_registrations', { status: 'active' })).toBe(1)
    expect(
      sample(text, 'consent_broker_upstream_requests_total', { grant: 'authorization_code', outcome: 'ok' }),
    ).toBeGreaterThanOrEqual(1)

    // The consent itself may call the token endpoint (tenant-wide consent proof): count from here.
    const before = text
    const delta = (after: string, name: string, labels: Record<string, string>) =>
      (sample(after, name, labels) ?? 0) - (sample(before, name, labels) ?? 0)
    const app = { app: 'ms-graph-mail' }
    const client = new XsoarClient({
      ...values,
      appName: 'ms-graph-mail',
      urlOverride: `${baseUrl}/obtain-token`,
    })
    expect((await client.getAccessToken()).status).toBe(200)
    expect((await client.getAccessToken()).status).toBe(200)
    text = await scrape()
    expect(delta(text, 'consent_broker_obtain_token_requests_total', { ...app, outcome: 'success' })).toBe(2)
    expect(delta(text, 'consent_broker_token_cache_total', { ...app, result: 'miss' })).toBe(1)
    expect(delta(text, 'consent_broker_token_cache_total', { ...app, result: 'hit' })).toBe(1)
    const grant = { grant: 'client_credentials', outcome: 'ok' }
    expect(delta(text, 'consent_broker_upstream_requests_total', { ...grant, code: '' })).toBe(1)
    expect(delta(text, 'consent_broker_upstream_request_duration_seconds_count', grant)).toBe(1)
    expect(delta(text, 'consent_broker_lock_waits_total', { result: 'acquired' })).toBe(1)

    // A wrong Key: counted by its error code.
    const wrongKey = new XsoarClient({
      ...values,
      key: randomBytes(32).toString('base64'),
      appName: 'ms-graph-mail',
      urlOverride: `${baseUrl}/obtain-token`,
    })
    const rejected = await wrongKey.getAccessToken()
    expect(rejected.status).toBe(401)
    const code = (JSON.parse(rejected.body) as { error: { code: string } }).error.code
    text = await scrape()
    expect(delta(text, 'consent_broker_obtain_token_requests_total', { ...app, outcome: code })).toBe(1)
  })

  it('counts an upstream failure by its AADSTS code, and a failed consent by reason', async () => {
    const values = await consentViaEmulator(broker.app, {
      slug: 'ms-graph-user',
      username: 'admin@fabrikam.example',
    })
    const fault = await fetch(`${emulator.url}/_emulator/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        grantType: 'client_credentials',
        clientId: findDemoClient('ms-graph-user').clientId,
        status: 401,
        error: 'invalid_client',
        errorCode: 7000215,
        count: 1,
      }),
    })
    expect(fault.status).toBeLessThan(300)
    const client = new XsoarClient({
      ...values,
      appName: 'ms-graph-user',
      urlOverride: `${baseUrl}/obtain-token`,
    })
    const answer = await client.getAccessToken()
    expect(answer.status).toBeGreaterThanOrEqual(400)
    let text = await scrape()
    expect(
      sample(text, 'consent_broker_upstream_requests_total', {
        grant: 'client_credentials',
        code: 'AADSTS7000215',
      }),
    ).toBe(1)

    const denied = await runConsentViaEmulator(broker.app, {
      slug: 'ms-graph-mail-listener',
      username: 'user@contoso.example',
      decision: 'deny',
    })
    expect(denied.values).toBeUndefined()
    text = await scrape()
    const failed = text
      .split('\n')
      .filter((line) => line.startsWith('consent_broker_consents_total{') && line.includes('stage="failed"'))
    expect(failed.some((line) => /app="ms-graph-mail-listener"/.test(line) && !/reason=""/.test(line))).toBe(
      true,
    )
  })
})
