// The configuration's front door and the only place that reads the environment: everything is
// validated once at start-up into one frozen Config, and every problem is reported by name at once.
//   config/env.ts        the environment's variables → Config (loadConfig)
//   config/apps-file.ts  APPS_FILE → the hosted apps, and lookups on them (findApp, resolveApp …)
//   config/credentials.ts an app registration's credentials (secret, certificate, federated)
//   config/types.ts      Config's shape and ConfigError
import { loadConfig, readAppsFile } from './config/env.js'
import type { AppConfig, Config } from './config/types.js'

export { appClouds, findApp, type ResolvedApp, resolveApp } from './config/apps-file.js'
export { type LoadConfigOptions, loadConfig, readAppsFile } from './config/env.js'
export {
  type AppCloudConfig,
  type AppConfig,
  type Config,
  ConfigError,
  type Env,
  LOG_LEVELS,
  type LogLevel,
  type OperatorToken,
  type Permission,
  type RedisConfig,
} from './config/types.js'

/** The Config of this process's environment, read here and nowhere else; throws ConfigError. */
export function loadConfigFromProcess(): Config {
  return loadConfig(process.env)
}

/** The apps file of this process's environment, read again (SIGHUP, a change on disk). */
export function readAppsFileFromProcess(): { apps: AppConfig[]; problems: string[]; files: string[] } {
  return readAppsFile(process.env)
}
