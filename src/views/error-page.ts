// The generic error page and the not-found page of browser paths (rendered by the one error handler).
import type { FastifyRequest } from 'fastify'
import { type BrokerError, pathOf } from '../errors.js'
import { html, type SafeHtml } from './html.js'
import { page } from './layout.js'

function titleOf(error: BrokerError): string {
  if (error.statusCode === 404) return 'Not found'
  return error.statusCode >= 500 ? 'Something went wrong' : 'Request rejected'
}

/**
 * A path of the console (`/admin…`). Its API, `/admin/api…`, answers JSON and never gets a page.
 */
function isConsolePath(path: string): boolean {
  return path === '/admin' || path.startsWith('/admin/')
}

/** A console path as our own forms post to it: no query, no escapes, nothing but plain segments. */
const PLAIN_CONSOLE_PATH = /^\/admin(?:\/[A-Za-z0-9._~-]+)+$/

/**
 * The page's way on. On the console's paths it stays in the console: a refused form goes back to
 * its page when one answers GET at the same route, else the console itself, which sends a visitor
 * without a session to the sign-in page. Anywhere else, the list of apps.
 */
function wayBack(request: FastifyRequest): SafeHtml {
  const path = pathOf(request.url)
  if (!isConsolePath(path)) return html`<a href="/">Back to the list of apps</a>`
  const route = request.is404 ? undefined : request.routeOptions.url
  if (
    request.method === 'POST' &&
    route !== undefined &&
    PLAIN_CONSOLE_PATH.test(path) &&
    request.server.hasRoute({ method: 'GET', url: route })
  ) {
    return html`<a href="${path}">Back to the form</a>`
  }
  return html`<a href="/admin">Back to the console</a>`
}

/**
 * Generic HTML error page of a browser path (the consent flow renders its own, more specific
 * failure pages); a path no route answers gets the not-found page.
 */
export function renderErrorPage(error: BrokerError, request: FastifyRequest): string {
  if (request.is404 && error.code === 'not_found') return renderNotFoundPage(request)
  const title = titleOf(error)
  return page({
    title,
    body: html`<section class="card error">
<h1>${title}</h1>
<p>${error.message}</p>
<p class="muted">Request ID: <code>${request.id}</code></p>
<p>${wayBack(request)}</p>
</section>`,
  })
}

/** The page for a browser address that does not exist. */
export function renderNotFoundPage(request: FastifyRequest): string {
  return page({
    title: 'Not found',
    body: html`<section class="card error">
<h1>Page not found</h1>
<p>There is no page at this address.</p>
<p>${isConsolePath(pathOf(request.url)) ? html`<a href="/admin">Back to the console</a>` : html`<a href="/">See the list of apps</a>`}</p>
</section>`,
  })
}
