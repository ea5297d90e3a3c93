// The two static assets every page uses, served from memory and same-origin (the CSP allows
// scripts and styles from 'self' only, never inline).
import type { FastifyInstance } from 'fastify'
import { APP_CSS, APP_JS } from '../views/assets.js'

const ASSETS: Record<string, { type: string; body: string }> = {
  'app.css': { type: 'text/css; charset=utf-8', body: APP_CSS },
  'app.js': { type: 'text/javascript; charset=utf-8', body: APP_JS },
}

export async function staticRoutes(app: FastifyInstance): Promise<void> {
  app.get<{ Params: { file: string } }>(
    '/static/:file',
    {
      schema: {
        params: {
          type: 'object',
          required: ['file'],
          properties: { file: { type: 'string', enum: Object.keys(ASSETS) } },
        },
        response: { 200: { type: 'string' } },
      },
    },
    async (request, reply) => {
      const asset = ASSETS[request.params.file]!
      return reply.type(asset.type).header('cache-control', 'public, max-age=3600').send(asset.body)
    },
  )
}
