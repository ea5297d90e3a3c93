// The environment parsed into one Config: each variable checked and every problem collected by
// name, so an operator fixes them all in one go instead of one per restart. Takes the environment
// as an argument (config.ts passes process.env); the apps file is apps-file.ts's job. The typed
// reads are env-reader.ts's; Redis (env-redis.ts) and the secrets (env-secrets.ts) are read apart.
import { readFileSync } from 'node:fs'
import { CLOUD_NAMES, CLOUDS, type CloudName, resourceOf } from '../clouds.js'
import type { KeyRing } from '../crypto/envelope.js'
import { isGuid } from '../guid.js'
import { loadAppsFile } from './apps-file.js'
import { EnvReader, isLoopbackHost } from './env-reader.js'
import { readRedis } from './env-redis.js'
import { readKeyRing, readOperatorTokens } from './env-secrets.js'
import { type AppConfig, type Config, ConfigError, type Env, LOG_LEVELS, type LogLevel } from './types.js'

const GLOBAL_ADMIN = '62e90394-69f5-4237-9190-012177145e10'
const PRIVILEGED_ROLE_ADMIN = 'e8611ab8-c189-46e8-94e1-60213ab1f814'

/** Hooks `loadConfig` reads files and resolves paths through. */
export interface LoadConfigOptions {
  /** Reads the apps file and secret files; injectable for tests. */
  readFile?: (path: string) => string
  /** Directory a relative APPS_FILE is resolved against; default: the process's. */
  cwd?: string
}

/** The apps file as `env` names it, read again (a reload): the apps, every problem, the files it names. */
export function readAppsFile(
  env: Env,
  options: LoadConfigOptions = {},
): { apps: AppConfig[]; problems: string[]; files: string[] } {
  const readFile = options.readFile ?? ((path: string) => readFileSync(path, 'utf8'))
  const problems: string[] = []
  const files = new Set<string>()
  const file = env.APPS_FILE?.trim() || undefined
  const apps = loadAppsFile(file, env, readFile, options.cwd ?? process.cwd(), problems, files)
  // Frozen like the start-up configuration: the apps are shared by every request.
  return { apps: apps.map((app) => deepFreeze(app)), problems, files: [...files] }
}

