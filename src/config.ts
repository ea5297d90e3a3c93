// The only place that reads the environment. Everything is validated once at start-up into one
// frozen Config; every problem is collected and reported by name, so an operator fixes them all in
// one go instead of one per restart.
import { readFileSync } from 'node:fs'
import { isAbsolute, resolve } from 'node:path'
import { Ajv } from 'ajv'
import { CLOUD_NAMES, CLOUDS, type CloudName, expandResourceTemplate, isCloudName } from './clouds.js'
import type { ConsentKind } from './consent-kinds.js'
import { KeyRing, parseMasterKeys } from './crypto/envelope.js'
import { sha256Hex } from './crypto/sha256.js'

export interface Permission {
  readonly name: string
  readonly type: 'Application' | 'Delegated'
  readonly description: string
}

export interface AppCloudConfig {
  readonly clientId: string
  readonly clientSecret: string
}

export interface AppConfig {
  readonly slug: string
  readonly displayName: string
  readonly description: string
  readonly consent: ConsentKind
  readonly permissions: readonly Permission[]
  /** Scope template (`{graph}/.default`) used when a request names none; also the admin-consent scope. */
  readonly defaultScope: string
  /** Delegated: extra scopes requested at sign-in besides `openid profile offline_access`. */
  readonly consentScopes: readonly string[]
  /** Full scopes a request may ask for (templates), `graph` for the cloud's Graph `.default`. */
  readonly allowedScopes: readonly string[]
  /** Resource URLs a request may name (templates); each becomes `<resource>/.default`. */
  readonly allowedResources: readonly string[]
  /** Clouds offered, in display order, with their app registration. */
  readonly clouds: Readonly<Partial<Record<CloudName, AppCloudConfig>>>
}

export interface RedisConfig {
  readonly url?: string
  readonly sentinels?: ReadonlyArray<{ host: string; port: number }>
  readonly sentinelName?: string
  readonly sentinelPassword?: string
  readonly clusterNodes?: ReadonlyArray<{ host: string; port: number }>
  /** ACL user and password of the data nodes (Sentinel and Cluster; override those in REDIS_URL). */
  readonly username?: string
  readonly password?: string
  /** TLS to every node (implied by `rediss://`). */
  readonly tls?: boolean
  readonly keyPrefix: string
}

export interface OperatorToken {
  readonly name: string
  /** SHA-256 of the token, hex; tokens are compared by hash in constant time. */
  readonly sha256: string
}

