// Draining on shutdown. `app.close()` stops accepting and closes the connections idle at that
// moment, then waits for every other connection to end. A keep-alive connection that was busy
// when the shutdown began would stay open after its response (clients and load balancers keep
// them for minutes) and hold the process until the shutdown timeout kills it: so every response
// sent while closing says `Connection: close`, and Node closes the socket once it is written.
import type { FastifyInstance } from 'fastify'

/** Call in buildApp before any route is registered (hooks reach the routes registered after). */
export function closeConnectionsWhileClosing(app: FastifyInstance): void {
  let closing = false
  app.addHook('preClose', async () => {
    closing = true
  })
  app.addHook('onSend', async (request, reply, payload) => {
    if (closing && request.raw.httpVersionMajor === 1) reply.header('connection', 'close')
    return payload
  })
}
