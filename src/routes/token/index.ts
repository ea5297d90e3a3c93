// POST /obtain-token: the XSOAR MicrosoftApiModule's token endpoint (see the obtain-token
// protocol). Checks, in order: body schema → app → registration lookup with the per-IP rate limit
// in parallel (both skipped for a registration admitted before) → the encrypted_token
// authenticates under the registration's Key → timestamp window → content equals the Token →
// registration status → scope → [admit: one atomic store call that counts the per-IP limit when
// not counted yet, confirms the registration is still active at the version checked, claims the
// ciphertext (replay cache) and counts the per-registration rate limit; cache read] in parallel →
// token from the issuer. One Redis command per cache hit (two on a Cluster, where the per-IP
// counter is in another slot). A request refused before admit is still counted against its
// address. Every answer comes within the response deadline; errors are the one-line JSON of
// errors.ts.
import { Ajv } from 'ajv'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { withDeadline } from '../../abortable.js'
import { findApp } from '../../config.js'
import {
  constantTimeEqual,
  decodeEncryptedToken,
  type ImportedKey,
  importRegistrationKey,
  ObtainTokenCryptoError,
  openEncryptedToken,
  replayMarker,
} from '../../crypto/obtain-token.js'
import { BrokerError, toBrokerError } from '../../errors.js'
import { tokenGroup } from '../../services/token-groups.js'
import { TokenIssuer } from '../../services/token-issuer.js'
import { KeepAlive } from '../../services/token-keep-alive.js'
import { registrationStatusError } from '../../services/token-registration.js'
import { type AppScopes, clip, ScopeResolver } from '../../services/token-scope.js'
import type { Registration, RegistrationUsage } from '../../store/types.js'
import { type ObtainTokenBody, obtainTokenBodySchema, obtainTokenResponseSchemas } from './schemas.js'

type RegistrationMeta = Registration & RegistrationUsage

/** Answer margin kept under the response deadline for serialising and writing the reply. */
const DEADLINE_MARGIN_MS = 100
/** Usage (`lastIssuedAt`, `lastClient`) is written at most this often per registration and instance. */
const TOUCH_EVERY_MS = 30_000
const KEY_CACHE_MAX = 10_000
const CURRENT_CACHE_MAX = 10_000
/** A registration that keeps changing between the read and admit is read at most this often. */
const ADMIT_ATTEMPTS = 3
const TOUCH_CACHE_MAX = 50_000
const BLOCKED_MAX = 10_000

