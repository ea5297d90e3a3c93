// The two static assets every page uses, served from memory and same-origin (the CSP allows
// scripts and styles from 'self' only, never inline).
import type { FastifyInstance } from 'fastify'
import { APP_CSS, APP_JS } from '../views/assets.js'

const ASSETS: Record<string, { type: string; body: string }> = {
  'app.css': { type: 'text/css; charset=utf-8', body: APP_CSS },
  'app.js': { type: 'text/javascript; charset=utf-8', body: APP_JS },
}

/**
 * One route per asset, so any other `/static/…` path is the catalogue's 404 `not_found` (a schema
 * enum on a `:file` parameter answered 400 "must be equal to one of the allowed values").
 */
export async function staticRoutes(app: FastifyInstance): Promise<void> {
  for (const [file, asset] of Object.entries(ASSETS)) {
    app.get(
      `/static/${file}`,
      { schema: { response: { 200: { type: 'string' } } } },
      async (_request, reply) =>
        reply.type(asset.type).header('cache-control', 'public, max-age=3600').send(asset.body),
    )
  }
}
