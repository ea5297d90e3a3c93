// The process: configuration, logger, listen, graceful shutdown. Nothing else (the wiring of store,
// identity provider, app and metrics listener is broker.ts, shared with `npm run demo`).
import closeWithGrace from 'close-with-grace'
import { createBroker } from './broker.js'
import { ConfigError, loadConfigFromProcess, readAppsFileFromProcess } from './config.js'
import { createLogger } from './logger.js'

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
  const broker = await createBroker(config, logger, readAppsFileFromProcess)
  // SIGHUP re-reads the apps file and the files it names (credential rotation without a restart).
  process.on('SIGHUP', () => {
    broker.reloadApps('SIGHUP')
  })

  closeWithGrace({ delay: config.shutdownTimeoutMs, logger }, async ({ signal, err }) => {
    if (err) logger.error({ err }, 'shutting down after an error')
    else logger.info({ signal }, 'shutting down: unready, draining for SHUTDOWN_DRAIN_MS')
    // Unready while still serving, so load balancers move the traffic away first (not on a crash).
    if (!err) await broker.drain(config.shutdownDrainMs)
    logger.info('shutting down: finishing in-flight requests')
    // Stops accepting, waits for in-flight requests, runs every plugin's onClose (locks released).
    await broker.close()
    logger.info('shutdown complete')
  })

  await broker.listen()
  logger.info({ publicUrl: config.publicUrl, apps: config.apps.map((a) => a.slug) }, 'consent-broker ready')
}

main().catch((error: unknown) => {
  console.error('consent-broker: failed to start', error)
  process.exit(1)
})
