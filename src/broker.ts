// The production wiring, shared by the process (main.ts) and `npm run demo`, so the demo is the
// production broker plus the emulator and nothing less: the store from the configuration with its
// Redis connection errors counted and logged, the Entra identity provider, the app, and the
// unauthenticated metrics listener when METRICS_PORT is set. The caller owns the process: it
// decides when to listen and when to close.
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import { buildApp } from './app.js'
import type { Config } from './config.js'
import { createEntraIdentityProvider } from './entra/identity-provider.js'
import type { Metrics } from './metrics.js'
import { buildMetricsServer } from './routes/metrics.js'
import { type AppsFileReader, AppsReload, type ReloadOutcome } from './services/apps-reload.js'
import { appCredentialsFor } from './services/create-services.js'
import { createStoreFromConfig } from './store/index.js'
import type { Store } from './store/types.js'

/** A broker built as production runs it: its app, store and optional metrics listener. */
export interface Broker {
  readonly app: FastifyInstance
  readonly store: Store
  /** The METRICS_PORT listener; undefined when METRICS_PORT is unset. */
  readonly metricsServer: FastifyInstance | undefined
  /** Reads the apps file again and applies its credentials when valid (SIGHUP; also on change on disk). */
  reloadApps(reason: string): ReloadOutcome
  /** Listens on HOST:PORT, then on HOST:METRICS_PORT when configured. */
  listen(): Promise<void>
  /**
   * Marks the instance unready (/readyz 503) and keeps serving for `ms`, so load balancers stop
   * sending before it stops accepting; responses meanwhile close their keep-alive connections.
   */
  drain(ms: number): Promise<void>
  /**
   * Stops accepting, waits for in-flight requests and runs every onClose hook (locks released) on
   * both listeners, then closes the store.
   */
  close(): Promise<void>
}

/**
 * Builds the broker as production runs it; listens on nothing yet. `readAppsFile` reads the apps
 * file again for a reload (main.ts: from the process's environment).
 */
export async function createBroker(
  config: Config,
  logger: FastifyBaseLogger,
  readAppsFile: AppsFileReader,
): Promise<Broker> {
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
  // One credential set for the identity provider and the app (console, metrics, reloads).
  const credentials = appCredentialsFor(config, store, logger, Date.now)
  const idp = createEntraIdentityProvider(config, { credentials })
  const app = await buildApp(config, { store, idp, logger, credentials })
  metrics = app.metrics
  const appsReload = new AppsReload({
    read: readAppsFile,
    credentials,
    startedWith: config.apps,
    files: config.appsFiles,
    log: logger.child({ component: 'apps-reload' }),
    expiryWarningMs: config.credentials.expiryWarningMs,
  })
  // Optional scrape listener without authentication (METRICS_PORT); never publish it.
  const metricsServer =
    config.metricsPort === undefined ? undefined : buildMetricsServer(app.metrics.registry, logger)

  return {
    app,
    store,
    metricsServer,
    reloadApps: (reason) => appsReload.reload(reason),
    async listen() {
      await app.listen({ host: config.host, port: config.port })
      appsReload.start()
      if (metricsServer !== undefined) {
        await metricsServer.listen({ host: config.host, port: config.metricsPort })
      }
    },
    async drain(ms) {
      app.drain.begin()
      if (ms > 0) await new Promise<void>((resolve) => setTimeout(resolve, ms))
    },
    async close() {
      appsReload.stop()
      await Promise.all([app.close(), metricsServer?.close()])
      await store.close()
    },
  }
}
