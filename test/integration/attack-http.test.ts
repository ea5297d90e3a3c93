// The HTTP server tried the way an attacker would, over raw sockets against a listening broker on
// real Redis: bodies trickled a byte every 5 s, headers never finished, connections past the
// per-address cap, and the answers Fastify and Node give by themselves (414, 404, 405, 413, 415,
// parser errors, 408, 431) — each must carry the broker's headers and error shape, never the path,
// and those written on the socket their own request id (header, body and log line).

import type { AddressInfo } from 'node:net'
import { connect, type Socket } from 'node:net'
import type { FastifyBaseLogger } from 'fastify'
import { afterEach, describe, expect, inject, it } from 'vitest'
import { type RunningBroker, startBroker } from '../support/broker.js'
import { useEmulator } from '../support/emulator.js'
import { memoryLogger } from '../support/log-capture.js'

const emulator = useEmulator()
const running: RunningBroker[] = []
const sockets: Socket[] = []

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy()
  for (const broker of running.splice(0)) await broker.close()
})

async function listening(
  env: Record<string, string>,
  logger?: FastifyBaseLogger,
): Promise<{ broker: RunningBroker; port: number }> {
  const broker = await startBroker({
    authorityUrl: emulator.url,
    redisUrl: inject('redisUrl'),
    env,
    ...(logger === undefined ? {} : { logger }),
  })
  running.push(broker)
  await broker.app.listen({ host: '127.0.0.1', port: 0 })
  return { broker, port: (broker.app.server.address() as AddressInfo).port }
}

interface RawConnection {
  socket: Socket
  /** Everything the broker wrote. */
  received(): string
  /** Resolves with the ms since connect when the broker closed the connection. */
  closed: Promise<number>
}

function open(port: number): Promise<RawConnection> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port })
    sockets.push(socket)
    let data = ''
    const startedAt = Date.now()
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => {
      data += chunk
    })
    socket.on('error', () => {})
    const closed = new Promise<number>((done) => socket.once('close', () => done(Date.now() - startedAt)))
    socket.once('connect', () => resolve({ socket, received: () => data, closed }))
    socket.once('error', reject)
  })
}

/** The header block of a raw answer as lower-case name → value. */
function headersOf(raw: string): Map<string, string> {
  const head = raw.slice(0, raw.indexOf('\r\n\r\n'))
  const map = new Map<string, string>()
  for (const line of head.split('\r\n').slice(1)) {
    const colon = line.indexOf(':')
    map.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim())
  }
  return map
}

