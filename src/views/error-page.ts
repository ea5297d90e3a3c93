// The generic error page and the not-found page of browser paths (rendered by the one error handler).
import type { FastifyRequest } from 'fastify'
import type { BrokerError } from '../errors.js'
import { html } from './html.js'
import { page } from './layout.js'

function titleOf(error: BrokerError): string {
  if (error.statusCode === 404) return 'Not found'
  return error.statusCode >= 500 ? 'Something went wrong' : 'Request rejected'
}

/**
 * Generic HTML error page of a browser path (the consent flow renders its own, more specific
 * failure pages); a path no route answers gets the not-found page.
 */
export function renderErrorPage(error: BrokerError, request: FastifyRequest): string {
  if (request.is404 && error.code === 'not_found') return renderNotFoundPage()
  const title = titleOf(error)
  return page({
    title,
    body: html`<section class="card error">
<h1>${title}</h1>
<p>${error.message}</p>
<p class="muted">Request ID: <code>${request.id}</code></p>
<p><a href="/">Back to the list of apps</a></p>
</section>`,
  })
}

/** The page for a browser address that does not exist. */
export function renderNotFoundPage(): string {
  return page({
    title: 'Not found',
    body: html`<section class="card error">
<h1>Page not found</h1>
<p>There is no page at this address.</p>
<p><a href="/">See the list of apps</a></p>
</section>`,
  })
}
