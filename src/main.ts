// The process: configuration, logger, listen, graceful shutdown. Nothing else.
import closeWithGrace from 'close-with-grace'
import { buildApp } from './app.js'
import { ConfigError, loadConfigFromProcess } from './config.js'
import { createEntraIdentityProvider } from './entra/identity-provider.js'
import { createLogger } from './logger.js'
import type { Metrics } from './metrics.js'
import { buildMetricsServer } from './routes/metrics.js'
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
  const logger = createLogger(config.logLevel)
  if (config.redis === undefined) {
    logger.warn(
      'USING THE IN-MEMORY STORE (UNSAFE_MEMORY_STORE=true): registrations vanish on restart and are not shared between instances. Demo only.',
    )
  }
  // The store connects before the app (and its metrics) exist; errors are counted once they do.
  let metrics: Metrics | undefined
  const store = createStoreFromConfig(config, {
    onRedisError: (error) => {
      metrics?.redisErrors.inc({ operation: 'connection' })
      logger.warn({ redisError: error.message }, 'redis connection error (reconnecting)')
    },
  })
  const idp = createEntraIdentityProvider(config)
  const app = await buildApp(config, { store, idp, logger })
  metrics = app.metrics
  // Optional scrape listener without authentication (METRICS_PORT); never publish it.
  const metricsServer =
    config.metricsPort === undefined ? undefined : buildMetricsServer(app.metrics.registry, logger)

  closeWithGrace({ delay: config.shutdownTimeoutMs, logger }, async ({ signal, err }) => {
    if (err) logger.error({ err }, 'shutting down after an error')
    else logger.info({ signal }, 'shutting down: finishing in-flight requests')
    // Stops accepting, waits for in-flight requests, runs every plugin's onClose (locks released).
    await Promise.all([app.close(), metricsServer?.close()])
    await store.close()
    logger.info('shutdown complete')
  })

  await app.listen({ host: config.host, port: config.port })
  if (metricsServer !== undefined) {
    await metricsServer.listen({ host: config.host, port: config.metricsPort })
  }
  logger.info({ publicUrl: config.publicUrl, apps: config.apps.map((a) => a.slug) }, 'consent-broker ready')
}

main().catch((error: unknown) => {
  console.error('consent-broker: failed to start', error)
  process.exit(1)
})
