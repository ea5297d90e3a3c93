// Draining on shutdown, in steps so no request is lost and no connection is reset.
// 1. `begin()` (on SIGTERM): /readyz answers 503 so load balancers stop sending new requests, while
//    the instance still accepts and answers everything; every response now says `Connection: close`,
//    so each keep-alive connection ends after its next request instead of being cut later.
// 2. `app.close()` after SHUTDOWN_DRAIN_MS (main.ts drains first on a signal, even for 0 ms): stops
//    accepting and waits for every connection to end.
//    Node's `server.close()` would also destroy every idle connection at once — including keep-alive
//    connections that carried no request during the drain, so were never told to close: a client
//    sending on one of them at that moment sees a reset. Instead those stay open for the grace
//    (`graceMs`): a request arriving on one is answered normally (never a 503:
//    `return503OnClosing` is off) with `Connection: close`, and Node closes the socket once the
//    answer is written. Only connections still idle when the grace ends are closed; the process
//    leaves as soon as none is left, without waiting for the rest of the grace.
import type { FastifyInstance } from 'fastify'

/** The app's shutdown state: `draining` from the signal on, `closing` once app.close() began. */
export interface Drain {
  readonly draining: boolean
  /** Marks the instance unready (SIGTERM); requests are still served. */
  begin(): void
}

/** How long idle connections never told to close are kept once the server stops accepting. */
export interface DrainOptions {
  graceMs: number
}

/**
 * The grace for idle connections after the drain: what SHUTDOWN_TIMEOUT_MS leaves once the drain,
 * the response deadline of a request arriving at its very end and a second of margin are taken.
 */
export function idleGraceMs(shutdown: {
  shutdownTimeoutMs: number
  shutdownDrainMs: number
  responseDeadlineMs: number
}): number {
  return Math.max(
    0,
    shutdown.shutdownTimeoutMs - shutdown.shutdownDrainMs - shutdown.responseDeadlineMs - 1_000,
  )
}

/** Call in buildApp before any route is registered (hooks reach the routes registered after). */
export function closeConnectionsWhileClosing(app: FastifyInstance, options: DrainOptions): Drain {
  let draining = false
  let closing = false
  let graceTimer: NodeJS.Timeout | undefined
  const server = app.server
  const closeIdleConnections = server.closeIdleConnections.bind(server)
  // Fastify's close calls server.close(), which calls this first: while closing it waits for the
  // grace. Connections told to close (answered during the drain) are closed by Node already.
  server.closeIdleConnections = () => {
    if (!closing) closeIdleConnections()
  }
  app.addHook('preClose', async () => {
    // Only a drained shutdown (the signal: begin() first) keeps idle connections for the grace; an
    // app closed without one (a test, an embedding program) closes them at once, as Node does.
    const drained = draining
    draining = true
    if (!drained) return
    closing = true
    graceTimer = setTimeout(() => {
      closing = false
      closeIdleConnections()
    }, options.graceMs)
    graceTimer.unref()
  })
  app.addHook('onClose', async () => {
    // Every connection has ended (the server's close waits for them): nothing left to close.
    if (graceTimer !== undefined) clearTimeout(graceTimer)
    closing = false
  })
  // A plain callback: an async hook would cost a promise and a microtask on every answer.
  app.addHook('onSend', (request, reply, payload, done) => {
    if (draining && request.raw.httpVersionMajor === 1) reply.header('connection', 'close')
    done(null, payload)
  })
  return {
    get draining() {
      return draining
    },
    begin() {
      draining = true
    },
  }
}
