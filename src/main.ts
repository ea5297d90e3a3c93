// The process: configuration, logger, listen, graceful shutdown. Nothing else.
import closeWithGrace from 'close-with-grace'
import { pino } from 'pino'
import { buildApp } from './app.js'
import { ConfigError, loadConfigFromProcess } from './config.js'
import { createEntraIdentityProvider } from './entra/identity-provider.js'
import { loggerOptions } from './logger.js'
import { createStoreFromConfig } from './store/index.js'

async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfigFromProcess>
  try {
    config = loadConfigFromProcess()
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`consent-broker: ${error.message}`)
      process.exit(1)
    }
    throw error
  }
  const logger = pino(loggerOptions(config.logLevel))
  if (config.redis === undefined) {
    logger.warn(
      'USING THE IN-MEMORY STORE (UNSAFE_MEMORY_STORE=true): registrations vanish on restart and are not shared between instances. Demo only.',
    )
  }
  const store = createStoreFromConfig(config)
  const idp = createEntraIdentityProvider(config)
  const app = await buildApp(config, { store, idp, logger })

  closeWithGrace({ delay: config.shutdownTimeoutMs, logger }, async ({ signal, err }) => {
    if (err) logger.error({ err }, 'shutting down after an error')
    else logger.info({ signal }, 'shutting down: finishing in-flight requests')
    // Stops accepting, waits for in-flight requests, runs every plugin's onClose (locks released).
    await app.close()
    await store.close()
    logger.info('shutdown complete')
  })

  await app.listen({ host: config.host, port: config.port })
  logger.info({ publicUrl: config.publicUrl, apps: config.apps.map((a) => a.slug) }, 'consent-broker ready')
}

main().catch((error: unknown) => {
  console.error('consent-broker: failed to start', error)
  process.exit(1)
})
