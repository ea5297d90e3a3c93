// Everything under /admin: the operator API (/admin/api, bearer token) and the console (/admin,
// session cookie). Both drive the app's one key-rotation runner (app.services; the app pauses it when
// it closes).
import type { FastifyInstance } from 'fastify'
import { adminApiRoutes } from './api.js'
import { adminConsoleRoutes } from './console.js'

export async function adminRoutes(app: FastifyInstance): Promise<void> {
  const { keyRotation } = app.services
  await app.register(adminApiRoutes, { keyRotation })
  await app.register(adminConsoleRoutes, { keyRotation })
}
