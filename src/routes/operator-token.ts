// The operator's bearer token on HTTP routes (the operator API, /metrics): checked against the
// configured hashes (services/operator-auth.ts), with refused tokens throttled per address across
// instances (in the store). /metrics still answers a valid token while the store is down, with this
// instance counting refused tokens meanwhile.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { BoundedCache } from '../bounded-cache.js'
import { type BrokerError, isStoreOutage, operatorTokenInvalid, rateLimited } from '../errors.js'
import { authenticateOperator } from '../services/operator-auth.js'
import type { Store } from '../store/types.js'

/** Wrong (or missing) operator tokens one address may send per window, every instance counting. */
const REFUSED_TOKENS_PER_WINDOW = 10
const REFUSED_TOKENS_WINDOW_MS = 60_000

/** Refused tokens per address in the current window, counted by this instance alone. */
interface LocalRefusals {
  count: number
  windowEnds: number
}

/**
 * The refused-token throttle while the store can't be read (acceptDuringStoreOutage): the same
 * budget per address and window, counted per instance, so an outage is no time to guess in. One per
 * store, i.e. per app.
 */
const refusedDuringOutage = new WeakMap<Store, BoundedCache<LocalRefusals>>()

function localRefusals(store: Store): BoundedCache<LocalRefusals> {
  let refusals = refusedDuringOutage.get(store)
  if (refusals === undefined) {
    refusals = new BoundedCache<LocalRefusals>({ maxEntries: 10_000, ttlMs: REFUSED_TOKENS_WINDOW_MS })
    refusedDuringOutage.set(store, refusals)
  }
  return refusals
}

/** How a route asks for the operator's token (see requireOperator). */
export interface OperatorTokenOptions {
  /** The 401 of a missing or wrong token; default `operator_token_invalid`. */
  refused?: () => BrokerError
  /**
   * Whether a valid token is still accepted while the store (holding the throttle) can't be
   * reached. Only for routes that need no store themselves: /metrics, whose scrape must go on
   * reporting `consent_broker_ready 0` through a Redis outage, or the outage alert never fires.
   */
  acceptDuringStoreOutage?: boolean
}

/**
 * The operator named by the request's bearer token; else 401 with `WWW-Authenticate`. Used by the
 * operator API's onRequest hook, by `GET /metrics`, and by the not-found handler and the router's
 * own refusals for paths under `/admin/api`, so an unknown path or method there is refused before
 * it is answered 404 or 405.
 *
 * Refused tokens are throttled per address across instances, as the console sign-in is: past
 * REFUSED_TOKENS_PER_WINDOW in a window, the address is answered 429 for the rest of the window
 * *before* its token is looked at, so a blocked guesser learns nothing from its next guesses.
 * When the store can't be reached the throttle can't be read either: the request fails with the
 * store outage (503), except that with `acceptDuringStoreOutage` a valid token still passes; a
 * wrong one still fails with the outage, never a 401 (the shared count can't be kept), and is
 * counted by this instance, which answers 429 past the same budget.
 */
export async function requireOperator(
  app: Pick<FastifyInstance, 'config' | 'store'>,
  request: FastifyRequest,
  reply: FastifyReply,
  options: OperatorTokenOptions = {},
): Promise<string> {
  const { refused = operatorTokenInvalid, acceptDuringStoreOutage = false } = options
  const blockedKey = `admin-api-blocked:${request.ip}`
  let blockedUntil: string | null
  try {
    blockedUntil = await app.store.ephemeral.get(blockedKey)
  } catch (error) {
    if (!acceptDuringStoreOutage || !isStoreOutage(error)) throw error
    const refusals = localRefusals(app.store)
    const now = Date.now()
    const counted = refusals.get(request.ip)
    const current = counted !== undefined && counted.windowEnds > now ? counted : undefined
    if (current !== undefined && current.count >= REFUSED_TOKENS_PER_WINDOW) {
      throw tooManyRefusedTokens(current.windowEnds - now)
    }
    const operator = authenticateOperator(app.config, request.headers.authorization)
    if (operator === undefined) {
      refusals.set(request.ip, {
        count: (current?.count ?? 0) + 1,
        windowEnds: current?.windowEnds ?? now + REFUSED_TOKENS_WINDOW_MS,
      })
      throw error
    }
    request.log.warn(
      { ip: request.ip },
      'operator token accepted with this instance counting refused tokens (store unreachable)',
    )
    return operator
  }
  if (blockedUntil !== null) throw tooManyRefusedTokens(Number(blockedUntil) - Date.now())
  const operator = authenticateOperator(app.config, request.headers.authorization)
  if (operator !== undefined) return operator
  request.log.info({ ip: request.ip }, 'operator token refused')
  const counted = await app.store.rateLimiter.hit(
    `admin-api-refused:${request.ip}`,
    REFUSED_TOKENS_PER_WINDOW,
    REFUSED_TOKENS_WINDOW_MS,
  )
  if (!counted.allowed) {
    await app.store.ephemeral.put(blockedKey, String(Date.now() + counted.retryAfterMs), counted.retryAfterMs)
    throw tooManyRefusedTokens(counted.retryAfterMs)
  }
  reply.header('www-authenticate', 'Bearer realm="consent-broker operators"')
  throw refused()
}

function tooManyRefusedTokens(retryAfterMs: number) {
  return rateLimited(
    'too many wrong operator tokens from this address; wait a minute',
    Math.max(1, retryAfterMs) / 1000,
  )
}
