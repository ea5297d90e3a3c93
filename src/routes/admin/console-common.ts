// What every console page route shares: the route config and response schemas of an HTML page, the
// redirect of a page without a session, and the page's context (operator, CSRF token, the clock
// the page's relative times are measured from).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { OperatorIdentity } from '../../services/operator-auth.js'
import type { ConsoleContext } from '../../views/admin.js'
import type { SessionArea } from '../browser-session.js'

/** Route config of every console route: errors answer as an HTML page. */
export const html = { html: true }
/** The 200 of a console page. */
export const htmlPage = { 200: { type: 'string' } } as const
/** The 303 of a redirect. */
export const redirect = { 303: { type: 'null' } } as const
/** The error pages a console route may answer. */
export const errorPages = {
  400: { type: 'string' },
  401: { type: 'string' },
  403: { type: 'string' },
  404: { type: 'string' },
  429: { type: 'string' },
  500: { type: 'string' },
} as const

/** A query or form field matching `pattern`, or empty (a filter left blank). */
export const optional = (pattern: string) => ({
  type: 'string',
  pattern: `^(?:${pattern.replace(/^\^|\$$/g, '')})?$`,
})

/** The helpers of the console's page routes on one session area. */
export function consoleHelpers(app: FastifyInstance, area: SessionArea<OperatorIdentity>) {
  return {
    /** The page's context: who is signed in, the session's CSRF token, the server's clock. */
    contextOf: (request: FastifyRequest): ConsoleContext => {
      const { data } = area.of(request)
      return { operator: data.operator, csrf: data.csrf, now: app.clock() }
    },
    /** Pages (preHandler): without a session, go to the sign-in page. */
    requirePageSession: async (request: FastifyRequest, reply: FastifyReply) => {
      if (area.current(request) === undefined) return reply.redirect('/admin/sign-in', 303)
      return undefined
    },
    /** The signed-in operator as the actor of a change. */
    operatorActor: (request: FastifyRequest) => ({
      kind: 'operator' as const,
      name: area.of(request).data.operator,
    }),
  }
}
