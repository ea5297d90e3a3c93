// A benchmark target, forked by bench/obtain-token.ts so both targets run alone in their own process
// with the same Node flags and logger level:
//   bare    – Fastify with the broker's logger (createLogger) and one POST JSON route (body and response
//             schemas, an answer of the size of a token response): the framework's floor
//   broker  – the real broker (buildApp, Redis store, Entra identity provider at the emulator)
// The parent sends { mode, env } over IPC and gets { port } back.

import Fastify from 'fastify'
import { buildApp } from '../src/app.js'
import { type Env, loadConfig } from '../src/config.js'
import { createEntraIdentityProvider } from '../src/entra/identity-provider.js'
import { createLogger } from '../src/logger.js'
import { createStoreFromConfig } from '../src/store/index.js'

interface Start {
  mode: 'bare' | 'broker'
  env: Env
  logLevel: string
}

async function start({ mode, env, logLevel }: Start): Promise<number> {
  // Both targets log through the same logger (src/logger.ts) to the same place (stdout, discarded by the parent).
  const logger = createLogger(logLevel)
  if (mode === 'bare') {
    const app = Fastify({ loggerInstance: logger, disableRequestLogging: true, bodyLimit: 16 * 1024 })
    const token = `eyJ${'x'.repeat(1400)}`
    app.post(
      '/json',
      {
        schema: {
          body: {
            type: 'object',
            required: ['app_name', 'registration_id', 'encrypted_token'],
            properties: {
              app_name: { type: 'string' },
              registration_id: { type: 'string' },
              encrypted_token: { type: 'string' },
              scope: { type: ['string', 'null'] },
              resource: { type: ['string', 'null'] },
            },
          },
          response: {
            200: {
              type: 'object',
              properties: {
                access_token: { type: 'string' },
                token_type: { type: 'string' },
                expires_in: { type: 'integer' },
                scope: { type: 'string' },
                refresh_token: { type: 'string' },
              },
            },
          },
        },
      },
      async (request, reply) => {
        reply.header('cache-control', 'no-store')
        const body = request.body as { registration_id: string }
        return {
          access_token: token,
          token_type: 'Bearer',
          expires_in: 3599,
          scope: 'https://graph.microsoft.com/.default',
          refresh_token: body.registration_id,
        }
      },
    )
    await app.listen({ port: 0, host: '127.0.0.1' })
    return (app.server.address() as { port: number }).port
  }
  const config = loadConfig({ ...env, LOG_LEVEL: logLevel })
  // The store exactly as main.ts builds it (connection settings, auto-pipelining included).
  const store = createStoreFromConfig(config)
  const idp = createEntraIdentityProvider(config)
  const app = await buildApp(config, { store, idp, logger })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return (app.server.address() as { port: number }).port
}

// A normal exit (so `--cpu-prof` writes its profile) on SIGTERM.
process.once('SIGTERM', () => process.exit(0))

process.once('message', (message: Start) => {
  start(message).then(
    (port) => process.send?.({ port }),
    (error: unknown) => {
      console.error(error)
      process.exit(1)
    },
  )
})
