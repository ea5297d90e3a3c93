// What the HTTP server does before any route sees a request: it caps the connections one address
// may hold open, and it answers, in the broker's own error shape and headers, the requests Node
// refuses by itself (one that did not arrive within REQUEST_TIMEOUT_MS, headers too large, bytes
// that are not HTTP, a CONNECT, which Node would close without a word). Those answers are written on the socket as they are: no route, no hook runs;
// each still gets its own request id (body, `X-Request-Id`, log line), as every routed answer does.
import { randomUUID } from 'node:crypto'
import { type Server, STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyBaseLogger } from 'fastify'
import {
  type BrokerError,
  connectNotServed,
  errorBody,
  headersTooLarge,
  malformedHttp,
  requestTimedOut,
  tooManyConnections,
} from './errors.js'

/** How long a refused socket may stay after its answer before it is destroyed. */
const REFUSED_LINGER_MS = 2_000

/**
 * The answer to a socket no route serves: the broker's JSON error body and headers, then close.
 * `requestId` goes in the body and in `X-Request-Id`, so support finds the answer's log line.
 */
export function rawErrorAnswer(
  error: BrokerError,
  headers: Readonly<Record<string, string>>,
  requestId: string,
): string {
  const body = JSON.stringify(errorBody(error, requestId))
  const lines = [
    `HTTP/1.1 ${error.statusCode} ${STATUS_CODES[error.statusCode] ?? 'Error'}`,
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
    `x-request-id: ${requestId}`,
    'cache-control: no-store',
    'content-type: application/json; charset=utf-8',
    ...(error.retryAfter === undefined ? [] : [`retry-after: ${Math.max(1, Math.ceil(error.retryAfter))}`]),
    `content-length: ${Buffer.byteLength(body)}`,
    'connection: close',
  ]
  return `${lines.join('\r\n')}\r\n\r\n${body}`
}

/** Writes `answer` and closes the socket, discarding what the client still sends for a moment. */
function answerAndClose(socket: Socket, answer: string): void {
  if (socket.destroyed) return
  // Reading on (and dropping) what arrives keeps the kernel from resetting the connection before
  // the client has read the answer; the timer ends a client that never closes its side.
  socket.on('data', () => {})
  socket.on('error', () => {})
  socket.end(answer)
  setTimeout(() => socket.destroy(), REFUSED_LINGER_MS).unref()
}

/** The address a connection is counted under: the socket's peer, IPv4-mapped IPv6 unwrapped. */
export function peerAddress(socket: Socket): string {
  const address = socket.remoteAddress ?? 'unknown'
  return address.startsWith('::ffff:') ? address.slice('::ffff:'.length) : address
}

export interface ConnectionCapOptions {
  /** Connections one peer address may hold open; 0 = no cap. */
  maxPerAddress: number
  /** The security headers every answer carries. */
  headers: Readonly<Record<string, string>>
  log: FastifyBaseLogger
}

/**
 * Caps open connections per peer address. A connection past the cap never reaches the HTTP parser:
 * it gets a 503 `too_many_connections` (Connection: close, Retry-After) and is closed. Counted on the
 * socket's peer — behind a proxy, that is the proxy (docs/deployment.md).
 */
export function capConnectionsPerAddress(server: Server, options: ConnectionCapOptions): void {
  if (options.maxPerAddress <= 0) return
  const open = new Map<string, number>()
  // Node's HTTP server hands each accepted socket to its 'connection' listeners (the parser is
  // attached there); a refused socket must not get that far.
  const listeners = server.listeners('connection') as Array<(socket: Socket) => void>
  server.removeAllListeners('connection')
  const refusal = tooManyConnections()
  let lastWarning = 0
  server.on('connection', (socket: Socket) => {
    const address = peerAddress(socket)
    const count = open.get(address) ?? 0
    if (count >= options.maxPerAddress) {
      // Built per refusal, each with its own id: one id shared by every refusal finds none of them.
      const requestId = randomUUID()
      // One warning per second at most: a flood must not become a log flood. The others go to
      // debug, so each refusal's id can still be found where debug is kept.
      const now = Date.now()
      const line = { reqId: requestId, ip: address, open: count }
      if (now - lastWarning >= 1000) {
        lastWarning = now
        options.log.warn(line, 'connection refused: too many from this address')
      } else {
        options.log.debug(line, 'connection refused: too many from this address')
      }
      answerAndClose(socket, rawErrorAnswer(refusal, options.headers, requestId))
      return
    }
    open.set(address, count + 1)
    socket.once('close', () => {
      const left = (open.get(address) ?? 1) - 1
      if (left <= 0) open.delete(address)
      else open.set(address, left)
    })
    for (const listener of listeners) listener.call(server, socket)
  })
}

/**
 * Node's `clientError`: the request timed out (REQUEST_TIMEOUT_MS), its headers were too large, or
 * the bytes were not HTTP. Answered in the broker's shape with its headers, then closed; logged at
 * info with the peer address and the answer's request id, never with what was sent.
 */
export function makeClientErrorHandler(headers: Readonly<Record<string, string>>, log: FastifyBaseLogger) {
  return (error: Error & { code?: string }, socket: Socket): void => {
    if (error.code === 'ECONNRESET' || socket.destroyed) return
    const answer =
      error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? requestTimedOut()
        : error.code === 'HPE_HEADER_OVERFLOW'
          ? headersTooLarge()
          : malformedHttp()
    const requestId = randomUUID()
    log.info(
      { reqId: requestId, ip: peerAddress(socket), code: answer.code },
      'connection closed before a request was read',
    )
    if (!socket.writable) {
      socket.destroy()
      return
    }
    answerAndClose(socket, rawErrorAnswer(answer, headers, requestId))
  }
}

/**
 * Node hands a CONNECT request to the server's `connect` listeners and, with none, closes the
 * socket without an answer. The broker is no proxy: it answers 400 in its own shape, then closes.
 */
export function answerConnectRequests(
  server: Server,
  headers: Readonly<Record<string, string>>,
  log: FastifyBaseLogger,
): void {
  const refusal = connectNotServed()
  server.on('connect', (_request: unknown, socket: Socket) => {
    const requestId = randomUUID()
    // The target (host:port) is the caller's text: not logged.
    log.info({ reqId: requestId, ip: peerAddress(socket), code: refusal.code }, 'CONNECT refused')
    answerAndClose(socket, rawErrorAnswer(refusal, headers, requestId))
  })
}
