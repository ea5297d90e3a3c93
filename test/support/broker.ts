// Test harness for the broker: the real app (real store, real identity provider pointed at the
// emulator) built in-process, plus helpers that drive the consent pages over HTTP the way a
// browser does (cookie jar, redirects) with `completeAtEmulator` playing the user at Microsoft.
//
//   const broker = await startBroker({ authorityUrl: emulator.url, redisUrl: inject('redisUrl') })
//   const { id, token, key } = await consentViaEmulator(broker.app, {
//     slug: 'ms-graph-mail', username: 'admin@contoso.example' })
import { randomBytes } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { Signer } from '@fastify/cookie'
import type { FastifyBaseLogger, FastifyInstance, LightMyRequestResponse as InjectResponse } from 'fastify'
import { pino } from 'pino'
import { buildApp } from '../../src/app.js'
import type { CloudName } from '../../src/clouds.js'
import { type Config, type Env, loadConfig, readAppsFile } from '../../src/config.js'
import { createEntraIdentityProvider } from '../../src/entra/identity-provider.js'
import type { IdentityProvider } from '../../src/entra/types.js'
import { AppsReload } from '../../src/services/apps-reload.js'
import { appCredentialsFor } from '../../src/services/create-services.js'
import { createStoreFromConfig, type StoreFactoryOptions } from '../../src/store/index.js'
import { createMemoryStore } from '../../src/store/memory.js'
import { createRedisStore } from '../../src/store/redis.js'
import { createRedisConnection, type RedisClient } from '../../src/store/redis-connection.js'
import type { Store } from '../../src/store/types.js'
import { testEnv } from './config.js'
import { completeAtEmulator } from './emulator-driver.js'

/**
 * Signs and checks cookies as the broker's browser routes do (COOKIE_SECRET): the cookie plugin is
 * registered in the browser routes' own scope (app.ts), so the app itself has no signCookie.
 */
export function cookieSigner(app: FastifyInstance): {
  sign(value: string): string
  unsign(value: string): { valid: boolean; value: string | null }
} {
  return new Signer(app.config.cookieSecret)
}

export interface StartBrokerOptions {
  /** Authority URL of every cloud (the emulator's `url`). */
  authorityUrl: string
  /** Real Redis when given; the memory store otherwise. */
  redisUrl?: string
  /** Redis key prefix; a random `test:<hex>:` by default so test files never see each other's keys. */
  keyPrefix?: string
  /** Extra or overriding environment for `loadConfig` (e.g. `PUBLIC_URL`, `CONSENT_PROOF_BUDGET_MS`). */
  env?: Env
  /** Logger instance (e.g. pino writing to memory, to assert what is logged); default silent. */
  logger?: FastifyBaseLogger
  /** Epoch-ms clock passed to buildApp. */
  clock?: () => number
  /** Wraps the real identity provider, e.g. to spy on what it returns. */
  decorateIdp?: (idp: IdentityProvider) => IdentityProvider
}

export interface RunningBroker {
  app: FastifyInstance
  config: Config
  store: Store
  idp: IdentityProvider
  /** The store's own Redis connection (undefined with the memory store). */
  redis: RedisClient | undefined
  /** The key prefix in use (Redis store). */
  keyPrefix: string
  /** Reloads of the apps file, as SIGHUP does (`reload`) or a change on disk (`start` watching). */
  appsReload?: AppsReload
  /** Closes the app and the store (and with it the Redis connection). */
  close(): Promise<void>
}

/**
 * A `decorateIdp` that pushes every refresh token the identity provider hands back onto `seen`, so a
 * test can look for it where it must not be (Redis in clear, logs, pages).
 */
export function capturingRefreshTokens(seen: string[]): (idp: IdentityProvider) => IdentityProvider {
  return (idp) => ({
    ...idp,
    async redeemCode(app, redemption) {
      const redeemed = await idp.redeemCode(app, redemption)
      if (redeemed.refreshToken !== undefined) seen.push(redeemed.refreshToken)
      return redeemed
    },
  })
}