/** Builds the validated Config from an environment; throws ConfigError listing every problem. */
export function loadConfig(env: Env, options: LoadConfigOptions = {}): Config {
  const readFile = options.readFile ?? ((path: string) => readFileSync(path, 'utf8'))
  const cwd = options.cwd ?? process.cwd()
  const read = new EnvReader(env)
  const { problems } = read

  const allowHttp = read.bool('UNSAFE_ALLOW_HTTP', false)
  const publicUrl = readPublicUrl(read, allowHttp)
  const host = read.str('HOST') ?? '0.0.0.0'
  const port = read.int('PORT', 3000, 0, 65535)
  const logLevel: LogLevel = read.oneOf('LOG_LEVEL', LOG_LEVELS, 'info')
  const redis = readRedis(read)
  const keyRing = readKeyRing(read)
  const cookieSecret = read.str('COOKIE_SECRET')
  if (cookieSecret === undefined) problems.push('COOKIE_SECRET: required (at least 32 random characters)')
  else if (cookieSecret.length < 32) problems.push('COOKIE_SECRET: must be at least 32 characters')
  const authorities = readCloudUrls(read, allowHttp, 'AUTHORITY_URL', (cloud) => CLOUDS[cloud].authority)
  // Tokens are still asked for the cloud's ARM identifier; only where the call goes can change.
  const resourceManagerUrls = readCloudUrls(read, allowHttp, 'RESOURCE_MANAGER_URL', (cloud) =>
    resourceOf(cloud, 'management'),
  )
  const adminRoleIds = (read.str('ADMIN_ROLE_IDS') ?? `${GLOBAL_ADMIN},${PRIVILEGED_ROLE_ADMIN}`)
    .split(',')
    .map((id) => id.trim())
    .filter(Boolean)
  for (const id of adminRoleIds)
    if (!isGuid(id)) problems.push(`ADMIN_ROLE_IDS: "${id}" is not a role template GUID`)
  const operatorTokens = readOperatorTokens(read)
  const appsFiles = new Set<string>()
  const apps = loadAppsFile(read.str('APPS_FILE'), env, readFile, cwd, problems, appsFiles)

  const metricsPortRaw = read.str('METRICS_PORT')
  const metricsPort = metricsPortRaw === undefined ? undefined : read.int('METRICS_PORT', 9464, 1, 65535)
  if (metricsPort !== undefined && metricsPort === port)
    problems.push('METRICS_PORT: must differ from PORT (the metrics listener is a separate server)')

  // Shutdown waits for in-flight requests, which the response deadline bounds: the default leaves
  // them that long plus a margin, and a shorter explicit setting would cut them off.
  // Shutdown first stays unready for the drain (load balancers notice), then waits for in-flight
  // requests.
  const responseDeadlineMs = read.int('RESPONSE_DEADLINE_MS', 15_000, 200, 120_000)
  const shutdownDrainMs = read.int('SHUTDOWN_DRAIN_MS', 5_000, 0, 120_000)
  const shutdownTimeoutMs = read.int(
    'SHUTDOWN_TIMEOUT_MS',
    shutdownDrainMs + responseDeadlineMs + 5_000,
    100,
    300_000,
  )
  if (shutdownTimeoutMs <= shutdownDrainMs + responseDeadlineMs)
    problems.push(
      'SHUTDOWN_TIMEOUT_MS: must be greater than RESPONSE_DEADLINE_MS plus SHUTDOWN_DRAIN_MS (the drain, then in-flight requests may take that long)',
    )

  const trustProxy = read.bool('TRUST_PROXY', false)
  const config: Config = {
    publicUrl,
    host,
    port,
    trustProxy,
    http: readHttpLimits(read, trustProxy),
    logLevel,
    redis,
    keyRing: keyRing as KeyRing,
    cookieSecret: cookieSecret ?? '',
    secureCookies: publicUrl.startsWith('https:'),
    apps,
    appsFiles: [...appsFiles],
    authorities,
    resourceManagerUrls,
    adminRoleIds,
    consent: {
      flowTtlMs: 10 * 60_000,
      proofBudgetMs: read.int('CONSENT_PROOF_BUDGET_MS', 60_000, 0, 300_000),
      rateLimitPerIp: read.int('CONSENT_RATE_LIMIT_PER_IP', 300, 1, 1_000_000),
      rateLimitWindowMs: read.int('CONSENT_RATE_LIMIT_WINDOW_SECONDS', 600, 1, 86_400) * 1000,
    },
    tokens: {
      maxSkewSeconds: read.int('OBTAIN_TOKEN_MAX_SKEW_SECONDS', 300, 1, 3600),
      refreshMarginSeconds: read.int('TOKEN_REFRESH_MARGIN_SECONDS', 300, 0, 3000),
      refreshAheadFraction: read.decimal('TOKEN_REFRESH_AHEAD_FRACTION', 0.5, 0, 0.95),
      upstreamRatePerApp: read.int('UPSTREAM_RATE_PER_APP', 20, 1, 10_000),
      upstreamTimeoutMs: read.int('UPSTREAM_TIMEOUT_MS', 10_000, 100, 60_000),
      responseDeadlineMs,
      keepAliveIdleMs: read.int('KEEPALIVE_IDLE_DAYS', 7, 1, 80) * 86_400_000,
      keepAliveIntervalMs: read.int('KEEPALIVE_INTERVAL_SECONDS', 3600, 1, 86_400) * 1000,
      rateLimitPerRegistration: read.int('RATE_LIMIT_PER_REGISTRATION', 600, 1, 1_000_000),
      rateLimitPerIp: read.int('RATE_LIMIT_PER_IP', 3000, 1, 1_000_000),
      rateLimitWindowMs: read.int('RATE_LIMIT_WINDOW_SECONDS', 60, 1, 3600) * 1000,
    },
    operatorTokens,
    metricsPort,
    registrationsGaugeIntervalMs: read.int('METRICS_REGISTRATIONS_INTERVAL_SECONDS', 60, 0, 86_400) * 1000,
    auditMaxLen: read.int('AUDIT_MAX_EVENTS', 100_000, 100, 100_000_000),
    shutdownDrainMs,
    shutdownTimeoutMs,
    webhooks: readWebhooks(read, allowHttp),
    credentials: {
      expiryWarningMs: read.int('CREDENTIAL_EXPIRY_WARNING_DAYS', 30, 1, 365) * 86_400_000,
      expiryUrgentMs: read.int('CREDENTIAL_EXPIRY_URGENT_DAYS', 7, 1, 365) * 86_400_000,
      expiryCheckMs: read.int('CREDENTIAL_EXPIRY_CHECK_SECONDS', 3600, 1, 86_400) * 1000,
      failingMs: read.int('CREDENTIAL_FAILING_SECONDS', 600, 10, 86_400) * 1000,
    },
  }
  if (config.credentials.expiryUrgentMs >= config.credentials.expiryWarningMs) {
    problems.push('CREDENTIAL_EXPIRY_URGENT_DAYS: must be less than CREDENTIAL_EXPIRY_WARNING_DAYS')
  }
  if (config.tokens.responseDeadlineMs <= config.tokens.upstreamTimeoutMs) {
    problems.push('RESPONSE_DEADLINE_MS: must be greater than UPSTREAM_TIMEOUT_MS')
  }
  if (problems.length > 0) throw new ConfigError(problems)
  return deepFreeze(config)
}

