// The one handler, over HTTP: requests no route answers (404 / 405, JSON on API paths, a page on
// browser paths), the operator API authenticating before it says whether a path exists, the OpenAPI
// document listing the statuses and headers the server really answers, and a Redis that hangs
// answered as store_unavailable and counted, on every kind of route.
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type Server, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bearer, operatorToken } from '../support/admin-helpers.js'
import { type RunningBroker, startBroker, startFormCredentials } from '../support/broker.js'

const ALICE = operatorToken('alice')
// The memory store and no consent here: the identity provider is never called.
const NO_AUTHORITY = 'http://127.0.0.1:9'

describe('requests no route answers', () => {
  let broker: RunningBroker
  beforeAll(async () => {
    broker = await startBroker({ authorityUrl: NO_AUTHORITY, env: { OPERATOR_TOKENS: `alice:${ALICE}` } })
  })
  afterAll(async () => {
    await broker?.close()
  })

  it('GET /obtain-token answers 405 with Allow: POST in one line of JSON, whatever Accept says', async () => {
    for (const accept of ['text/html,application/xhtml+xml', 'application/json', '*/*']) {
      const response = await broker.app.inject({ method: 'GET', url: '/obtain-token', headers: { accept } })
      expect(response.statusCode, accept).toBe(405)
      expect(response.headers.allow).toBe('POST')
      expect(response.headers['content-type']).toContain('application/json')
      expect(response.body).not.toContain('\n')
      expect(response.json()).toMatchObject({
        error: { code: 'method_not_allowed', message: 'GET is not allowed on /obtain-token; use POST' },
        request_id: response.headers['x-request-id'],
      })
    }
  })

  it('the other API paths answer JSON too: an unknown path 404, a wrong method 405', async () => {
    const html = { accept: 'text/html' }
    const post = await broker.app.inject({ method: 'POST', url: '/healthz', headers: html })
    expect(post.statusCode).toBe(405)
    expect(post.headers.allow).toBe('GET, HEAD')
    expect(post.json().error.code).toBe('method_not_allowed')
    const metrics = await broker.app.inject({ method: 'DELETE', url: '/metrics', headers: html })
    expect(metrics.statusCode).toBe(405)
    expect(metrics.headers['content-type']).toContain('application/json')
    const openapi = await broker.app.inject({ method: 'PUT', url: '/openapi.json', headers: html })
    expect(openapi.statusCode).toBe(405)
    expect(openapi.headers['content-type']).toContain('application/json')
  })

  it('/static/ serves its two assets; any other file there is 404, not a validation error', async () => {
    for (const file of ['app.css', 'app.js']) {
      expect((await broker.app.inject({ method: 'GET', url: `/static/${file}` })).statusCode, file).toBe(200)
    }
    const missing = await broker.app.inject({ method: 'GET', url: '/static/nope' })
    expect(missing.statusCode).toBe(404)
    expect(missing.body).not.toContain('allowed values')
  })

  it('browser paths answer the not-found page, whatever Accept says', async () => {
    for (const accept of ['text/html', 'application/json']) {
      const missing = await broker.app.inject({ method: 'GET', url: '/no-such-app', headers: { accept } })
      expect(missing.statusCode, accept).toBe(404)
      expect(missing.headers['content-type']).toContain('text/html')
      expect(missing.body).toContain('Page not found')
      const deep = await broker.app.inject({ method: 'GET', url: '/a/b/c/d', headers: { accept } })
      expect(deep.statusCode, accept).toBe(404)
      expect(deep.headers['content-type']).toContain('text/html')
    }
    const wrongMethod = await broker.app.inject({ method: 'DELETE', url: '/ms-graph-mail/start' })
    expect(wrongMethod.statusCode).toBe(405)
    expect(wrongMethod.headers.allow).toBe('POST')
    expect(wrongMethod.headers['content-type']).toContain('text/html')
  })

  it('a JSON request to a mistyped token URL gets the JSON not_found, never a page', async () => {
    const body = JSON.stringify({ app_name: 'ms-graph-mail', registration_id: 'x', encrypted_token: 'x' })
    for (const url of [
      '/obtain-tokn',
      '/Obtain-Token',
      '/obtain_token',
      '/obtain-token/x',
      '/v1/obtain-token',
    ]) {
      const response = await broker.app.inject({
        method: 'POST',
        url,
        headers: { 'content-type': 'application/json; charset=utf-8' },
        payload: body,
      })
      expect(response.statusCode, url).toBe(404)
      expect(response.headers['content-type'], url).toContain('application/json')
      expect(response.json(), url).toMatchObject({
        error: { code: 'not_found' },
        request_id: response.headers['x-request-id'],
      })
    }
  })

  it("a 405 names the route as declared, never the request's own path", async () => {
    // A form post another site could send: the page must not show text of its choosing.
    const planted = '/Security-notice:your-consent-was-revoked.Call-support-at-555-0100'
    const unknown = await broker.app.inject({
      method: 'POST',
      url: planted,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'a=b',
    })
    expect(unknown.statusCode).toBe(404)
    expect(unknown.headers['content-type']).toContain('text/html')
    expect(unknown.body).not.toContain('Call-support')
    const page = await broker.app.inject({
      method: 'POST',
      url: '/ms-graph-mail',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'a=b',
    })
    expect(page.statusCode).toBe(405)
    expect(page.headers.allow).toBe('GET, HEAD')
    expect(page.headers['content-type']).toContain('text/html')
    expect(page.body).toContain('POST is not allowed on /{app}; use GET, HEAD')
  })

  it('POST /obtain-token counts every answer, bodies the parser refuses included', async () => {
    const counted = async (outcome: string) => {
      const metric = await broker.app.metrics.obtainTokenRequests.get()
      return metric.values.find((v) => v.labels.outcome === outcome && v.labels.app === 'unknown')?.value ?? 0
    }
    const before = {
      invalid: await counted('invalid_request'),
      tooLarge: await counted('payload_too_large'),
      mediaType: await counted('unsupported_media_type'),
    }
    const post = (contentType: string, payload: string) =>
      broker.app.inject({
        method: 'POST',
        url: '/obtain-token',
        headers: { 'content-type': contentType },
        payload,
      })
    const answers = [
      await post('application/json', '{"app_name": '),
      await post('application/json', ''),
      await post('text/plain', 'app_name=x'),
      await post('application/json', JSON.stringify({ app_name: 'x'.repeat(17 * 1024) })),
    ]
    expect(answers.map((a) => [a.statusCode, a.json().error.code])).toEqual([
      [400, 'invalid_request'],
      [400, 'invalid_request'],
      [415, 'unsupported_media_type'],
      [413, 'payload_too_large'],
    ])
    expect((await counted('invalid_request')) - before.invalid).toBe(2)
    expect((await counted('payload_too_large')) - before.tooLarge).toBe(1)
    expect((await counted('unsupported_media_type')) - before.mediaType).toBe(1)
  })

  it('the JSON APIs take a JSON body only: a form or plain text is 415, never parsed', async () => {
    const fields = {
      app_name: 'ms-graph-mail',
      registration_id: 'b2f1c7a0-0000-4000-8000-000000000001',
      encrypted_token: Buffer.alloc(48, 1).toString('base64'),
    }
    const form = new URLSearchParams(fields).toString()
    const cases = [
      { url: '/obtain-token', type: 'application/x-www-form-urlencoded', payload: form, headers: {} },
      { url: '/obtain-token', type: 'text/plain', payload: JSON.stringify(fields), headers: {} },
      {
        url: '/admin/api/registrations/b2f1c7a0-0000-4000-8000-000000000001/revoke',
        type: 'application/x-www-form-urlencoded',
        payload: 'reason=test',
        headers: bearer(ALICE),
      },
      {
        url: '/admin/api/webhooks',
        type: 'text/plain',
        payload: JSON.stringify({ url: 'https://example.com/hook' }),
        headers: bearer(ALICE),
      },
    ]
    for (const { url, type, payload, headers } of cases) {
      const response = await broker.app.inject({
        method: 'POST',
        url,
        headers: { ...headers, 'content-type': type },
        payload,
      })
      expect(response.statusCode, `${type} to ${url}: ${response.body}`).toBe(415)
      expect(response.headers['content-type']).toContain('application/json')
      expect(response.json().error.code).toBe('unsupported_media_type')
    }
    // The same operator request as JSON is parsed (and refused for what it says, not how).
    const json = await broker.app.inject({
      method: 'POST',
      url: '/admin/api/registrations/b2f1c7a0-0000-4000-8000-000000000001/revoke',
      headers: { ...bearer(ALICE), 'content-type': 'application/json' },
      payload: JSON.stringify({ reason: 'test' }),
    })
    expect(json.statusCode, json.body).toBe(404)
    // Without a token the operator API still says nothing but 401, whatever the body.
    const anonymous = await broker.app.inject({
      method: 'POST',
      url: '/admin/api/webhooks',
      headers: { 'content-type': 'text/plain' },
      payload: 'x',
    })
    expect(anonymous.statusCode).toBe(401)
  })

  it('under /admin/api, any path and method without a valid token is 401 before 404 or 405', async () => {
    const cases: Array<{ method: 'GET' | 'POST' | 'DELETE' | 'PUT'; url: string }> = [
      { method: 'GET', url: '/admin/api/no-such-thing' },
      { method: 'DELETE', url: '/admin/api/tenants' },
      { method: 'PUT', url: '/admin/api/registrations/abc/revoke' },
      { method: 'GET', url: '/admin/api' },
      { method: 'GET', url: '/admin/api/tenants' },
    ]
    // Each from its own address: refused tokens are throttled per address (attack-operator.test.ts).
    let address = 0
    for (const { method, url } of cases) {
      for (const headers of [{}, bearer('wrong-token'), { authorization: 'Basic YWxpY2U6eA==' }]) {
        address += 1
        const response = await broker.app.inject({
          method,
          url,
          headers,
          remoteAddress: `192.0.2.${address}`,
        })
        expect(response.statusCode, `${method} ${url}`).toBe(401)
        expect(response.headers['www-authenticate']).toBe('Bearer realm="consent-broker operators"')
        expect(response.json().error.code).toBe('unauthorized')
      }
    }
    const unknown = await broker.app.inject({
      method: 'GET',
      url: '/admin/api/no-such-thing',
      headers: bearer(ALICE),
    })
    expect(unknown.statusCode).toBe(404)
    expect(unknown.json().error).toEqual({
      code: 'not_found',
      message: 'no route for GET at this path',
    })
    const wrongMethod = await broker.app.inject({
      method: 'DELETE',
      url: '/admin/api/tenants',
      headers: bearer(ALICE),
    })
    expect(wrongMethod.statusCode).toBe(405)
    expect(wrongMethod.headers.allow).toBe('GET, HEAD')
  })
})