/** Builds the broker with the real store and identity provider; never listens (use `app.inject`). */
export async function startBroker(options: StartBrokerOptions): Promise<RunningBroker> {
  const keyPrefix = options.keyPrefix ?? `test:${randomBytes(6).toString('hex')}:`
  const env = testEnv({
    authorityUrl: options.authorityUrl,
    ...(options.redisUrl === undefined ? {} : { redisUrl: options.redisUrl }),
    keyPrefix,
    ...(options.env === undefined ? {} : { env: options.env }),
  })
  const config = loadConfig(env)
  let redis: RedisClient | undefined
  let store: Store
  if (options.redisUrl === undefined) {
    store = createMemoryStore({ keyRing: config.keyRing })
  } else {
    // Tests stop Redis on purpose: a listener keeps ioredis from printing "Unhandled error event"
    // stacks; the store still sees each failed command (and the tests assert those).
    redis = createRedisConnection({
      url: options.redisUrl,
      connectionName: 'consent-broker-test',
      onError: () => undefined,
    })
    store = createRedisStore({ redis, keyRing: config.keyRing, keyPrefix })
  }
  // The identity provider and the app share one credential set, as broker.ts wires them.
  const credentials = appCredentialsFor(
    config,
    store,
    options.logger ?? pino({ level: 'silent' }),
    options.clock ?? Date.now,
  )
  const realIdp = createEntraIdentityProvider(config, { credentials })
  const idp = options.decorateIdp === undefined ? realIdp : options.decorateIdp(realIdp)
  const app = await buildApp(config, {
    store,
    idp,
    credentials,
    ...(options.logger === undefined ? {} : { logger: options.logger }),
    ...(options.clock === undefined ? {} : { clock: options.clock }),
  })
  await app.ready()
  // As broker.ts wires it, without watching files (tests reload explicitly, or watch on purpose).
  const appsReload = new AppsReload({
    read: () => readAppsFile(env),
    credentials,
    startedWith: config.apps,
    files: config.appsFiles,
    log: app.log,
    expiryWarningMs: config.credentials.expiryWarningMs,
    debounceMs: 100,
  })
  return {
    app,
    config,
    store,
    idp,
    redis,
    keyPrefix,
    appsReload,
    async close() {
      appsReload.stop()
      await app.close()
      await store.close()
    },
  }
}

export interface ListeningBroker {
  app: FastifyInstance
  store: Store
  /** `http://127.0.0.1:<port>`, where the broker listens. */
  url: string
  /** Closes the app and the store. */
  close(): Promise<void>
}

/**
 * The broker as production builds it from `config` alone (the store through createStoreFromConfig,
 * so any Redis topology: Sentinel, Cluster…), with the real identity provider and a silent logger,
 * listening on a free local port.
 */
export async function listenOnConfig(
  config: Config,
  storeOptions: StoreFactoryOptions = {},
): Promise<ListeningBroker> {
  // A connection error listener unless the test brings its own (see startBroker).
  const store = createStoreFromConfig(config, { onRedisError: () => undefined, ...storeOptions })
  const app = await buildApp(config, {
    store,
    idp: createEntraIdentityProvider(config),
    logger: pino({ level: 'silent' }),
  })
  const close = async () => {
    await app.close()
    await store.close()
  }
  try {
    await app.listen({ host: '127.0.0.1', port: 0 })
  } catch (error) {
    await close()
    throw error
  }
  return { app, store, url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, close }
}

// ---- a browser's cookie jar -------------------------------------------------------------------

interface JarCookie {
  value: string
  path: string
}

/** Keeps cookies the broker sets (by name and path) and sends them back where a browser would. */
export class CookieJar {
  readonly #cookies = new Map<string, JarCookie>()

  /** Applies a response's `Set-Cookie` headers (a `Max-Age=0` or past `Expires` deletes). */
  update(response: InjectResponse): void {
    const header = response.headers['set-cookie']
    const lines = header === undefined ? [] : Array.isArray(header) ? header : [String(header)]
    for (const line of lines) {
      const [pair, ...attributes] = line.split(';').map((part) => part.trim())
      const eq = pair!.indexOf('=')
      const name = pair!.slice(0, eq)
      const value = pair!.slice(eq + 1)
      let path = '/'
      let expired = value === ''
      for (const attribute of attributes) {
        const [key, attrValue = ''] = attribute.split('=')
        const lower = key!.toLowerCase()
        if (lower === 'path') path = attrValue
        if (lower === 'max-age' && Number(attrValue) <= 0) expired = true
        if (lower === 'expires' && Date.parse(attrValue) <= Date.now()) expired = true
      }
      const key = `${name}|${path}`
      if (expired) this.#cookies.delete(key)
      else this.#cookies.set(key, { value, path })
    }
  }

