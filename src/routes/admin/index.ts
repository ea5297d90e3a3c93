// Everything under /admin: the operator API (/admin/api, bearer token) and the console (/admin,
// session cookie). One key-rotation runner per app instance, stopped when the app closes so a pass
// pauses cleanly at a batch boundary and the next start resumes it.
import type { FastifyInstance } from 'fastify'
import { KeyRotation } from '../../services/key-rotation.js'
import { adminApiRoutes } from './api.js'
import { adminConsoleRoutes } from './console.js'

export async function adminRoutes(app: FastifyInstance): Promise<void> {
  const keyRotation = new KeyRotation({
    store: app.store,
    keyRing: app.config.keyRing,
    log: app.log.child({ component: 'key-rotation' }),
    clock: app.clock,
  })
  app.addHook('onClose', async () => {
    await keyRotation.stop()
  })
  await app.register(adminApiRoutes, { keyRotation })
  await app.register(adminConsoleRoutes, { keyRotation })
}