describe('the OpenAPI document says what the server does', () => {
  let broker: RunningBroker
  // biome-ignore lint/suspicious/noExplicitAny: the document is walked generically
  let doc: any
  beforeAll(async () => {
    broker = await startBroker({ authorityUrl: NO_AUTHORITY, env: { OPERATOR_TOKENS: `alice:${ALICE}` } })
    doc = (await broker.app.inject({ method: 'GET', url: '/openapi.json' })).json()
  })
  afterAll(async () => {
    await broker?.close()
  })

  it('request schemas refuse unknown properties where the server refuses them: the operator API only', async () => {
    const closed: string[] = []
    for (const [path, operations] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) {
      for (const [method, operation] of Object.entries(operations)) {
        const { responses: _responses, ...request } = operation as Record<string, unknown>
        if (JSON.stringify(request).includes('"additionalProperties":false')) closed.push(`${method} ${path}`)
      }
    }
    expect(closed).toContain('post /admin/api/registrations/{id}/revoke')
    expect(closed.filter((operation) => !operation.includes(' /admin/api/'))).toEqual([])
    // Every operator body is closed in the document, and every operator route refuses an unknown
    // query parameter (OpenAPI has no word for that on parameters: the info description says it).
    let bodies = 0
    let probed = 0
    for (const [path, operations] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) {
      if (!path.startsWith('/admin/api/')) continue
      for (const method of Object.keys(operations)) {
        const body = doc.paths[path][method].requestBody?.content?.['application/json']?.schema
        if (body !== undefined) {
          bodies++
          expect(body.additionalProperties, `${method} ${path}`).toBe(false)
          // (the body is validated before the query: one with required fields is refused for those)
          if ((body.required ?? []).length > 0) continue
        }
        probed++
        // Path parameters of their documented shapes (they are validated before the query).
        const url = path
          .replace('{tenantId}', randomUUID())
          .replace(/^\/admin\/api\/webhooks\/\{id\}/, `/admin/api/webhooks/ep_${'0'.repeat(24)}`)
          .replace('{messageId}', randomUUID())
          .replace('{id}', 'no-such-registration')
        const answer = await broker.app.inject({
          method: method.toUpperCase() as 'GET',
          url: `${url}?zz_unknown=1`,
          headers: bearer(ALICE),
          ...(body === undefined
            ? {}
            : { headers: { ...bearer(ALICE), 'content-type': 'application/json' }, payload: '{}' }),
        })
        expect(answer.statusCode, `${method} ${path}`).toBe(400)
        // (the name itself is not repeated: it is no misspelling of one taken)
        expect(answer.json().error.message, `${method} ${path}`).toMatch(
          /^querystring (has an unknown property \(it takes [a-z, ]+\)|takes no properties)$/,
        )
      }
    }
    expect(bodies).toBeGreaterThanOrEqual(4)
    expect(probed).toBeGreaterThanOrEqual(10)
    expect(doc.info.description).toContain('operator API refuses')
    // …and the server does refuse them: an unknown query parameter or body field is a 400.
    const listed = await broker.app.inject({ url: '/admin/api/tenants?bogus=1', headers: bearer(ALICE) })
    expect(listed.statusCode).toBe(400)
    expect(listed.json().error.message).toBe(
      'querystring has an unknown property (it takes app, cursor, limit)',
    )
    const revoke = await broker.app.inject({
      method: 'POST',
      url: '/admin/api/registrations/no-such-id/revoke',
      headers: { ...bearer(ALICE), 'content-type': 'application/json' },
      payload: JSON.stringify({ reason: 'offboarding', bogus: true }),
    })
    expect(revoke.statusCode, revoke.body).toBe(400)
    // obtain-token's body is open (clients may add fields) and says so by not closing it.
    const obtainBody = doc.paths['/obtain-token'].post.requestBody.content['application/json'].schema
    expect(obtainBody.additionalProperties).toBeUndefined()
  })

  it('/metrics answers its 401 in JSON and its 200 in text/plain', () => {
    const responses = doc.paths['/metrics'].get.responses
    expect(Object.keys(responses['200'].content)).toEqual(['text/plain'])
    expect(Object.keys(responses['401'].content)).toEqual(['application/json'])
    expect(Object.keys(responses['401'].content['application/json'].schema.properties)).toEqual([
      'error',
      'message',
      'request_id',
    ])
  })

  it('every operator route declares 503 (store_unavailable)', () => {
    const operations = Object.entries(doc.paths as Record<string, Record<string, { responses: object }>>)
      .filter(([path]) => path.startsWith('/admin/api/'))
      .flatMap(([path, byMethod]) =>
        Object.entries(byMethod).map(([method, op]) => [`${method} ${path}`, op] as const),
      )
    expect(operations.length).toBeGreaterThan(5)
    for (const [name, operation] of operations)
      expect(Object.keys(operation.responses), name).toContain('503')
  })

  // POST /obtain-token (a body), an operator route with a body and one without, and /metrics.
  const OBTAIN = ['/obtain-token', 'post'] as const
  const REVOKE = ['/admin/api/registrations/{id}/revoke', 'post'] as const
  const TENANTS = ['/admin/api/tenants', 'get'] as const
  const METRICS = ['/metrics', 'get'] as const
  // biome-ignore lint/suspicious/noExplicitAny: the document is walked generically
  const responsesOf = ([path, method]: readonly [string, string]): Record<string, any> =>
    doc.paths[path][method].responses

  it('lists the answers no route states itself: the HTTP layer’s and the operator token’s', () => {
    const statuses = (operation: readonly [string, string]) => Object.keys(responsesOf(operation))
    // Node's own (408, 431) and the connection cap (503) answer any request.
    for (const operation of [OBTAIN, REVOKE, TENANTS, METRICS]) {
      expect(statuses(operation), operation.join(' ')).toEqual(expect.arrayContaining(['408', '431', '503']))
    }
    // A body that is not JSON or too large, on a method that carries one.
    for (const operation of [OBTAIN, REVOKE]) {
      expect(statuses(operation), operation.join(' ')).toEqual(expect.arrayContaining(['413', '415']))
    }
    for (const operation of [TENANTS, METRICS]) {
      expect(statuses(operation), operation.join(' ')).not.toContain('415')
      expect(statuses(operation), operation.join(' ')).not.toContain('413')
    }
    // Too many wrong operator tokens from an address: 429 on every route that asks for one.
    for (const operation of [REVOKE, TENANTS, METRICS]) {
      expect(statuses(operation), operation.join(' ')).toEqual(expect.arrayContaining(['401', '429']))
    }
    expect(statuses(REVOKE)).toContain('414')
    // POST /obtain-token is never answered 404 or 405: those are other paths and methods.
    expect(statuses(OBTAIN)).toEqual(expect.arrayContaining(['400', '401', '429', '500', '502', '504']))
    expect(statuses(OBTAIN)).not.toContain('404')
    expect(statuses(OBTAIN)).not.toContain('405')
    expect(responsesOf(OBTAIN)['415'].description).toContain('`unsupported_media_type`')
    expect(Object.keys(responsesOf(OBTAIN)['415'].content['application/json'].schema.properties)).toEqual([
      'error',
      'message',
      'request_id',
    ])
  })

  it('declares X-Request-Id on every answer, Retry-After on 429 and 503, WWW-Authenticate on an operator 401', () => {
    for (const operation of [OBTAIN, REVOKE, TENANTS, METRICS]) {
      for (const [status, response] of Object.entries(responsesOf(operation))) {
        const where = `${operation.join(' ')} ${status}`
        expect(response.headers?.['X-Request-Id']?.schema, where).toEqual({ type: 'string' })
        if (status === '429' || status === '503') {
          expect(response.headers['Retry-After']?.schema, where).toMatchObject({ type: 'integer' })
        }
        if (status.startsWith('2')) expect(response.headers['Retry-After'], where).toBeUndefined()
      }
    }
    for (const operation of [REVOKE, TENANTS, METRICS]) {
      expect(responsesOf(operation)['401'].headers['WWW-Authenticate'], operation.join(' ')).toBeDefined()
    }
    expect(responsesOf(OBTAIN)['401'].headers['WWW-Authenticate']).toBeUndefined()
  })

  it('the statuses it documents are the ones the server answers, with the headers it declares', async () => {
    const cases = [
      {
        operation: OBTAIN,
        status: 415,
        request: {
          method: 'POST',
          url: '/obtain-token',
          headers: { 'content-type': 'text/plain' },
          payload: '{}',
        },
      },
      {
        operation: REVOKE,
        status: 415,
        request: {
          method: 'POST',
          url: '/admin/api/registrations/no-such-id/revoke',
          headers: { ...bearer(ALICE), 'content-type': 'text/plain' },
          payload: 'offboarding',
        },
      },
      {
        operation: REVOKE,
        status: 413,
        request: {
          method: 'POST',
          url: '/admin/api/registrations/no-such-id/revoke',
          headers: { ...bearer(ALICE), 'content-type': 'application/json' },
          payload: JSON.stringify({ reason: 'x'.repeat(20_000) }),
        },
      },
      {
        operation: REVOKE,
        status: 414,
        request: {
          method: 'POST',
          url: `/admin/api/registrations/${'a'.repeat(300)}/revoke`,
          headers: { ...bearer(ALICE), 'content-type': 'application/json' },
          payload: JSON.stringify({ reason: 'offboarding' }),
        },
      },
    ] as const
    for (const { operation, status, request } of cases) {
      const response = await broker.app.inject(request)
      const where = `${request.method} ${request.url.slice(0, 60)}`
      expect(response.statusCode, `${where}: ${response.body}`).toBe(status)
      expect(Object.keys(responsesOf(operation)), where).toContain(String(status))
      expect(response.headers['x-request-id'], where).toBe(response.json().request_id)
    }

    // Wrong tokens from one address (its own, so the other tests' address is not blocked): 401 ten
    // times, then 429 with Retry-After, on /metrics and on the operator API alike.
    const guesser = { remoteAddress: '203.0.113.77', headers: bearer('wrong-token-wrong-token-wrong') }
    for (let i = 0; i < 10; i++) {
      const refused = await broker.app.inject({ method: 'GET', url: '/metrics', ...guesser })
      expect(refused.statusCode).toBe(401)
    }
    for (const [operation, url] of [
      [METRICS, '/metrics'],
      [TENANTS, '/admin/api/tenants'],
    ] as const) {
      const blocked = await broker.app.inject({ method: 'GET', url, ...guesser })
      expect(blocked.statusCode, url).toBe(429)
      expect(Object.keys(responsesOf(operation)), url).toContain('429')
      expect(Number(blocked.headers['retry-after']), url).toBeGreaterThanOrEqual(1)
      expect(blocked.headers['x-request-id'], url).toBe(blocked.json().request_id)
    }
  })
})

