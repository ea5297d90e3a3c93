// OpenAPI 3 document generated from the route schemas (@fastify/swagger), served at
// `/openapi.json`. It documents the machine-facing API only: obtain-token, the operator API
// (`/admin/api/*`), health and metrics. HTML pages (consent, callback, admin UI) and static assets
// are hidden here by URL, so a page added later can't leak into the document by accident. Each
// operation also gets the answers no route states itself (openapi-responses.ts).
import swagger from '@fastify/swagger'
import type { FastifyInstance, FastifySchema } from 'fastify'
import { withLayerResponses } from './openapi-responses.js'

/** Version of the documented API (not of the package): bumped when the wire contract changes. */
const API_VERSION = '1.1.0'

const DOCUMENTED = [/^\/obtain-token$/, /^\/admin\/api(\/|$)/, /^\/healthz$/, /^\/readyz$/, /^\/metrics$/]

export function isDocumentedUrl(url: string): boolean {
  return DOCUMENTED.some((pattern) => pattern.test(url))
}

/**
 * The machine-facing paths: the documented API and the document itself. Their errors (a wrong
 * method, an unknown path) always answer one line of JSON, whatever `Accept` says.
 */
export function isApiPath(path: string): boolean {
  return (
    path === '/openapi.json' ||
    // Everything under the operator API answers JSON, its unknown paths too.
    path === '/admin/api' ||
    path.startsWith('/admin/api/') ||
    isDocumentedUrl(path.length > 1 ? path.replace(/\/$/, '') : path)
  )
}

/** Tags, summary and security of routes whose own schema doesn't say. */
function defaultsFor(url: string): FastifySchema {
  if (url === '/obtain-token') {
    return {
      tags: ['tokens'],
      summary: 'An access token for a registration (XSOAR MicrosoftApiModule protocol)',
      description:
        'The body carries the registration id and `encrypted_token`: AES-GCM under the registration Key of ' +
        '`"<unix seconds>:<Token or last refresh_token>"`. Errors are one-line JSON bodies.',
    }
  }
  if (url.startsWith('/admin/api')) return { tags: ['operators'], security: [{ operatorToken: [] }] }
  return { tags: ['operations'] }
}

/**
 * Registers the generator and `GET /openapi.json`. Call before any route is registered: the
 * generator collects routes as they are added.
 */
export async function registerOpenApi(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'consent-broker',
        description:
          'Token endpoint for integrations (obtain-token) and the operator API of the consent broker. ' +
          'The operator API refuses (400 `invalid_request`) a query parameter or body field an endpoint ' +
          'does not take, and a body sent to an endpoint that takes none (`{}` aside); obtain-token ' +
          'ignores body fields it does not know.',
        version: API_VERSION,
      },
      servers: [{ url: app.config.publicUrl }],
      tags: [
        { name: 'tokens', description: 'Access tokens for integrations' },
        { name: 'operators', description: 'Operator API (Authorization: Bearer <operator token>)' },
        { name: 'webhooks', description: 'Webhook endpoints and deliveries (operator token)' },
        { name: 'operations', description: 'Health and metrics' },
      ],
      components: {
        securitySchemes: {
          operatorToken: {
            type: 'http',
            scheme: 'bearer',
            description: 'An operator token from OPERATOR_TOKENS / OPERATOR_TOKEN_HASHES',
          },
        },
      },
    },
    transform: ({ schema, url, route }) => {
      const base: FastifySchema = schema ?? {}
      const hidden = !isDocumentedUrl(url) || (route.config as { html?: boolean } | undefined)?.html === true
      if (hidden) return { schema: { ...base, hide: true }, url }
      const documented: FastifySchema = { ...defaultsFor(url), ...base }
      const response = withLayerResponses(documented.response as Record<string, unknown> | undefined, {
        method: route.method,
        url,
        ...(documented.security === undefined ? {} : { security: documented.security }),
        connectionCap: app.config.http.maxConnectionsPerIp > 0,
      })
      return { schema: { ...documented, response }, url }
    },
  })

  app.get(
    '/openapi.json',
    {
      schema: {
        hide: true,
        response: { 200: { type: 'object', additionalProperties: true } },
      },
    },
    async (_request, reply) => {
      reply.header('cache-control', 'no-cache')
      return app.swagger()
    },
  )
}