function expectBrokerHeaders(headers: Map<string, string> | Record<string, unknown>, what: string): void {
  const get = (name: string) => (headers instanceof Map ? headers.get(name) : headers[name])
  expect(get('x-frame-options'), what).toBe('DENY')
  expect(String(get('content-security-policy')), what).toContain("frame-ancestors 'none'")
  expect(get('x-content-type-options'), what).toBe('nosniff')
  expect(get('referrer-policy'), what).toBe('no-referrer')
  expect(get('cache-control'), what).toBe('no-store')
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe('bounded request time', () => {
  it('cuts off 50 trickling bodies and unfinished headers within REQUEST_TIMEOUT_MS while others are served', async () => {
    const LIMIT_MS = 3000
    const { port } = await listening({ REQUEST_TIMEOUT_MS: String(LIMIT_MS), MAX_CONNECTIONS_PER_IP: '500' })
    const routes = [
      ['POST', '/obtain-token', 'application/json'],
      ['POST', '/ms-graph-mail/start', 'application/x-www-form-urlencoded'],
      ['POST', '/ms-graph-mail/manage/sign-in', 'application/x-www-form-urlencoded'],
      ['POST', '/admin/sign-in', 'application/x-www-form-urlencoded'],
      ['POST', '/ms-graph-mail/manage/sign-out', 'application/x-www-form-urlencoded'],
    ] as const
    const slow: Array<{ connection: RawConnection; kind: string }> = []
    const timers: NodeJS.Timeout[] = []
    for (let i = 0; i < 50; i++) {
      const [method, path, type] = routes[i % routes.length]!
      const connection = await open(port)
      connection.socket.write(
        `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: ${type}\r\nContent-Length: 1000\r\n\r\nx`,
      )
      // One more byte every 5 s, for as long as the broker keeps the connection.
      timers.push(setInterval(() => connection.socket.writable && connection.socket.write('x'), 5000))
      slow.push({ connection, kind: `trickled body ${path}` })
    }
    for (let i = 0; i < 10; i++) {
      const connection = await open(port)
      connection.socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ')
      timers.push(setInterval(() => connection.socket.writable && connection.socket.write('a'), 1000))
      slow.push({ connection, kind: 'unfinished headers' })
    }
    for (let i = 0; i < 5; i++) slow.push({ connection: await open(port), kind: 'nothing sent' })

    // Meanwhile a legitimate client keeps being answered: while every slow connection is still
    // open, and on until the last one is cut off.
    let slowOpen = slow.length
    for (const { connection } of slow) void connection.closed.then(() => (slowOpen -= 1))
    const first = await fetch(`http://127.0.0.1:${port}/healthz`)
    await first.arrayBuffer()
    expect({ status: first.status, slowOpen }).toEqual({ status: 200, slowOpen: slow.length })
    const served: number[] = []
    let stop = false
    const legit = (async () => {
      while (!stop) {
        const response = await fetch(`http://127.0.0.1:${port}/healthz`)
        served.push(response.status)
        await response.arrayBuffer()
        await sleep(200)
      }
    })()

    const closedAfter = await Promise.all(slow.map(({ connection }) => connection.closed))
    stop = true
    await legit
    for (const timer of timers) clearInterval(timer)

    for (const [i, { kind, connection }] of slow.entries()) {
      // Within the limit plus the server's checking interval (LIMIT/10) and some scheduling slack.
      expect(closedAfter[i], kind).toBeLessThan(LIMIT_MS + 1500)
      const answer = connection.received()
      if (kind === 'nothing sent') continue
      // Every request that did not arrive in time is answered 408 in the broker's shape.
      expect(closedAfter[i], kind).toBeGreaterThanOrEqual(LIMIT_MS - 500)
      expect(answer.split('\r\n')[0], kind).toBe('HTTP/1.1 408 Request Timeout')
      expectBrokerHeaders(headersOf(answer), kind)
      const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as { error: { code: string } }
      expect(body.error.code, kind).toBe('request_timeout')
    }
    expect(served.length).toBeGreaterThan(0)
    expect(served.every((status) => status === 200)).toBe(true)
  })
})

describe('connections per address', () => {
  it('answers 503 too_many_connections with Connection: close past MAX_CONNECTIONS_PER_IP, then serves again', async () => {
    const { port } = await listening({ MAX_CONNECTIONS_PER_IP: '5' })
    const held: RawConnection[] = []
    for (let i = 0; i < 5; i++) held.push(await open(port))
    // The held connections are real ones: a request on one is served.
    held[0]!.socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
    await expect.poll(() => held[0]!.received()).toContain('"status":"ok"')

    const extra = await open(port)
    extra.socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
    await extra.closed
    const answer = extra.received()
    expect(answer.split('\r\n')[0]).toBe('HTTP/1.1 503 Service Unavailable')
    const headers = headersOf(answer)
    expect(headers.get('connection')).toBe('close')
    expect(headers.get('retry-after')).toBe('1')
    expectBrokerHeaders(headers, 'refused connection')
    const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as { error: { code: string } }
    expect(body.error.code).toBe('too_many_connections')
    expect(answer).not.toContain('"status":"ok"')

    // A held connection closes: the address may open one again.
    held[4]!.socket.destroy()
    await held[4]!.closed
    await expect
      .poll(async () => {
        const again = await open(port)
        again.socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n')
        await again.closed
        return again.received().split('\r\n')[0]
      })
      .toBe('HTTP/1.1 200 OK')
  })
})

describe('answers the framework gives by itself', () => {
  const MARKER = 'zq7marker'
  const OPERATOR = `ops-${'x'.repeat(30)}`

  it('414, 404, 405, 413, 415 and parser errors carry the broker’s headers and shape, never the path', async () => {
    const { port } = await listening({ OPERATOR_TOKENS: `ops:${OPERATOR}` })
    const base = `http://127.0.0.1:${port}`
    const cases: Array<{
      what: string
      status: number
      code: string
      page: boolean
      init: RequestInit
      path: string
    }> = [
      {
        what: '414 page path',
        status: 414,
        code: 'uri_too_long',
        page: true,
        path: `/${MARKER}${'a'.repeat(300)}`,
        init: {},
      },
      {
        what: '414 API path (authenticated first)',
        status: 401,
        code: 'unauthorized',
        page: false,
        path: `/admin/api/registrations/${MARKER}${'a'.repeat(300)}`,
        init: {},
      },
      {
        what: 'bad percent-encoding',
        status: 400,
        code: 'invalid_request',
        page: true,
        path: `/${MARKER}%zz`,
        init: {},
      },
      { what: '404 page', status: 404, code: 'not_found', page: true, path: `/${MARKER}/x`, init: {} },
      {
        what: '404 API',
        status: 404,
        code: 'not_found',
        page: false,
        path: `/admin/api/${MARKER}`,
        init: { headers: { authorization: `Bearer ${OPERATOR}` } },
      },
      {
        what: '405',
        status: 405,
        code: 'method_not_allowed',
        page: false,
        path: '/obtain-token',
        init: { method: 'PUT' },
      },
      {
        what: '413',
        status: 413,
        code: 'payload_too_large',
        page: false,
        path: '/obtain-token',
        init: {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: `{"x":"${'a'.repeat(20_000)}"}`,
        },
      },
      {
        what: '415 API',
        status: 415,
        code: 'unsupported_media_type',
        page: false,
        path: '/obtain-token',
        init: { method: 'POST', headers: { 'content-type': 'text/xml' }, body: '<x/>' },
      },
      {
        what: '415 page',
        status: 415,
        code: 'unsupported_media_type',
        page: true,
        path: '/ms-graph-mail/start',
        init: { method: 'POST', headers: { 'content-type': 'text/xml' }, body: '<x/>' },
      },
      {
        what: 'JSON parser error',
        status: 400,
        code: 'invalid_request',
        page: false,
        path: '/obtain-token',
        init: { method: 'POST', headers: { 'content-type': 'application/json' }, body: `{"${MARKER}":` },
      },
    ]
    for (const { what, status, code, page, init, path } of cases) {
      const response = await fetch(`${base}${path}`, init)
      const text = await response.text()
      expect(response.status, what).toBe(status)
      expectBrokerHeaders(Object.fromEntries(response.headers), what)
      expect(response.headers.get('x-request-id'), what).toMatch(/^[0-9a-f-]{36}$/)
      expect(text, what).not.toContain(MARKER)
      if (page) {
        expect(response.headers.get('content-type'), what).toBe('text/html; charset=utf-8')
        expect(text, what).toContain('<!doctype html>')
      } else {
        expect(response.headers.get('content-type'), what).toBe('application/json; charset=utf-8')
        expect(text.includes('\n'), what).toBe(false)
        expect((JSON.parse(text) as { error: { code: string } }).error.code, what).toBe(code)
      }
    }
  })

  it('Node’s own refusals (headers too large, not HTTP) are answered in the broker’s shape', async () => {
    const { port } = await listening({})
    const huge = await open(port)
    huge.socket.write(`GET /${MARKER} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`)
    await huge.closed
    expect(huge.received().split('\r\n')[0]).toBe('HTTP/1.1 431 Request Header Fields Too Large')
    expectBrokerHeaders(headersOf(huge.received()), '431')
    expect(huge.received()).toContain('"code":"headers_too_large"')

    const garbage = await open(port)
    garbage.socket.write(`\x16\x03\x01 ${MARKER} not http\r\n\r\n`)
    await garbage.closed
    expect(garbage.received().split('\r\n')[0]).toBe('HTTP/1.1 400 Bad Request')
    expectBrokerHeaders(headersOf(garbage.received()), '400')
    expect(garbage.received()).toContain('"code":"invalid_request"')
    expect(garbage.received()).not.toContain(MARKER)

    // CONNECT: Node would close the socket without a word (no `connect` listener).
    const tunnel = await open(port)
    tunnel.socket.write(`CONNECT ${MARKER}.example:443 HTTP/1.1\r\nHost: ${MARKER}.example:443\r\n\r\n`)
    await tunnel.closed
    expect(tunnel.received().split('\r\n')[0]).toBe('HTTP/1.1 400 Bad Request')
    expectBrokerHeaders(headersOf(tunnel.received()), 'CONNECT')
    expect(tunnel.received()).toContain('CONNECT is not served: this server is not a proxy')
    expect(headersOf(tunnel.received()).get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/)
    expect(tunnel.received()).not.toContain(MARKER)

    // HTTP/1.1 without Host: Node's own answer was an empty 400 without headers or request id.
    const hostless = await open(port)
    hostless.socket.write(`GET /${MARKER} HTTP/1.1\r\nConnection: close\r\n\r\n`)
    await hostless.closed
    const raw = hostless.received()
    expect(raw.split('\r\n')[0]).toBe('HTTP/1.1 400 Bad Request')
    expectBrokerHeaders(headersOf(raw), 'no Host')
    expect(headersOf(raw).get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/)
    expect(raw).toContain('an HTTP/1.1 request needs a Host header')
    expect(raw).not.toContain(MARKER)
    // HTTP/1.0 never required one: still served.
    const old = await open(port)
    old.socket.write('GET /healthz HTTP/1.0\r\n\r\n')
    await old.closed
    expect(old.received().split('\r\n')[0]).toBe('HTTP/1.1 200 OK')
  })
})

describe('answers written on the socket, outside Fastify', () => {
  /** Sends `request` on a new connection; the answer's X-Request-Id and body `request_id`. */
  async function refusedIds(port: number, request: string): Promise<{ header: string; body: string }> {
    const connection = await open(port)
    connection.socket.write(request)
    await connection.closed
    const raw = connection.received()
    const body = JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as { request_id: string }
    return { header: headersOf(raw).get('x-request-id') ?? '', body: body.request_id }
  }

  it('each carries its own request id, in X-Request-Id and the body, and it is logged', async () => {
    const { logger, lines } = memoryLogger('debug')
    const hugeHeaders = `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`
    const notHttp = '\x16\x03\x01 not http\r\n\r\n'
    const parsed = await listening({}, logger)
    const answers = [
      await refusedIds(parsed.port, hugeHeaders),
      await refusedIds(parsed.port, notHttp),
      await refusedIds(parsed.port, notHttp),
    ]
    // Past the connection cap: the first refusal of a second is a warning, the next one debug.
    const capped = await listening({ MAX_CONNECTIONS_PER_IP: '1' }, logger)
    await open(capped.port)
    const healthz = 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'
    answers.push(await refusedIds(capped.port, healthz), await refusedIds(capped.port, healthz))

    const logged = lines.map((line) => JSON.parse(line) as { reqId?: string; msg?: string })
    for (const { header, body } of answers) {
      expect(header).toMatch(/^[0-9a-f-]{36}$/)
      expect(body).toBe(header)
      const line = logged.find((entry) => entry.reqId === header)
      expect(line?.msg, header).toMatch(/^connection (closed before a request was read|refused)/)
    }
    expect(new Set(answers.map(({ header }) => header)).size).toBe(answers.length)
  })
})