describe('a Redis that accepts connections and never answers', () => {
  let redis: Server
  const sockets = new Set<Socket>()
  let broker: RunningBroker
  beforeAll(async () => {
    redis = createServer((socket) => {
      sockets.add(socket)
      socket.on('close', () => sockets.delete(socket))
      socket.on('error', () => undefined)
      socket.resume() // read and drop every command: the hang of a stopped or wedged server
    })
    redis.listen(0, '127.0.0.1')
    await once(redis, 'listening')
    const { port } = redis.address() as { port: number }
    broker = await startBroker({
      authorityUrl: NO_AUTHORITY,
      redisUrl: `redis://127.0.0.1:${port}`,
      env: { OPERATOR_TOKENS: `alice:${ALICE}` },
    })
  })
  afterAll(async () => {
    redis?.close()
    for (const socket of sockets) socket.destroy()
    await broker?.close()
  })

  it('every route answers 503 store_unavailable with Retry-After once the command times out, each counted', async () => {
    const before = await redisCommandErrors(broker)
    const form = await startFormCredentials(broker.app)
    const [token, api, consent, readiness] = await Promise.all([
      broker.app.inject({
        method: 'POST',
        url: '/obtain-token',
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify({
          app_name: 'ms-graph-mail',
          registration_id: 'b2f1c7a0-0000-4000-8000-000000000001',
          encrypted_token: Buffer.alloc(48, 1).toString('base64'),
        }),
      }),
      broker.app.inject({ method: 'GET', url: '/admin/api/tenants', headers: bearer(ALICE) }),
      broker.app.inject({
        method: 'POST',
        url: '/ms-graph-mail/start',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          'sec-fetch-site': 'same-origin',
          cookie: form.cookie,
        },
        payload: `cloud=global&csrf=${form.csrf}`,
      }),
      broker.app.inject({ method: 'GET', url: '/readyz' }),
    ])
    for (const [name, response] of [
      ['obtain-token', token],
      ['operator API', api],
    ] as const) {
      expect(response.statusCode, `${name}: ${response.body}`).toBe(503)
      expect(response.json().error.code, name).toBe('store_unavailable')
      expect(Number(response.headers['retry-after']), name).toBeGreaterThan(0)
    }
    expect(consent.statusCode, consent.body).toBe(503)
    expect(consent.headers['content-type']).toContain('text/html')
    expect(Number(consent.headers['retry-after'])).toBeGreaterThan(0)
    expect(readiness.statusCode).toBe(503)
    expect(readiness.json().error.code).toBe('not_ready')
    expect((await redisCommandErrors(broker)) - before).toBeGreaterThanOrEqual(4)
    const counted = await broker.app.metrics.obtainTokenRequests.get()
    expect(counted.values.find((v) => v.labels.outcome === 'store_unavailable')?.value).toBe(1)
  }, 30_000)
})

async function redisCommandErrors(broker: RunningBroker): Promise<number> {
  const metric = await broker.app.metrics.redisErrors.get()
  return metric.values.find((v) => v.labels.operation === 'command')?.value ?? 0
}