  /** The `Cookie` header a browser would send to `path` (undefined when none applies). */
  header(path: string): string | undefined {
    const pathname = path.split('?')[0]!
    const pairs: string[] = []
    for (const [key, cookie] of this.#cookies) {
      const matches =
        pathname === cookie.path ||
        cookie.path === '/' ||
        pathname.startsWith(cookie.path.endsWith('/') ? cookie.path : `${cookie.path}/`)
      if (matches) pairs.push(`${key.slice(0, key.indexOf('|'))}=${cookie.value}`)
    }
    return pairs.length === 0 ? undefined : pairs.join('; ')
  }

  /** Raw (still signed) value of a cookie, whatever its path. */
  get(name: string): string | undefined {
    for (const [key, cookie] of this.#cookies) if (key.startsWith(`${name}|`)) return cookie.value
    return undefined
  }

  clear(): void {
    this.#cookies.clear()
  }
}

/** GET/POST through `app.inject` as a browser: sends the jar's cookies, stores the answer's. */
export async function browse(
  app: FastifyInstance,
  jar: CookieJar,
  request: { method?: 'GET' | 'POST'; url: string; form?: Record<string, string> },
): Promise<InjectResponse> {
  const cookie = jar.header(request.url)
  const response = await app.inject({
    method: request.method ?? 'GET',
    url: request.url,
    headers: {
      accept: 'text/html',
      ...(cookie === undefined ? {} : { cookie }),
      ...(request.form === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded' }),
    },
    ...(request.form === undefined ? {} : { payload: new URLSearchParams(request.form).toString() }),
  })
  jar.update(response)
  return response
}

/** Path and query of a URL the emulator sent the browser back to (`/callback?…`). */
export function pathOf(url: URL | string): string {
  const parsed = typeof url === 'string' ? new URL(url, 'http://broker.invalid') : url
  return `${parsed.pathname}${parsed.search}`
}

// ---- consent steps --------------------------------------------------------------------------

export interface StartedConsent {
  jar: CookieJar
  response: InjectResponse
  /** Where the broker sent the browser: the authority's authorize URL. */
  location: string
}

/**
 * Opens the page of a form that starts a flow (`/{app}` or `/{app}/manage`) in `jar`, as a browser
 * does before posting it: the page's CSRF cookie lands in the jar; returns the form's token.
 */
export async function formCsrf(app: FastifyInstance, jar: CookieJar, page: string): Promise<string> {
  const response = await browse(app, jar, { url: page })
  const match = /<input type="hidden" name="csrf" value="([^"]+)">/.exec(response.body)
  if (response.statusCode !== 200 || match === null) {
    throw new Error(
      `${page} answered ${response.statusCode} without a form token: ${pageTitle(response.body)}`,
    )
  }
  return match[1]!
}

/**
 * The `Cookie` header and form token of a start form, for tests that post with `app.inject`: what a
 * browser that opened the consent page of `slug` holds.
 */
export async function startFormCredentials(
  app: FastifyInstance,
  slug = 'ms-graph-mail',
): Promise<{ cookie: string; csrf: string }> {
  const jar = new CookieJar()
  const csrf = await formCsrf(app, jar, `/${slug}`)
  return { cookie: jar.header(`/${slug}/start`)!, csrf }
}

