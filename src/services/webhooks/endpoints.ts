// Operators' webhook endpoints: add (the URL checked — https, or http on a loopback host with
// UNSAFE_ALLOW_HTTP; global unicast addresses only unless WEBHOOK_ALLOW_PRIVATE_ADDRESSES — and a
// `whsec_` secret made and shown once), list, remove, the deliveries of one endpoint and redelivery.
// Every change is audited; the audit keeps the URL without its query (it may carry a token).
import { randomBytes } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { Config } from '../../config.js'
import { webhookDeliveryNotFound, webhookEndpointNotFound, webhookEndpointRefused } from '../../errors.js'
import type { Store } from '../../store/types.js'
import type { Delivery, WebhookEndpoint } from '../../store/webhook-types.js'
import { type Actor, actorLabel, recordAudit } from '../audit.js'
import { checkHost, RefusedAddressError } from './address-guard.js'
import { newEndpointSecret } from './dispatcher.js'
import { WEBHOOK_EVENT_TYPES } from './events.js'

/** Endpoints an operator may configure. */
const MAX_ENDPOINTS = 50

/** What the endpoint service needs. */
export interface WebhookEndpointsDeps {
  readonly config: Config
  readonly store: Store
  readonly clock: () => number
  readonly log: FastifyBaseLogger
}

function isLoopbackHost(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(hostname)
}

/** The URL without query or fragment, for the audit trail and logs. */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url)
    return `${u.origin}${u.pathname}`
  } catch {
    return '(invalid URL)'
  }
}

/** Managing endpoints and their deliveries. */
export class WebhookEndpoints {
  readonly #deps: WebhookEndpointsDeps

  constructor(deps: WebhookEndpointsDeps) {
    this.#deps = deps
  }

  /** Adds an endpoint; answers its id and the secret (shown this once, stored sealed). */
  async add(
    input: { url: string; events?: readonly string[] },
    actor: Actor,
  ): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
    const { store, clock, log } = this.#deps
    const url = await this.#checkUrl(input.url)
    const events = [...new Set(input.events ?? [])]
    const unknown = events.filter((e) => !(WEBHOOK_EVENT_TYPES as readonly string[]).includes(e))
    if (unknown.length > 0)
      throw webhookEndpointRefused(
        `unknown event type ${unknown.map((e) => `"${e}"`).join(', ')} (known: ${WEBHOOK_EVENT_TYPES.join(', ')})`,
      )
    if ((await store.webhooks.listEndpoints()).length >= MAX_ENDPOINTS)
      throw webhookEndpointRefused(`at most ${MAX_ENDPOINTS} endpoints`)
    const endpoint: WebhookEndpoint = {
      id: `ep_${randomBytes(12).toString('hex')}`,
      url: url.toString(),
      events,
      createdAt: new Date(clock()).toISOString(),
      createdBy: actorLabel(actor),
    }
    const secret = newEndpointSecret()
    await store.webhooks.addEndpoint(endpoint, secret)
    await recordAudit(store, log, {
      type: 'webhook.added',
      actor: actorLabel(actor),
      detail: { endpointId: endpoint.id, url: displayUrl(endpoint.url), events: events.join(',') || '*' },
    })
    return { endpoint, secret }
  }

  async #checkUrl(raw: string): Promise<URL> {
    const { webhooks } = this.#deps.config
    let url: URL
    try {
      url = new URL(raw)
    } catch {
      throw webhookEndpointRefused('not a URL')
    }
    if (url.username !== '' || url.password !== '') throw webhookEndpointRefused('credentials in the URL')
    url.hash = ''
    if (url.protocol === 'http:') {
      if (!isLoopbackHost(url.hostname) || !webhooks.allowHttp)
        throw webhookEndpointRefused(
          'must be https (http only for loopback hosts with UNSAFE_ALLOW_HTTP=true)',
        )
    } else if (url.protocol !== 'https:') {
      throw webhookEndpointRefused('must be https')
    }
    try {
      await checkHost(url.hostname, webhooks.allowPrivateAddresses)
    } catch (error) {
      if (error instanceof RefusedAddressError) throw webhookEndpointRefused(error.message)
      throw webhookEndpointRefused(`${url.hostname} does not resolve`)
    }
    return url
  }

  list(): Promise<WebhookEndpoint[]> {
    return this.#deps.store.webhooks.listEndpoints()
  }

  async remove(id: string, actor: Actor): Promise<void> {
    const { store, log } = this.#deps
    const found = await store.webhooks.getEndpoint(id)
    if (found === null || !(await store.webhooks.removeEndpoint(id))) throw webhookEndpointNotFound(id)
    await recordAudit(store, log, {
      type: 'webhook.removed',
      actor: actorLabel(actor),
      detail: { endpointId: id, url: displayUrl(found.endpoint.url) },
    })
  }

  /** The latest deliveries of an endpoint, newest first. */
  async deliveries(id: string, limit = 50): Promise<Delivery[]> {
    const { store } = this.#deps
    if ((await store.webhooks.getEndpoint(id)) === null) throw webhookEndpointNotFound(id)
    return store.webhooks.listDeliveries(id, limit)
  }

  /** Sends a message to an endpoint again (same message id), now. */
  async redeliver(id: string, messageId: string, actor: Actor): Promise<void> {
    const { store, clock, log } = this.#deps
    if ((await store.webhooks.getEndpoint(id)) === null) throw webhookEndpointNotFound(id)
    if (!(await store.webhooks.redeliver(messageId, id, clock())))
      throw webhookDeliveryNotFound(id, messageId)
    await recordAudit(store, log, {
      type: 'webhook.redelivered',
      actor: actorLabel(actor),
      detail: { endpointId: id, messageId },
    })
  }
}