export async function tokenRoutes(app: FastifyInstance): Promise<void> {
  const { config, store, metrics } = app
  const clock = () => app.clock()
  const scopes = new ScopeResolver(config)
  const issuer = new TokenIssuer({ config, store, idp: app.idp, metrics, logger: app.log, clock })
  const keepAlive = new KeepAlive({ config, store, issuer, scopes, logger: app.log, clock })
  const knownApps = new Set(config.apps.map((a) => a.slug))
  const replayWindowMs = (config.tokens.maxSkewSeconds * 2 + 1) * 1000

  // Imported Keys by registration id + version (a new Key always bumps the version), so the hot path
  // neither opens the sealed Key nor re-imports it.
  const keys = new Map<string, ImportedKey>()
  // Registrations admitted before, by id, as of the version admitted: every versioned update bumps
  // the version and admit refuses another version, so an entry is never trusted past a change.
  const current = new Map<string, RegistrationMeta>()
  // Last usage written per registration: when, and the raw client headers it named.
  const touched = new Map<string, { at: number; name: string | undefined; version: string | undefined }>()

  // Strict validation for this route: no type coercion, unknown fields left alone.
  const ajv = new Ajv({ allErrors: false, coerceTypes: false, useDefaults: false, removeAdditional: false })
  app.setValidatorCompiler(({ schema }) => ajv.compile(schema))

  // The headers OWASP's REST Security Cheat Sheet asks of a JSON API (plus CORP and no-referrer).
  // The rest of helmet's set governs documents a browser renders; this answer is read by the
  // integration's HTTP client, and each extra header costs its validation and bytes on every call.
  const securityHeaders: Record<string, string> = {
    'cache-control': 'no-store',
    'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
    'cross-origin-resource-policy': 'same-origin',
    'referrer-policy': 'no-referrer',
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    ...(config.secureCookies ? { 'strict-transport-security': 'max-age=31536000; includeSubDomains' } : {}),
  }

  keepAlive.start()
  app.addHook('onClose', async () => {
    await keepAlive.stop()
  })

  /** Reads and imports the registration's Key; the caller found none in `keys` for this version. */
  async function keyFor(meta: Registration): Promise<ImportedKey | null> {
    const id = meta.id
    const stored = await store.registrations.get(id)
    if (stored === null) return null
    let imported: ImportedKey
    try {
      imported = importRegistrationKey(stored.secrets.key)
    } catch (cause) {
      // A revoked registration may have lost its Key: say so rather than fail.
      if (meta.status !== 'active') throw registrationStatusError(config, meta)
      app.log.error(
        { registrationId: id, reason: (cause as Error).message },
        'stored registration Key is unusable',
      )
      throw new BrokerError(
        'internal_error',
        "this registration's Key is unusable; quote the request_id to the operator",
      )
    }
    if (keys.size >= KEY_CACHE_MAX) keys.delete(keys.keys().next().value as string)
    keys.set(keyCacheKey(id, stored.registration.version), imported)
    return imported
  }

  function remember(meta: RegistrationMeta): void {
    if (current.get(meta.id) === meta) return
    if (!current.has(meta.id) && current.size >= CURRENT_CACHE_MAX)
      current.delete(current.keys().next().value as string)
    current.set(meta.id, meta)
  }

  function recordUsage(id: string, request: FastifyRequest): void {
    const now = clock()
    const name = header(request, 'x-content-name')
    const version = header(request, 'x-content-version')
    const last = touched.get(id)
    if (
      last !== undefined &&
      now - last.at < TOUCH_EVERY_MS &&
      last.name === name &&
      last.version === version
    )
      return
    if (touched.size >= TOUCH_CACHE_MAX) touched.delete(touched.keys().next().value as string)
    touched.set(id, { at: now, name, version })
    const client = clientOf(name, version)
    store.registrations
      .touch(id, {
        lastIssuedAt: new Date(now).toISOString(),
        ...(client === undefined ? {} : { lastClient: client }),
      })
      .catch((error: unknown) => app.log.warn({ err: error, registrationId: id }, 'could not record usage'))
  }

  // A key the shared limiter refused stays refused here until its window ends: a flood costs no
  // Redis round trips once it is over the limit (the window would not let it through anyway).
  const blocked = new Map<string, number>()

  function checkBlocked(key: string, what: string): void {
    const until = blocked.get(key)
    if (until === undefined) return
    const left = until - clock()
    if (left > 0) throw rateLimitedError(left, what)
    blocked.delete(key)
  }

  function rateLimited(key: string, retryAfterMs: number, what: string): BrokerError {
    if (blocked.size >= BLOCKED_MAX) blocked.delete(blocked.keys().next().value as string)
    blocked.set(key, clock() + retryAfterMs)
    return rateLimitedError(retryAfterMs, what)
  }

  /** A request refused before admit still counts against its address: past the limit, 429 wins. */
  async function refuse(error: unknown, uncounted?: { key: string; limit: number; windowMs: number }) {
    if (uncounted !== undefined) {
      const hit = await store.rateLimiter.hit(uncounted.key, uncounted.limit, uncounted.windowMs)
      if (!hit.allowed) throw rateLimited(uncounted.key, hit.retryAfterMs, 'from this address')
    }
    throw error
  }

  function unknownRegistration(slug: string): BrokerError {
    return new BrokerError(
      'unknown_registration',
      `no ${slug} registration with this ID; check the ID field (<registration_id>@${config.publicUrl}/obtain-token)`,
    )
  }

  /**
   * Checks that need the registration: the encrypted_token authenticates under its Key, the
   * timestamp is in the window, the content is the Token, the status is active, the scope resolves.
   */
  async function authenticate(meta: RegistrationMeta, raw: Buffer, body: ObtainTokenBody, slug: string) {
    const key = await keyFor(meta)
    if (key === null) throw unknownRegistration(slug)
    return verify(meta, raw, body, key)
  }

  /** authenticate, once the Key is at hand (synchronous: the hot path doesn't yield here). */
  function verify(meta: RegistrationMeta, raw: Buffer, body: ObtainTokenBody, key: ImportedKey) {
    let opened: { timestamp: number; content: string }
    try {
      opened = openEncryptedToken(raw, key)
    } catch (error) {
      throw cryptoError(error)
    }
    const skew = Math.round(opened.timestamp - clock() / 1000)
    if (Math.abs(skew) > config.tokens.maxSkewSeconds) {
      throw new BrokerError(
        'stale_token',
        `the request's timestamp is ${Math.abs(skew)} s ${skew < 0 ? 'behind' : 'ahead of'} the broker's clock (allowed ±${config.tokens.maxSkewSeconds} s); check the clock of the XSOAR server or engine`,
      )
    }
    if (!constantTimeEqual(opened.content, meta.tenantId)) {
      throw new BrokerError(
        'token_mismatch',
        'the Token field does not match this registration; paste the Token shown on the consent page and clear any stored refresh token (auth-reset)',
      )
    }
    if (meta.status !== 'active') throw registrationStatusError(config, meta)
    const appScopes = scopes.forApp(meta.app, meta.cloud)
    if (appScopes === undefined) {
      app.log.error(
        { registrationId: meta.id, app: meta.app, cloud: meta.cloud },
        'registration cloud is not configured',
      )
      throw new BrokerError(
        'broker_misconfigured',
        `the broker no longer offers ${meta.app} in the ${meta.cloud} cloud; contact the broker operator`,
      )
    }
    return { appScopes, scope: ScopeResolver.resolve(appScopes, body.scope, body.resource) }
  }

  async function obtain(request: FastifyRequest, deadlineAt: number) {
    if (request.validationError) {
      throw new BrokerError('invalid_request', `request body ${describeValidation(request.validationError)}`)
    }
    const body = request.body as ObtainTokenBody
    const appConfig = findApp(config, body.app_name)
    if (appConfig === undefined) {
      throw new BrokerError(
        'unknown_app',
        `app_name "${clip(body.app_name)}" is not hosted by this broker; hosted: ${[...knownApps].join(', ')}`,
      )
    }
    const ipKey = `obtain-token:ip:${request.ip}`
    checkBlocked(ipKey, 'from this address')
    const ipLimit = {
      key: ipKey,
      limit: config.tokens.rateLimitPerIp,
      windowMs: config.tokens.rateLimitWindowMs,
    }
    // Every request that gets this far counts against its address once (except one refused by this
    // instance's local block of a registration over its limit: that costs no store call at all,
    // which is the block's purpose under a flood). An active registration
    // seen before is taken from `current` and its request costs one store call: admit counts the
    // address too (and re-checks, in the store, that the registration is still active at that
    // version). Anything else is read first, in parallel with the address's hit.
    let meta: RegistrationMeta | null | undefined = current.get(body.registration_id)
    let ipCounted = false
    if (meta === undefined) {
      const [hit, read] = await Promise.all([
        store.rateLimiter.hit(ipKey, ipLimit.limit, ipLimit.windowMs),
        store.registrations.getMeta(body.registration_id),
      ])
      ipCounted = true
      if (!hit.allowed) throw rateLimited(ipKey, hit.retryAfterMs, 'from this address')
      meta = read
    }
    let raw: Buffer
    try {
      raw = decodeOrThrow(body.encrypted_token)
    } catch (error) {
      return refuse(error, ipCounted ? undefined : ipLimit)
    }
    for (let attempt = 1; ; attempt++) {
      let checked: { appScopes: AppScopes; scope: string }
      try {
        // Missing and belonging to another app look the same to the caller.
        if (meta === null || meta.app !== appConfig.slug) throw unknownRegistration(appConfig.slug)
        const key = keys.get(keyCacheKey(meta.id, meta.version))
        checked =
          key === undefined
            ? await authenticate(meta, raw, body, appConfig.slug)
            : verify(meta, raw, body, key)
      } catch (error) {
        return refuse(error, ipCounted ? undefined : ipLimit)
      }
      const { appScopes, scope } = checked
      const local = issuer.peek(meta, scope)
      const regKey = `obtain-token:reg:${meta.id}`
      checkBlocked(regKey, 'for this registration')
      // Only now, authenticated: one atomic store call claims the ciphertext (replay cache), counts
      // the per-registration limit (and the address's, unless counted above) and confirms the
      // registration is still active at this version, so a revocation or new Key on any instance
      // applies to the very next request.
      const admitting = store.registrations.admit(meta.id, {
        version: meta.version,
        replayMarker: replayMarker(raw),
        replayTtlMs: replayWindowMs,
        limit: config.tokens.rateLimitPerRegistration,
        windowMs: config.tokens.rateLimitWindowMs,
        client: ipCounted ? undefined : ipLimit,
      })
      const [admission, cached] =
        local === undefined
          ? await Promise.all([admitting, store.tokens.get(tokenGroup(meta), scope)])
          : [await admitting, local]
      ipCounted = true
      if (admission.client !== undefined && !admission.client.allowed) {
        throw rateLimited(ipKey, admission.client.retryAfterMs, 'from this address')
      }
      if (!admission.current) {
        // Changed since it was read: read it again and redo every check on the new version.
        current.delete(meta.id)
        if (attempt >= ADMIT_ATTEMPTS) {
          throw new BrokerError('store_unavailable', 'this registration is being changed; retry shortly', {
            retryAfter: 1,
          })
        }
        meta = await store.registrations.getMeta(body.registration_id)
        continue
      }
      if (!admission.fresh) {
        throw new BrokerError(
          'replayed_token',
          'this encrypted_token was already used; every request must be freshly encrypted',
        )
      }
      if (!admission.rate.allowed)
        throw rateLimited(regKey, admission.rate.retryAfterMs, 'for this registration')
      remember(meta)
      const token =
        local === undefined
          ? await issuer.issue({ registration: meta, app: appScopes, scope, deadlineAt, cached })
          : issuer.served(meta, local)
      recordUsage(meta.id, request)
      return {
        access_token: token.accessToken,
        token_type: 'Bearer' as const,
        expires_in: Math.max(0, Math.floor((token.expiresAt - clock()) / 1000)),
        scope: token.scope,
        refresh_token: meta.tenantId,
      }
    }
  }

  app.post(
    '/obtain-token',
    {
      bodyLimit: 16 * 1024,
      attachValidation: true,
      schema: { body: obtainTokenBodySchema, response: obtainTokenResponseSchemas },
      // @fastify/helmet rebuilds its middleware from the options on every request (~10 % of this
      // route's CPU); this JSON endpoint sends a fixed, stricter set computed once instead.
      helmet: false,
      onRequest: (_request, reply, done) => {
        reply.headers(securityHeaders)
        done()
      },
    },
    async (request: FastifyRequest) => {
      const deadlineAt = clock() + config.tokens.responseDeadlineMs - DEADLINE_MARGIN_MS
      const appName = (request.body as { app_name?: unknown } | undefined)?.app_name
      const appLabel = typeof appName === 'string' && knownApps.has(appName) ? appName : 'unknown'
      try {
        const answer = await withDeadline(obtain(request, deadlineAt), deadlineAt - clock(), () => {
          return new BrokerError(
            'upstream_timeout',
            'no answer within the response deadline; try again shortly',
            {
              retryAfter: 5,
            },
          )
        })
        metrics.obtainTokenRequests.inc({ app: appLabel, outcome: 'success' })
        return answer
      } catch (error) {
        metrics.obtainTokenRequests.inc({ app: appLabel, outcome: toBrokerError(error).code })
        throw error
      }
    },
  )
}

