// A tenant administrator replaces their own app's client secret (from `/{app}/manage`) without a
// new Key: the new secret is checked with Microsoft first (a client-credentials request at the
// tenant), then sealed in place of the old one with compare-and-set; the integration's ID, Token
// and Key stay as they are.
import type { FastifyBaseLogger } from 'fastify'
import { type Config, findApp, resolveApp } from '../config.js'
import type { IdentityProvider } from '../entra/types.js'
import { CONFLICT, retryOnConflict } from '../store/compare-and-set.js'
import type { Store } from '../store/types.js'
import { type Actor, actorLabel, recordAudit } from './audit.js'
import { checkOwnAppSecret, ownAppResolved } from './own-app.js'

/** `replaced`; `rejected` (Microsoft refused the new secret: nothing changed); `not_applicable`. */
export type SecretReplacement = 'replaced' | 'rejected' | 'not_applicable'

/**
 * Replaces the client secret of the tenant's own app behind registration `input.id`, once Microsoft
 * accepted it (a client-credentials request at the tenant); audited. `not_applicable` for anything
 * but an own-app registration of that tenant and app that is not revoked (nothing said about it).
 */
export async function replaceOwnAppSecret(
  deps: { config: Config; store: Store; idp: IdentityProvider; log: FastifyBaseLogger },
  input: { id: string; tenantId: string; app: string; clientSecret: string; actor: Actor },
): Promise<SecretReplacement> {
  const { config, store, idp, log } = deps
  const secret = input.clientSecret.trim()
  const meta = await store.registrations.getMeta(input.id)
  // Another tenant's or app's registration, a hosted-app one, a public client or a revoked one:
  // nothing to replace (and nothing said about it).
  const ownClientId = meta?.ownClientId
  if (
    meta === null ||
    ownClientId === undefined ||
    meta.tenantId !== input.tenantId ||
    meta.app !== input.app ||
    meta.status === 'revoked' ||
    secret === ''
  )
    return 'not_applicable'
  const app = findApp(config, meta.app)
  const hosted = app === undefined ? undefined : resolveApp(config, app, meta.cloud)
  if (hosted === undefined) return 'not_applicable'
  const own = ownAppResolved(hosted, { tenantId: meta.tenantId, clientId: ownClientId, clientSecret: secret })
  const checked = await checkOwnAppSecret(idp, own, meta.tenantId)
  if (!checked.ok) {
    log.info({ registrationId: meta.id, upstream: checked.error.label }, 'own app client secret refused')
    return 'rejected'
  }
  const outcome = await retryOnConflict({ attempts: 5 }, async () => {
    const current = await store.registrations.getMeta(meta.id)
    if (current === null || current.status === 'revoked') return false
    const updated = await store.registrations.update(
      current.id,
      current.version,
      {},
      { clientSecret: secret },
    )
    return updated === null ? CONFLICT : true
  })
  if (outcome !== true) return 'not_applicable'
  await recordAudit(store, log, {
    type: 'registration.client_secret_replaced',
    actor: actorLabel(input.actor),
    tenantId: meta.tenantId,
    app: meta.app,
    registrationId: meta.id,
    detail: { own_client_id: ownClientId },
  })
  return 'replaced'
}
