// Test and demo hooks that change an emulated app's credentials at run time, as an operator does
// in the Azure portal (Certificates & secrets, Federated credentials):
//   GET  /_emulator/clients/:clientId/credentials         what the client holds (no secret values)
//   POST /_emulator/clients/:clientId/credentials         add one: {secret, expiresAt?} |
//                                                         {certificate: PEM} | {federated: {…}}
//   POST /_emulator/clients/:clientId/credentials/remove  remove one: {secret} | {thumbprint} |
//                                                         {federated: name}
import type { FastifyInstance } from 'fastify'
import type { CredentialChange, CredentialRemoval } from './client-credentials.js'
import type { EmulatorState } from './state.js'

export function registerCredentialHooks(app: FastifyInstance, state: EmulatorState): void {
  const clientOf = (params: unknown) => (params as { clientId: string }).clientId

  app.get('/_emulator/clients/:clientId/credentials', async (request, reply) => {
    try {
      return state.credentials.describe(clientOf(request.params))
    } catch {
      return reply.code(404).send({ error: 'client not found' })
    }
  })

  app.post('/_emulator/clients/:clientId/credentials', async (request, reply) => {
    try {
      return state.credentials.add(clientOf(request.params), (request.body ?? {}) as CredentialChange)
    } catch (error) {
      const status = error instanceof RangeError ? 404 : 400
      return reply.code(status).send({ error: (error as Error).message })
    }
  })

  app.post('/_emulator/clients/:clientId/credentials/remove', async (request, reply) => {
    try {
      return {
        removed: state.credentials.remove(
          clientOf(request.params),
          (request.body ?? {}) as CredentialRemoval,
        ),
      }
    } catch (error) {
      return reply.code(404).send({ error: (error as Error).message })
    }
  })
}