/** Entry of the imported-Key cache: a registration's Key as of one version. */
function keyCacheKey(id: string, version: number): string {
  return `${id}\n${version}`
}

function rateLimitedError(retryAfterMs: number, what: string): BrokerError {
  return new BrokerError('rate_limited', `too many token requests ${what}; slow down`, {
    retryAfter: Math.max(1, Math.ceil(retryAfterMs / 1000)),
  })
}

function decodeOrThrow(encryptedToken: string): Buffer {
  try {
    return decodeEncryptedToken(encryptedToken)
  } catch (error) {
    throw cryptoError(error)
  }
}

function cryptoError(error: unknown): BrokerError {
  if (error instanceof ObtainTokenCryptoError) {
    return new BrokerError(error.reason === 'bad_key' ? 'invalid_key' : 'invalid_request', error.message)
  }
  return toBrokerError(error)
}

function describeValidation(
  error: Error & { validation?: Array<{ instancePath?: string; message?: string }> },
): string {
  const first = error.validation?.[0]
  if (first === undefined) return 'is invalid'
  const where = first.instancePath ? first.instancePath.replace(/^\//, '').replace(/\//g, '.') : 'body'
  return `${where} ${first.message ?? 'is invalid'}`.replace(/^body /, '')
}

/** `X-Content-Name/X-Content-Version`, printable and bounded; undefined when neither is sent. */
function clientOf(name: string | undefined, version: string | undefined): string | undefined {
  if (name === undefined && version === undefined) return undefined
  return clip(`${name ?? '?'}/${version ?? '?'}`, 160)
}

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name]
  const text = Array.isArray(value) ? value[0] : value
  return text === undefined || text === '' ? undefined : text
}
