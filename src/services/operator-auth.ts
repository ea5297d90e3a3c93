// Operator authentication: `Authorization: Bearer <token>`, of the form operator-token-form.ts
// defines, checked against the configured SHA-256 hashes. Every configured hash is compared (no
// early exit) with timingSafeEqual, so neither the answer time nor the answer itself says which
// operator, if any, came close. The console signs an operator in with the same token and keeps them
// in a browser session (consoleSessions), bound to that token: once an instance runs a configuration
// without the operator, or with another token for them, it ends their sessions at their next request.
import { createHash, timingSafeEqual } from 'node:crypto'
import type { Config } from '../config.js'
import { isOperatorTokenForm } from '../operator-token-form.js'
import type { Store } from '../store/types.js'
import { actorLabel } from './audit.js'
import { BrowserSessions } from './browser-sessions.js'

/** The token of a `Bearer` authorization header, or undefined when there is none. */
export function bearerToken(authorization: string | undefined): string | undefined {
  if (authorization === undefined) return undefined
  const match = /^Bearer[ ]+([^\s]+)[ ]*$/i.exec(authorization)
  return match?.[1]
}

/** The operator whose token this is, or undefined. Constant time in the number of operators. */
export function operatorForToken(
  config: Pick<Config, 'operatorTokens'>,
  token: string | undefined,
): string | undefined {
  // Only a token of the form the configuration accepts is compared (operator-token-form.ts).
  const wellFormed = token !== undefined && isOperatorTokenForm(token)
  // Hash even when there is nothing to compare, so a missing token costs what a wrong one costs.
  const candidate = createHash('sha256')
    .update(wellFormed ? token : '', 'utf8')
    .digest()
  let found: string | undefined
  for (const operator of config.operatorTokens) {
    const expected = Buffer.from(operator.sha256, 'hex')
    const equal = expected.length === candidate.length && timingSafeEqual(expected, candidate)
    if (equal && found === undefined) found = operator.name
  }
  if (!wellFormed) return undefined
  return found
}

/** The operator named by an `Authorization` header, or undefined (no token, wrong token, other scheme). */
export function authenticateOperator(
  config: Pick<Config, 'operatorTokens'>,
  authorizationHeader: string | undefined,
): string | undefined {
  return operatorForToken(config, bearerToken(authorizationHeader))
}

/** Who a console session belongs to. */
export interface OperatorIdentity {
  /** The operator's configured name. */
  operator: string
}

/** How long a console session lasts. */
export const CONSOLE_SESSION_TTL_MS = 8 * 3_600_000

/**
 * The admin console's sessions: one per signed-in operator, audited as `operator.signed_in/out`.
 * Each is bound to the operator's configured token hash at sign-in and read only while `config`
 * still gives the operator that hash: a token leak ends with the token's removal or rotation (and
 * the restart that applies it), not 8 hours later.
 */
export function consoleSessions(
  store: Pick<Store, 'ephemeral' | 'audit'>,
  clock: () => number,
  config: Pick<Config, 'operatorTokens'>,
): BrowserSessions<OperatorIdentity> {
  const event = (type: 'operator.signed_in' | 'operator.signed_out', identity: OperatorIdentity) => ({
    type,
    actor: actorLabel({ kind: 'operator', name: identity.operator }),
    detail: { via: 'console' },
  })
  return new BrowserSessions<OperatorIdentity>(store, clock, {
    namespace: 'admin-session',
    ttlMs: CONSOLE_SESSION_TTL_MS,
    signedIn: (identity) => event('operator.signed_in', identity),
    signedOut: (identity) => event('operator.signed_out', identity),
    // Hex of either case names the same token (configuration lower-cases it already).
    credential: (identity) =>
      config.operatorTokens.find((entry) => entry.name === identity.operator)?.sha256.toLowerCase(),
  })
}