export interface Config {
  readonly publicUrl: string
  readonly host: string
  readonly port: number
  readonly trustProxy: boolean
  readonly logLevel: string
  /** `undefined` = memory store (demo only; requires UNSAFE_MEMORY_STORE=true). */
  readonly redis: RedisConfig | undefined
  readonly keyRing: KeyRing
  readonly cookieSecret: string
  readonly secureCookies: boolean
  readonly apps: readonly AppConfig[]
  /** Authority base URL per cloud, overrides applied, no trailing slash. */
  readonly authorities: Readonly<Record<CloudName, string>>
  /** Directory role template ids allowed to grant tenant-wide consent. */
  readonly adminRoleIds: readonly string[]
  readonly consent: {
    readonly flowTtlMs: number
    readonly proofBudgetMs: number
    /** Consent starts and callbacks per client IP per window (shared by every instance). */
    readonly rateLimitPerIp: number
    readonly rateLimitWindowMs: number
  }
  readonly tokens: {
    readonly maxSkewSeconds: number
    readonly refreshMarginSeconds: number
    readonly upstreamTimeoutMs: number
    readonly responseDeadlineMs: number
    readonly keepAliveIdleMs: number
    readonly keepAliveIntervalMs: number
    readonly rateLimitPerRegistration: number
    readonly rateLimitPerIp: number
    readonly rateLimitWindowMs: number
  }
  readonly operatorTokens: readonly OperatorToken[]
  readonly metricsPort: number | undefined
  /** How long one count of registrations by status serves metric scrapes; 0 = count on every scrape. */
  readonly registrationsGaugeIntervalMs: number
  readonly auditMaxLen: number
  readonly shutdownTimeoutMs: number
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError'
  readonly problems: readonly string[]
  constructor(problems: readonly string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`)
    this.problems = problems
  }
}

const GLOBAL_ADMIN = '62e90394-69f5-4237-9190-012177145e10'
const PRIVILEGED_ROLE_ADMIN = 'e8611ab8-c189-46e8-94e1-60213ab1f814'
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export type Env = Readonly<Record<string, string | undefined>>

export interface LoadConfigOptions {
  /** Reads the apps file and secret files; injectable for tests. */
  readFile?: (path: string) => string
  cwd?: string
}

function isLoopbackHost(hostname: string): boolean {
  return hostname === '127.0.0.1' || hostname === 'localhost' || hostname === '[::1]' || hostname === '::1'
}

/** Builds the validated Config from an environment; throws ConfigError listing every problem. */
export function loadConfig(env: Env, options: LoadConfigOptions = {}): Config {
  const readFile = options.readFile ?? ((path: string) => readFileSync(path, 'utf8'))
  const cwd = options.cwd ?? process.cwd()
  const problems: string[] = []
  const str = (name: string): string | undefined => {
    const value = env[name]?.trim()
    return value === undefined || value === '' ? undefined : value
  }
  const bool = (name: string, fallback: boolean): boolean => {
    const value = str(name)
    if (value === undefined) return fallback
    if (/^(1|true|yes|on)$/i.test(value)) return true
    if (/^(0|false|no|off)$/i.test(value)) return false
    problems.push(`${name}: expected true or false, got "${value}"`)
    return fallback
  }
  const int = (name: string, fallback: number, min: number, max: number): number => {
    const value = str(name)
    if (value === undefined) return fallback
    const parsed = Number(value)
    if (!Number.isInteger(parsed) || parsed < min || parsed > max) {
      problems.push(`${name}: expected an integer from ${min} to ${max}, got "${value}"`)
      return fallback
    }
    return parsed
  }
  const hostPorts = (name: string): Array<{ host: string; port: number }> | undefined => {
    const value = str(name)
    if (value === undefined) return undefined
    const out: Array<{ host: string; port: number }> = []
    for (const entry of value
      .split(',')
      .map((e) => e.trim())
      .filter(Boolean)) {
      const match = /^(.+):(\d{1,5})$/.exec(entry)
      if (!match) {
        problems.push(`${name}: "${entry}" is not host:port`)
        continue
      }
      out.push({ host: match[1]!.replace(/^\[(.*)\]$/, '$1'), port: Number(match[2]) })
    }
    return out
  }

  // --- public URL, listener
  const allowHttp = bool('UNSAFE_ALLOW_HTTP', false)
  let publicUrl = ''
  const publicUrlRaw = str('PUBLIC_URL')
  if (publicUrlRaw === undefined) {
    problems.push(
      'PUBLIC_URL: required (the https origin users reach the broker at, e.g. https://consent.example.com)',
    )
  } else {
    try {
      const url = new URL(publicUrlRaw)
      if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('not http(s)')
      if (url.search || url.hash || url.username || url.password)
        throw new Error('has query, fragment or credentials')
      if (url.protocol === 'http:' && !isLoopbackHost(url.hostname) && !allowHttp) {
        problems.push(
          'PUBLIC_URL: must be https (http is accepted only for loopback hosts or with UNSAFE_ALLOW_HTTP=true)',
        )
      }
      if (publicUrlRaw.includes('@')) throw new Error('contains "@" (the integration splits its ID on "@")')
      publicUrl = url.href.replace(/\/+$/, '')
    } catch (error) {
      problems.push(`PUBLIC_URL: "${publicUrlRaw}" is not a usable URL (${(error as Error).message})`)
    }
  }
  const host = str('HOST') ?? '0.0.0.0'
  const port = int('PORT', 3000, 0, 65535)

  // --- storage
  let redis: RedisConfig | undefined
  const keyPrefix = str('REDIS_KEY_PREFIX') ?? 'cb:'
  const redisUrl = str('REDIS_URL')
  const sentinels = hostPorts('REDIS_SENTINELS')
  const clusterNodes = hostPorts('REDIS_CLUSTER_NODES')
  const topologies = [redisUrl, sentinels, clusterNodes].filter((t) => t !== undefined).length
  if (topologies > 1) {
    problems.push('REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES: set exactly one Redis topology')
  }
  if (redisUrl !== undefined) {
    try {
      const url = new URL(redisUrl)
      if (url.protocol !== 'redis:' && url.protocol !== 'rediss:')
        throw new Error('scheme must be redis: or rediss:')
    } catch (error) {
      problems.push(`REDIS_URL: not a redis:// or rediss:// URL (${(error as Error).message})`)
    }
    redis = { url: redisUrl, keyPrefix }
  } else if (sentinels !== undefined) {
    const sentinelName = str('REDIS_SENTINEL_NAME')
    if (sentinelName === undefined)
      problems.push('REDIS_SENTINEL_NAME: required with REDIS_SENTINELS (the master name)')
    const sentinelPassword = str('REDIS_SENTINEL_PASSWORD')
    redis = {
      sentinels,
      keyPrefix,
      ...(sentinelName === undefined ? {} : { sentinelName }),
      ...(sentinelPassword === undefined ? {} : { sentinelPassword }),
    }
  } else if (clusterNodes !== undefined) {
    redis = { clusterNodes, keyPrefix }
  } else if (!bool('UNSAFE_MEMORY_STORE', false)) {
    problems.push(
      'REDIS_URL: required (or REDIS_SENTINELS / REDIS_CLUSTER_NODES); the in-memory store is for the demo only (UNSAFE_MEMORY_STORE=true)',
    )
  }
  if (redis !== undefined) {
    const username = str('REDIS_USERNAME')
    const password = str('REDIS_PASSWORD')
    const tls = bool('REDIS_TLS', false)
    redis = {
      ...redis,
      ...(username === undefined ? {} : { username }),
      ...(password === undefined ? {} : { password }),
      ...(tls ? { tls } : {}),
    }
  }

  // --- secrets
  let keyRing: KeyRing | undefined
  const masterKeys = str('MASTER_KEYS')
  if (masterKeys === undefined) {
    problems.push('MASTER_KEYS: required ("id:base64-32-bytes", newest first, comma-separated)')
  } else {
    try {
      keyRing = new KeyRing(parseMasterKeys(masterKeys))
    } catch (error) {
      problems.push(`MASTER_KEYS: ${(error as Error).message}`)
    }
  }
  const cookieSecret = str('COOKIE_SECRET')
  if (cookieSecret === undefined) problems.push('COOKIE_SECRET: required (at least 32 random characters)')
  else if (cookieSecret.length < 32) problems.push('COOKIE_SECRET: must be at least 32 characters')

  // --- clouds
  const authorities = {} as Record<CloudName, string>
  for (const cloud of CLOUD_NAMES) {
    const name = `AUTHORITY_URL_${cloud.toUpperCase()}`
    const override = str(name)
    let value = CLOUDS[cloud].authority
    if (override !== undefined) {
      try {
        const url = new URL(override)
        if (
          url.protocol !== 'https:' &&
          !(url.protocol === 'http:' && (isLoopbackHost(url.hostname) || allowHttp))
        ) {
          problems.push(
            `${name}: must be https (http only for loopback hosts or with UNSAFE_ALLOW_HTTP=true)`,
          )
        }
        value = url.href.replace(/\/+$/, '')
      } catch {
        problems.push(`${name}: "${override}" is not a URL`)
      }
    }
    authorities[cloud] = value
  }
  const adminRoleIds = (str('ADMIN_ROLE_IDS') ?? `${GLOBAL_ADMIN},${PRIVILEGED_ROLE_ADMIN}`)
    .split(',')
    .map((id) => id.trim())
    .filter(Boolean)
  for (const id of adminRoleIds)
    if (!GUID.test(id)) problems.push(`ADMIN_ROLE_IDS: "${id}" is not a role template GUID`)

  // --- operators
  const operatorTokens: OperatorToken[] = []
  const seenOperators = new Set<string>()
  for (const [name, hashed] of [
    ['OPERATOR_TOKENS', false],
    ['OPERATOR_TOKEN_HASHES', true],
  ] as const) {
    for (const entry of (str(name) ?? '')
      .split(',')
      .map((e) => e.trim())
      .filter(Boolean)) {
      const colon = entry.indexOf(':')
      const operator = colon > 0 ? entry.slice(0, colon) : ''
      const secret = colon > 0 ? entry.slice(colon + 1) : ''
      if (!/^[A-Za-z0-9._-]{1,64}$/.test(operator) || secret === '') {
        problems.push(`${name}: each entry must be "name:${hashed ? 'sha256hex' : 'token'}"`)
        continue
      }
      if (seenOperators.has(operator)) problems.push(`${name}: operator "${operator}" appears twice`)
      seenOperators.add(operator)
      if (hashed) {
        if (!/^[0-9a-f]{64}$/i.test(secret))
          problems.push(`${name}: hash of "${operator}" is not 64 hex characters`)
        operatorTokens.push({ name: operator, sha256: secret.toLowerCase() })
      } else {
        if (secret.length < 24)
          problems.push(`${name}: token of "${operator}" must be at least 24 characters`)
        operatorTokens.push({ name: operator, sha256: sha256Hex(secret) })
      }
    }
  }

  // --- apps
  const apps = loadApps(str('APPS_FILE'), env, readFile, cwd, problems)

  const metricsPortRaw = str('METRICS_PORT')
  const metricsPort = metricsPortRaw === undefined ? undefined : int('METRICS_PORT', 9464, 1, 65535)
  if (metricsPort !== undefined && metricsPort === port)
    problems.push('METRICS_PORT: must differ from PORT (the metrics listener is a separate server)')

  // Shutdown waits for in-flight requests, which the response deadline bounds: the default leaves
  // them that long plus a margin, and a shorter explicit setting would cut them off.
  const responseDeadlineMs = int('RESPONSE_DEADLINE_MS', 15_000, 200, 120_000)
  const shutdownTimeoutMs = int('SHUTDOWN_TIMEOUT_MS', responseDeadlineMs + 5_000, 100, 180_000)
  if (shutdownTimeoutMs <= responseDeadlineMs)
    problems.push(
      'SHUTDOWN_TIMEOUT_MS: must be greater than RESPONSE_DEADLINE_MS (in-flight requests may take that long)',
    )

  const config: Config = {
    publicUrl,
    host,
    port,
    trustProxy: bool('TRUST_PROXY', false),
    logLevel: str('LOG_LEVEL') ?? 'info',
    redis,
    keyRing: keyRing as KeyRing,
    cookieSecret: cookieSecret ?? '',
    secureCookies: publicUrl.startsWith('https:'),
    apps,
    authorities,
    adminRoleIds,
    consent: {
      flowTtlMs: 10 * 60_000,
      proofBudgetMs: int('CONSENT_PROOF_BUDGET_MS', 60_000, 0, 300_000),
      rateLimitPerIp: int('CONSENT_RATE_LIMIT_PER_IP', 300, 1, 1_000_000),
      rateLimitWindowMs: int('CONSENT_RATE_LIMIT_WINDOW_SECONDS', 600, 1, 86_400) * 1000,
    },
    tokens: {
      maxSkewSeconds: int('OBTAIN_TOKEN_MAX_SKEW_SECONDS', 300, 1, 3600),
      refreshMarginSeconds: int('TOKEN_REFRESH_MARGIN_SECONDS', 300, 0, 3000),
      upstreamTimeoutMs: int('UPSTREAM_TIMEOUT_MS', 10_000, 100, 60_000),
      responseDeadlineMs,
      keepAliveIdleMs: int('KEEPALIVE_IDLE_DAYS', 7, 1, 80) * 86_400_000,
      keepAliveIntervalMs: int('KEEPALIVE_INTERVAL_SECONDS', 3600, 1, 86_400) * 1000,
      rateLimitPerRegistration: int('RATE_LIMIT_PER_REGISTRATION', 600, 1, 1_000_000),
      rateLimitPerIp: int('RATE_LIMIT_PER_IP', 3000, 1, 1_000_000),
      rateLimitWindowMs: int('RATE_LIMIT_WINDOW_SECONDS', 60, 1, 3600) * 1000,
    },
    operatorTokens,
    metricsPort,
    registrationsGaugeIntervalMs: int('METRICS_REGISTRATIONS_INTERVAL_SECONDS', 60, 0, 86_400) * 1000,
    auditMaxLen: int('AUDIT_MAX_EVENTS', 100_000, 100, 100_000_000),
    shutdownTimeoutMs,
  }
  if (config.tokens.responseDeadlineMs <= config.tokens.upstreamTimeoutMs) {
    problems.push('RESPONSE_DEADLINE_MS: must be greater than UPSTREAM_TIMEOUT_MS')
  }
  if (problems.length > 0) throw new ConfigError(problems)
  return deepFreeze(config)
}

