// The shape of the validated configuration (one frozen Config built at start-up) and the error
// that lists every problem found while building it. No parsing here: env.ts reads the environment,
// apps-file.ts the hosted apps.
import type { CloudName } from '../clouds.js'
import type { ConsentKind } from '../consent-kinds.js'
import type { KeyRing } from '../crypto/envelope.js'
import type { AppCredential } from './credentials.js'

/** The environment as read: variable name → raw value (unset names are `undefined`). */
export type Env = Readonly<Record<string, string | undefined>>

/** Log levels pino knows; anything else is a configuration problem, not a start-up crash. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

/** One of {@link LOG_LEVELS}. */
export type LogLevel = (typeof LOG_LEVELS)[number]

/** A permission an app asks for, as listed on the consent page. */
export interface Permission {
  readonly name: string
  readonly type: 'Application' | 'Delegated'
  readonly description: string
}

/** An app's registration in one cloud. */
export interface AppCloudConfig {
  readonly clientId: string
  /** Newest first (certificates by notBefore, the rest in list order); never empty once valid. */
  readonly credentials: readonly AppCredential[]
}

/** One hosted app, as the apps file describes it (templates not expanded). */
export interface AppConfig {
  readonly slug: string
  readonly displayName: string
  readonly description: string
  /** The integrations (as users know them in Cortex XSOAR) that send this app_name. */
  readonly integrations: readonly string[]
  /** Heading the home page lists the app under (`Mail and calendar`, `Azure` …); none = `Other`. */
  readonly group: string | undefined
  /**
   * After consent, list the Azure subscriptions (and resource groups) the new registration can see.
   * Only for apps whose consent yields an Azure Resource Manager token (checked at start-up).
   */
  readonly listSubscriptions: boolean
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

/** Where the Redis store lives: exactly one of `url`, `sentinels` or `clusterNodes` is set. */
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
  /** Prefix of every key; never contains `{` or `}` (it would move keys to other hash slots). */
  readonly keyPrefix: string
}

/** An operator allowed on the admin API and console. */
export interface OperatorToken {
  readonly name: string
  /** SHA-256 of the token, hex; tokens are compared by hash in constant time. */
  readonly sha256: string
}

/** The broker's whole configuration, validated and deep-frozen. */
export interface Config {
  readonly publicUrl: string
  readonly host: string
  readonly port: number
  readonly trustProxy: boolean
  /** What the HTTP server allows a client (connection-guard.ts). */
  readonly http: {
    /** Headers and body of a request must arrive within this (REQUEST_TIMEOUT_MS). */
    readonly requestTimeoutMs: number
    /** An idle keep-alive connection is closed after this (KEEP_ALIVE_TIMEOUT_MS). */
    readonly keepAliveTimeoutMs: number
    /** Open connections per socket peer address; 0 = no cap (MAX_CONNECTIONS_PER_IP). */
    readonly maxConnectionsPerIp: number
  }
  readonly logLevel: LogLevel
  /** `undefined` = memory store (demo only; requires UNSAFE_MEMORY_STORE=true). */
  readonly redis: RedisConfig | undefined
  readonly keyRing: KeyRing
  readonly cookieSecret: string
  readonly secureCookies: boolean
  readonly apps: readonly AppConfig[]
  /** The apps file and every file it names (secrets, certificates, keys, token files): watched for changes. */
  readonly appsFiles: readonly string[]
  /** Authority base URL per cloud, overrides applied, no trailing slash. */
  readonly authorities: Readonly<Record<CloudName, string>>
  /**
   * Where the broker calls Azure Resource Manager per cloud (no trailing slash): the cloud's ARM host
   * unless RESOURCE_MANAGER_URL_<CLOUD> overrides it.
   */
  readonly resourceManagerUrls: Readonly<Record<CloudName, string>>
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
    /** A cached token is never served with less life left than this. */
    readonly refreshMarginSeconds: number
    /** Share of a token's lifetime after which a token in use is refreshed in the background; 0 = off. */
    readonly refreshAheadFraction: number
    /** Token requests to the identity provider per app per second, across every instance. */
    readonly upstreamRatePerApp: number
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
  /** On SIGTERM, how long /readyz answers 503 while requests are still served, before closing. */
  readonly shutdownDrainMs: number
  readonly shutdownTimeoutMs: number
  readonly credentials: {
    /** Start-up (and each reload) warns about app credentials expiring within this. */
    readonly expiryWarningMs: number
    /**
     * Inside the warning window, a second `app_credential.expiring` notification is sent this
     * close to the expiry (and a third once it has expired).
     */
    readonly expiryUrgentMs: number
    /** How often each instance compares the credentials' expiry with the clock (notifications). */
    readonly expiryCheckMs: number
    /** How long a credential Microsoft refused is tried last (on every instance). */
    readonly failingMs: number
  }
  readonly webhooks: WebhookConfig
}

/** Webhook delivery settings (docs: README, notifications). */
export interface WebhookConfig {
  /** UNSAFE_ALLOW_HTTP: http endpoints on loopback hosts are accepted. */
  readonly allowHttp: boolean
  /** Endpoints resolving to private, loopback or link-local addresses are delivered to. */
  readonly allowPrivateAddresses: boolean
  /** One delivery attempt's bound (connect, send, read the answer). */
  readonly timeoutMs: number
  /** How often each instance looks for due work. */
  readonly pollIntervalMs: number
  /** The first retry's delay; doubled per attempt (with jitter) up to retryMaxIntervalMs. */
  readonly retryBaseMs: number
  readonly retryMaxIntervalMs: number
  /** A message still undelivered this long after it was created is marked failed. */
  readonly retryForMs: number
  /** How long one instance holds a message it is delivering. */
  readonly leaseMs: number
  /** The part of an endpoint's answer read (then the connection is dropped). */
  readonly maxResponseBytes: number
}

/** Thrown by `loadConfig` with every problem found, each naming its variable (or the apps file). */
export class ConfigError extends Error {
  override readonly name = 'ConfigError'
  /** One line per problem, `NAME: what is wrong`; never contains a secret value. */
  readonly problems: readonly string[]
  constructor(problems: readonly string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`)
    this.problems = problems
  }
}