/** Webhook delivery: the SSRF switch, timeouts, the retry schedule (short settings are for tests). */
function readWebhooks(read: EnvReader, allowHttp: boolean): Config['webhooks'] {
  const timeoutMs = read.int('WEBHOOK_TIMEOUT_MS', 10_000, 100, 60_000)
  return {
    allowHttp,
    allowPrivateAddresses: read.bool('WEBHOOK_ALLOW_PRIVATE_ADDRESSES', false),
    timeoutMs,
    pollIntervalMs: read.int('WEBHOOK_POLL_INTERVAL_MS', 1000, 20, 60_000),
    retryBaseMs: read.int('WEBHOOK_RETRY_BASE_MS', 10_000, 10, 3_600_000),
    retryMaxIntervalMs: read.int('WEBHOOK_RETRY_MAX_INTERVAL_SECONDS', 3600, 1, 86_400) * 1000,
    retryForMs: read.int('WEBHOOK_RETRY_FOR_SECONDS', 27 * 3600, 1, 30 * 86_400) * 1000,
    // a lease outlives one attempt (timeout plus a margin), so a live instance is never overtaken
    leaseMs: timeoutMs + 5000,
    maxResponseBytes: 64 * 1024,
  }
}

/**
 * How long a request may take to arrive and how many connections one address may hold. Behind a
 * proxy (TRUST_PROXY) every connection comes from the proxy, so the per-address cap is off unless
 * set explicitly: the proxy limits its clients.
 */
function readHttpLimits(read: EnvReader, trustProxy: boolean): Config['http'] {
  return {
    requestTimeoutMs: read.int('REQUEST_TIMEOUT_MS', 30_000, 1_000, 600_000),
    keepAliveTimeoutMs: read.int('KEEP_ALIVE_TIMEOUT_MS', 72_000, 1_000, 600_000),
    maxConnectionsPerIp: read.int('MAX_CONNECTIONS_PER_IP', trustProxy ? 0 : 256, 0, 1_000_000),
  }
}

/** PUBLIC_URL without a trailing slash ('' when it is missing or unusable, with a problem). */
function readPublicUrl(read: EnvReader, allowHttp: boolean): string {
  const raw = read.str('PUBLIC_URL')
  if (raw === undefined) {
    read.problems.push(
      'PUBLIC_URL: required (the https origin users reach the broker at, e.g. https://consent.example.com)',
    )
    return ''
  }
  try {
    const url = new URL(raw)
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('not http(s)')
    if (url.search || url.hash || url.username || url.password)
      throw new Error('has query, fragment or credentials')
    if (url.protocol === 'http:' && !isLoopbackHost(url.hostname) && !allowHttp) {
      read.problems.push(
        'PUBLIC_URL: must be https (http is accepted only for loopback hosts or with UNSAFE_ALLOW_HTTP=true)',
      )
    }
    if (raw.includes('@')) throw new Error('contains "@" (the integration splits its ID on "@")')
    return url.href.replace(/\/+$/, '')
  } catch (error) {
    read.problems.push(`PUBLIC_URL: "${raw}" is not a usable URL (${(error as Error).message})`)
    return ''
  }
}

/**
 * A URL per cloud: `fallback(cloud)`, or the `<prefix>_<CLOUD>` override (https; http only for
 * loopback hosts or with UNSAFE_ALLOW_HTTP), no trailing slash.
 */
function readCloudUrls(
  read: EnvReader,
  allowHttp: boolean,
  prefix: string,
  fallback: (cloud: CloudName) => string,
): Record<CloudName, string> {
  const urls = {} as Record<CloudName, string>
  for (const cloud of CLOUD_NAMES) {
    const name = `${prefix}_${cloud.toUpperCase()}`
    const override = read.str(name)
    let value = fallback(cloud)
    if (override !== undefined) {
      try {
        const url = new URL(override)
        if (
          url.protocol !== 'https:' &&
          !(url.protocol === 'http:' && (isLoopbackHost(url.hostname) || allowHttp))
        ) {
          read.problems.push(
            `${name}: must be https (http only for loopback hosts or with UNSAFE_ALLOW_HTTP=true)`,
          )
        }
        value = url.href.replace(/\/+$/, '')
      } catch {
        read.problems.push(`${name}: "${override}" is not a URL`)
      }
    }
    urls[cloud] = value
  }
  return urls
}

/**
 * Freezes the configuration's own data: plain objects and arrays, all the way down. Instances of
 * classes (the KeyRing, a certificate's KeyObject) are left as they are: they keep private state
 * of their own, and Node caches a KeyObject's details on the object when first asked — a frozen one
 * throws, which on Node 22 broke every client assertion (jose asks for the details there).
 */
function deepFreeze<T>(value: T): T {
  if (!isPlainData(value) || Object.isFrozen(value)) return value
  Object.freeze(value)
  for (const child of Object.values(value as Record<string, unknown>)) deepFreeze(child)
  return value
}

function isPlainData(value: unknown): value is object {
  if (Array.isArray(value)) return true
  if (value === null || typeof value !== 'object') return false
  const prototype = Object.getPrototypeOf(value)
  return prototype === Object.prototype || prototype === null
}