/** Posts the start form of `slug` (optionally choosing `cloud`); expects the 303 to Microsoft. */
export async function startConsentFlow(
  app: FastifyInstance,
  options: { slug: string; cloud?: CloudName; jar?: CookieJar; ownApp?: Record<string, string> },
): Promise<StartedConsent> {
  const jar = options.jar ?? new CookieJar()
  // The page first (its form token), then the post: the start form, or with `ownApp` the own-app
  // form (tenant_id, client_id, client_secret, method).
  const page = options.ownApp === undefined ? `/${options.slug}` : `/${options.slug}/own-app`
  const csrf = await formCsrf(app, jar, page)
  const cloud: Record<string, string> = options.cloud === undefined ? {} : { cloud: options.cloud }
  const response = await browse(app, jar, {
    method: 'POST',
    url: options.ownApp === undefined ? `/${options.slug}/start` : page,
    form: { csrf, ...cloud, ...options.ownApp },
  })
  const location = response.headers.location
  if (response.statusCode !== 303 || typeof location !== 'string') {
    throw new Error(`start of ${options.slug} answered ${response.statusCode}: ${pageTitle(response.body)}`)
  }
  return { jar, response, location }
}

/** The `<h1>` of a page, for error messages and assertions. */
export function pageTitle(body: string): string {
  const match = /<h1[^>]*>([\s\S]*?)<\/h1>/i.exec(body)
  return match === null ? body.slice(0, 200) : decodeHtml(match[1]!.replace(/<[^>]+>/g, '').trim())
}

function decodeHtml(value: string): string {
  return value
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&#96;/g, '`')
    .replace(/&amp;/g, '&')
}

export interface ConsentValues {
  /** `<registration_id>@<PUBLIC_URL>/obtain-token`, as shown. */
  id: string
  /** The tenant id. */
  token: string
  /** Standard base64 of 32 bytes. */
  key: string
  registrationId: string
}

/** ID, Token and Key from a result page (`data-field` elements); undefined when absent. */
export function parseConsentValues(body: string): ConsentValues | undefined {
  const field = (name: string) => {
    const match = new RegExp(`<[a-z]+ data-field="${name}">([^<]*)</`).exec(body)
    return match === null ? undefined : decodeHtml(match[1]!.trim())
  }
  const id = field('id')
  const token = field('token')
  const key = field('key')
  if (id === undefined || token === undefined || key === undefined) return undefined
  return { id, token, key, registrationId: id.slice(0, id.indexOf('@')) }
}

/** What a renewed registration's result page shows: ID and Token, never the Key. */
export interface RenewedValues {
  id: string
  token: string
  registrationId: string
}

/**
 * ID and Token from the result page of a renewal (a delegated re-consent); undefined for any other
 * page, and for a page that shows a Key (a renewal must not).
 */
export function parseRenewedValues(body: string): RenewedValues | undefined {
  if (!body.includes('data-result="renewed"') || body.includes('data-field="key"')) return undefined
  const field = (name: string) => {
    const match = new RegExp(`<[a-z]+ data-field="${name}">([^<]*)</`).exec(body)
    return match === null ? undefined : decodeHtml(match[1]!.trim())
  }
  const id = field('id')
  const token = field('token')
  if (id === undefined || token === undefined) return undefined
  return { id, token, registrationId: id.slice(0, id.indexOf('@')) }
}

export interface ConsentViaEmulatorOptions {
  slug: string
  /** Demo user signing in, e.g. `admin@contoso.example`. */
  username: string
  cloud?: CloudName
  /** Answer at every consent page the emulator shows (default `accept`). */
  decision?: 'accept' | 'deny'
  /** Admin consent: who signs in at the tenant-wide consent step (default `username`). */
  adminConsentUsername?: string
  /** Admin consent: the answer at the tenant-wide consent page (default `decision`). */
  adminConsentDecision?: 'accept' | 'deny'
  /** Reuse a browser (cookies); a fresh one by default. */
  jar?: CookieJar
  /** Start from the own-app form with these fields instead of the hosted app's start form. */
  ownApp?: Record<string, string>
}

export interface ConsentRun {
  jar: CookieJar
  /** The final broker response: the result page (200) or a failure page. */
  response: InjectResponse
  /** Every callback URL (path and query) the browser was sent back to, in order. */
  callbacks: string[]
  /** Parsed values when the result page was shown. */
  values: ConsentValues | undefined
}

/** The waiting page marks itself so; a browser reloads it (meta refresh) until it answers otherwise. */
export function isProofWaitingPage(response: InjectResponse): boolean {
  return response.statusCode === 200 && response.body.includes('data-state="proving-consent"')
}

/**
 * Follows the admin-consent waiting page (`/callback/status`) as a browser does, reloading it until
 * it answers with the result (303 /result) or a failure page; at most `maxLoads` loads.
 */