const appsFileSchema = {
  type: 'object',
  required: ['apps'],
  additionalProperties: false,
  properties: {
    $schema: { type: 'string' },
    apps: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['slug', 'displayName', 'description', 'consent', 'permissions', 'defaultScope', 'clouds'],
        properties: {
          slug: { type: 'string', pattern: '^[a-z0-9]+(-[a-z0-9]+)*$', maxLength: 64 },
          displayName: { type: 'string', minLength: 1, maxLength: 120 },
          description: { type: 'string', maxLength: 2000 },
          consent: { enum: ['admin', 'delegated'] },
          permissions: {
            type: 'array',
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['name', 'type', 'description'],
              properties: {
                name: { type: 'string', minLength: 1 },
                type: { enum: ['Application', 'Delegated'] },
                description: { type: 'string' },
              },
            },
          },
          defaultScope: { type: 'string', minLength: 1 },
          consentScopes: { type: 'array', items: { type: 'string', minLength: 1 } },
          allowedScopes: { type: 'array', items: { type: 'string', minLength: 1 } },
          allowedResources: { type: 'array', items: { type: 'string', pattern: '^(https://|\\{[a-z]+\\})' } },
          clouds: {
            type: 'object',
            minProperties: 1,
            propertyNames: { enum: [...CLOUD_NAMES] },
            additionalProperties: {
              type: 'object',
              additionalProperties: false,
              required: ['clientId'],
              properties: {
                clientId: { type: 'string', pattern: GUID.source },
                clientSecretEnv: { type: 'string', pattern: '^[A-Z_][A-Z0-9_]*$' },
                clientSecretFile: { type: 'string', minLength: 1 },
              },
            },
          },
        },
      },
    },
  },
} as const

