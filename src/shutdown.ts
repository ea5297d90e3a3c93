// Draining on shutdown, in two steps so no request is lost.
// 1. `beginDrain()` (on SIGTERM): /readyz answers 503 so load balancers stop sending new requests,
//    while the instance still accepts and answers everything; every response now says
//    `Connection: close`, so keep-alive connections end after their current request instead of
//    being cut later.
// 2. `app.close()` after SHUTDOWN_DRAIN_MS: stops accepting, closes the connections idle at that
//    moment and waits for every other one to end. A request that still arrives on an open
//    connection is answered normally (never a 503: `return503OnClosing` is off), with
//    `Connection: close`, and Node closes the socket once it is written.
import type { FastifyInstance } from 'fastify'

/** The app's shutdown state: `draining` from the signal on, `closing` once app.close() began. */
export interface Drain {
  readonly draining: boolean
  /** Marks the instance unready (SIGTERM); requests are still served. */
  begin(): void
}

/** Call in buildApp before any route is registered (hooks reach the routes registered after). */
export function closeConnectionsWhileClosing(app: FastifyInstance): Drain {
  let draining = false
  app.addHook('preClose', async () => {
    draining = true
  })
  app.addHook('onSend', async (request, reply, payload) => {
    if (draining && request.raw.httpVersionMajor === 1) reply.header('connection', 'close')
    return payload
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