export async function waitOutProof(
  app: FastifyInstance,
  jar: CookieJar,
  maxLoads = 600,
): Promise<InjectResponse> {
  for (let load = 0; load < maxLoads; load++) {
    const response = await browse(app, jar, { url: '/callback/status' })
    if (!isProofWaitingPage(response)) return response
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  throw new Error('the admin-consent waiting page never ended')
}

/**
 * Runs a consent end to end and returns whatever page it ended on: start form → emulator sign-in
 * (and consent) → callback → for admin consent, the tenant-wide consent page → callback → result.
 */
export async function runConsentViaEmulator(
  app: FastifyInstance,
  options: ConsentViaEmulatorOptions,
): Promise<ConsentRun> {
  const decision = options.decision ?? 'accept'
  const started = await startConsentFlow(app, {
    slug: options.slug,
    ...(options.cloud === undefined ? {} : { cloud: options.cloud }),
    ...(options.jar === undefined ? {} : { jar: options.jar }),
    ...(options.ownApp === undefined ? {} : { ownApp: options.ownApp }),
  })
  const { jar } = started
  const callbacks: string[] = []
  let atMicrosoft = started.location
  let phase = 0
  for (;;) {
    const username = phase === 0 ? options.username : (options.adminConsentUsername ?? options.username)
    const answer = phase === 0 ? decision : (options.adminConsentDecision ?? decision)
    const back = await completeAtEmulator(atMicrosoft, { username, decision: answer })
    const callback = pathOf(back)
    callbacks.push(callback)
    let response = await browse(app, jar, { url: callback })
    // A slow admin-consent proof: the waiting page reloads itself until the outcome is there.
    if (response.headers.location === '/callback/status') response = await waitOutProof(app, jar)
    const location = response.headers.location
    if (response.statusCode === 303 && typeof location === 'string' && location === '/result') {
      const result = await browse(app, jar, { url: '/result' })
      return { jar, response: result, callbacks, values: parseConsentValues(result.body) }
    }
    if (response.statusCode === 303 && typeof location === 'string' && phase === 0) {
      atMicrosoft = location
      phase = 1
      continue
    }
    return { jar, response, callbacks, values: undefined }
  }
}

/** Runs a delegated re-consent that must renew the registration; the ID and Token shown. */
export async function renewViaEmulator(
  app: FastifyInstance,
  options: ConsentViaEmulatorOptions,
): Promise<RenewedValues> {
  const run = await runConsentViaEmulator(app, options)
  const renewed = parseRenewedValues(run.response.body)
  if (renewed === undefined) {
    throw new Error(
      `re-consent for ${options.slug} as ${options.username} did not renew: HTTP ${run.response.statusCode}: ${pageTitle(run.response.body)}`,
    )
  }
  return renewed
}

/**
 * The ID, Token and Key an integration configured by this user holds after a consent that must
 * succeed: a new registration's, from its page; after a renewal (its page shows no Key), the Key
 * the integration already has, read from the store.
 */
export async function integrationValuesViaEmulator(
  broker: RunningBroker,
  options: ConsentViaEmulatorOptions,
): Promise<ConsentValues> {
  const run = await runConsentViaEmulator(broker.app, options)
  if (run.values !== undefined) return run.values
  const renewed = parseRenewedValues(run.response.body)
  const stored = renewed && (await broker.store.registrations.get(renewed.registrationId))
  if (renewed === undefined || !stored) {
    throw new Error(
      `consent for ${options.slug} as ${options.username} ended with HTTP ${run.response.statusCode}: ${pageTitle(run.response.body)}`,
    )
  }
  return { ...renewed, key: stored.secrets.key }
}

/** Runs a consent that must succeed and returns the ID, Token and Key shown. */
export async function consentViaEmulator(
  app: FastifyInstance,
  options: ConsentViaEmulatorOptions,
): Promise<ConsentValues> {
  const run = await runConsentViaEmulator(app, options)
  if (run.values === undefined) {
    throw new Error(
      `consent for ${options.slug} as ${options.username} ended with HTTP ${run.response.statusCode}: ${pageTitle(run.response.body)}`,
    )
  }
  return run.values
}