interface RawApp {
  slug: string
  displayName: string
  description: string
  consent: ConsentKind
  permissions: Permission[]
  defaultScope: string
  consentScopes?: string[]
  allowedScopes?: string[]
  allowedResources?: string[]
  clouds: Record<string, { clientId: string; clientSecretEnv?: string; clientSecretFile?: string }>
}

const RESERVED_SLUGS = new Set([
  'admin',
  'callback',
  'obtain-token',
  'healthz',
  'readyz',
  'metrics',
  'openapi.json',
  'static',
  'result',
])

function loadApps(
  file: string | undefined,
  env: Env,
  readFile: (path: string) => string,
  cwd: string,
  problems: string[],
): AppConfig[] {
  if (file === undefined) {
    problems.push('APPS_FILE: required (path to the JSON file listing the hosted apps)')
    return []
  }
  const path = isAbsolute(file) ? file : resolve(cwd, file)
  let raw: unknown
  try {
    raw = JSON.parse(readFile(path))
  } catch (error) {
    problems.push(`APPS_FILE: cannot read ${path} as JSON (${(error as Error).message})`)
    return []
  }
  const ajv = new Ajv({ allErrors: true, strict: true })
  const validate = ajv.compile(appsFileSchema)
  if (!validate(raw)) {
    for (const error of validate.errors ?? []) {
      problems.push(`APPS_FILE: ${error.instancePath || '/'} ${error.message ?? 'is invalid'}`)
    }
    return []
  }
  const apps: AppConfig[] = []
  const slugs = new Set<string>()
  for (const [index, app] of (raw as { apps: RawApp[] }).apps.entries()) {
    const where = `APPS_FILE: /apps/${index} (${app.slug})`
    if (slugs.has(app.slug)) problems.push(`${where}: slug appears twice`)
    if (RESERVED_SLUGS.has(app.slug)) problems.push(`${where}: slug is reserved`)
    slugs.add(app.slug)
    const clouds: Partial<Record<CloudName, AppCloudConfig>> = {}
    for (const [cloud, registration] of Object.entries(app.clouds)) {
      if (!isCloudName(cloud)) continue
      let clientSecret: string | undefined
      if (registration.clientSecretEnv !== undefined && registration.clientSecretFile !== undefined) {
        problems.push(`${where}: cloud ${cloud}: give clientSecretEnv or clientSecretFile, not both`)
      } else if (registration.clientSecretEnv !== undefined) {
        clientSecret = env[registration.clientSecretEnv]?.trim() || undefined
        if (clientSecret === undefined) {
          problems.push(
            `${registration.clientSecretEnv}: unset, but ${app.slug} (${cloud}) takes its client secret from it`,
          )
        }
      } else if (registration.clientSecretFile !== undefined) {
        try {
          clientSecret = readFile(registration.clientSecretFile).trim() || undefined
        } catch {
          problems.push(
            `${where}: cloud ${cloud}: cannot read clientSecretFile ${registration.clientSecretFile}`,
          )
        }
        if (clientSecret === undefined) problems.push(`${where}: cloud ${cloud}: clientSecretFile is empty`)
      } else {
        problems.push(`${where}: cloud ${cloud}: no client secret (set clientSecretEnv or clientSecretFile)`)
      }
      clouds[cloud] = { clientId: registration.clientId, clientSecret: clientSecret ?? '' }
    }
    const templates = [
      app.defaultScope,
      ...(app.consentScopes ?? []),
      ...(app.allowedScopes ?? []),
      ...(app.allowedResources ?? []),
    ]
    for (const template of templates) {
      try {
        expandResourceTemplate(template, 'global')
      } catch (error) {
        problems.push(`${where}: ${(error as Error).message} in "${template}"`)
      }
    }
    if (!app.defaultScope.endsWith('/.default'))
      problems.push(`${where}: defaultScope must end with /.default`)
    apps.push({
      slug: app.slug,
      displayName: app.displayName,
      description: app.description,
      consent: app.consent,
      permissions: app.permissions,
      defaultScope: app.defaultScope,
      consentScopes: app.consentScopes ?? [],
      allowedScopes: app.allowedScopes ?? [],
      allowedResources: app.allowedResources ?? [],
      clouds,
    })
  }
  return apps
}

/** An app's settings for one cloud, templates expanded. */
export interface ResolvedApp {
  readonly app: AppConfig
  readonly cloud: CloudName
  readonly clientId: string
  readonly clientSecret: string
  readonly authority: string
  readonly defaultScope: string
  readonly consentScopes: readonly string[]
  readonly allowedScopes: readonly string[]
  readonly allowedResources: readonly string[]
}

export function resolveApp(config: Config, app: AppConfig, cloud: CloudName): ResolvedApp | undefined {
  const registration = app.clouds[cloud]
  if (registration === undefined) return undefined
  return {
    app,
    cloud,
    clientId: registration.clientId,
    clientSecret: registration.clientSecret,
    authority: config.authorities[cloud],
    defaultScope: expandResourceTemplate(app.defaultScope, cloud),
    consentScopes: app.consentScopes.map((s) => expandResourceTemplate(s, cloud)),
    allowedScopes: app.allowedScopes.map((s) => (s === 'graph' ? s : expandResourceTemplate(s, cloud))),
    allowedResources: app.allowedResources.map((r) => expandResourceTemplate(r, cloud).replace(/\/+$/, '')),
  }
}

export function findApp(config: Config, slug: string): AppConfig | undefined {
  return config.apps.find((app) => app.slug === slug)
}

export function appClouds(app: AppConfig): CloudName[] {
  return CLOUD_NAMES.filter((cloud) => app.clouds[cloud] !== undefined)
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !(value instanceof KeyRing) && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const child of Object.values(value as Record<string, unknown>)) deepFreeze(child)
  }
  return value
}

/** The process environment, read here and nowhere else. */
export function loadConfigFromProcess(): Config {
  return loadConfig(process.env)
}
