// consent-broker-admin's HTTP client for the operator API: the operator token as a bearer token, a
// timeout per request, and every refusal or unreachable broker turned into a CliError with the exit
// code it calls for (401/403 auth, 404 not found, 400/413/414/431 usage, anything else server); an
// answer that is not the broker's (another service at the URL) is one from an unreachable broker.
import type { CliIo } from './command-context.js'
import { CliError, EXIT } from './exit-codes.js'
import { printable } from './table.js'

/** A JSON object as the broker answers it. */
export type Json = Record<string, unknown>

export interface Client {
  get(path: string): Promise<Json>
  post(path: string, body?: Json): Promise<Json>
  patch(path: string, body: Json): Promise<Json>
  delete(path: string): Promise<Json>
}

const REQUEST_TIMEOUT_MS = 30_000

/**
 * 413, 414 and 431: the request was too large — a body, an id in the path, a header — as the
 * command line made it, so the operator's to change like a 400.
 */
const TOO_LARGE: readonly number[] = [413, 414, 431]

function exitCodeFor(status: number): number {
  if (status === 401 || status === 403) return EXIT.auth
  if (status === 404) return EXIT.notFound
  if (status === 400 || TOO_LARGE.includes(status)) return EXIT.usage
  return EXIT.server
}

/** Error codes of a failed connection (Node's and undici's), in words. */
const FAILURE_CODES: Record<string, string> = {
  ECONNREFUSED: 'connection refused (is the broker running, on that host and port?)',
  ENOTFOUND: 'the host name does not resolve (DNS)',
  EAI_AGAIN: 'the host name could not be resolved now (DNS)',
  ECONNRESET: 'the connection was reset',
  UND_ERR_SOCKET: 'the connection closed before an answer',
  ETIMEDOUT: 'connecting timed out',
  UND_ERR_CONNECT_TIMEOUT: 'connecting timed out',
  UND_ERR_HEADERS_TIMEOUT: 'no answer in time',
  UND_ERR_BODY_TIMEOUT: 'the answer stopped arriving',
  EHOSTUNREACH: 'the host is unreachable',
  ENETUNREACH: 'the network is unreachable',
}

/** The code of a fetch failure's cause (the first of an AggregateError's, as for `localhost`). */
function causeCode(error: unknown): string | undefined {
  const cause = (error as { cause?: unknown } | null)?.cause as
    | { code?: unknown; errors?: Array<{ code?: unknown }> }
    | undefined
  const code = cause?.code ?? cause?.errors?.[0]?.code
  return typeof code === 'string' ? code : undefined
}

/**
 * Why a request failed, in words made from the error's name and cause code only: fetch's messages
 * can repeat the request — an invalid header with the operator token in it, a URL with its
 * password — so none is printed. An unknown code is shown only when it has a code's form.
 */
export function fetchFailure(error: unknown): string {
  const name = (error as { name?: unknown } | null)?.name
  if (name === 'TimeoutError') return `no answer within ${REQUEST_TIMEOUT_MS / 1000} s`
  if (name === 'AbortError') return 'the request was aborted'
  const code = causeCode(error)
  if (code !== undefined && FAILURE_CODES[code] !== undefined) return FAILURE_CODES[code]
  if (code !== undefined && /^(ERR_SSL_|ERR_TLS_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_)/.test(code))
    return `TLS failed (${code}): check the URL's scheme and the broker's certificate`
  if (code?.startsWith('HPE_')) return `the answer is not HTTP (${code}): check the URL's scheme and port`
  // undici refuses the ports the fetch standard blocks with this fixed message (and no code)
  if ((error as { cause?: { message?: unknown } } | null)?.cause?.message === 'bad port')
    return 'fetch refuses to connect to this port (one reserved for other protocols)'
  return code !== undefined && /^[A-Z][A-Z0-9_]{1,40}$/.test(code)
    ? `the request failed (${code})`
    : 'the request failed'
}

/** The broker's error answer, `{"error":{"code":…,"message":…}}` as JSON; undefined for any other. */
function brokerError(
  response: Response,
  parsed: Json | undefined,
): { code: string; message: string } | undefined {
  const type = response.headers.get('content-type') ?? ''
  if (!/^application\/([\w.-]+\+)?json\s*(;|$)/i.test(type)) return undefined
  const error = parsed?.error
  if (!isObject(error) || typeof error.code !== 'string' || typeof error.message !== 'string')
    return undefined
  return { code: error.code, message: error.message }
}

/**
 * Said when the base URL ends in /admin/api or /admin (copied from the console or the API docs):
 * every request path already starts with admin/api.
 */
function adminPathHint(baseUrl: string): string {
  const base = new URL(baseUrl)
  const path = base.pathname.replace(/\/+$/, '')
  const root = path.replace(/\/admin(\/api)?$/, '')
  if (root === path) return ''
  return `\ngive the broker's base URL (${base.origin}${root}), without ${path.slice(root.length)}`
}

/**
 * The error for an answer that is not the broker's (another service at the URL, a wrong path): it
 * names the URL requested — without query (it can hold a cursor) or credentials (brokerUrl refuses
 * them anyway) —, the status and the content type, as a failure to reach the broker.
 */
function notTheBroker(method: string, url: URL, baseUrl: string, response: Response): CliError {
  const type = response.headers.get('content-type')
  const shownType = type === null ? 'no content type' : printable(type.slice(0, 60))
  const proxied = [502, 503, 504].includes(response.status)
    ? ' (or a proxy in front of it could not reach it)'
    : ''
  return new CliError(
    `${printable(baseUrl)} does not look like a consent-broker${proxied}: ${method} ${printable(url.origin + url.pathname)} answered HTTP ${response.status} (${shownType}) without the broker's JSON error${adminPathHint(baseUrl)}`,
    EXIT.server,
  )
}

export function makeClient(baseUrl: string, token: string, io: CliIo): Client {
  const call = async (
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
    path: string,
    body?: Json,
  ): Promise<Json> => {
    let response: Response
    const url = new URL(path, `${baseUrl}/`)
    try {
      response = await io.fetch(url, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      })
    } catch (error) {
      throw new CliError(`cannot reach the broker at ${baseUrl}: ${fetchFailure(error)}`, EXIT.server)
    }
    const text = await response.text()
    let parsed: Json | undefined
    try {
      parsed = JSON.parse(text) as Json
    } catch {
      parsed = undefined
    }
    if (!response.ok) {
      const error = brokerError(response, parsed)
      // 413, 414 and 431 say the request was too large whoever answers (a proxy in front of the broker)
      if (error === undefined && !TOO_LARGE.includes(response.status))
        throw notTheBroker(method, url, baseUrl, response)
      const detail = error === undefined ? `HTTP ${response.status}` : `${error.code}: ${error.message}`
      // The broker's own 404 under a base URL ending in /admin/api: no route there, so nothing was
      // looked up: not "not found" (exit 3 would tell a script the registration is gone).
      const hint = response.status === 404 ? adminPathHint(baseUrl) : ''
      throw new CliError(
        `the broker refused the request: ${printable(detail)}${hint}`,
        hint === '' ? exitCodeFor(response.status) : EXIT.server,
      )
    }
    if (response.status === 204) return {}
    if (parsed === undefined) throw notTheBroker(method, url, baseUrl, response)
    if (!isObject(parsed))
      throw new CliError(`the broker answered HTTP ${response.status} without a JSON object`, EXIT.server)
    return parsed
  }
  return {
    get: (path) => call('GET', path),
    post: (path, body) => call('POST', path, body),
    patch: (path, body) => call('PATCH', path, body),
    delete: (path) => call('DELETE', path),
  }
}

const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

/**
 * The answer's unexpected shape as a `server` error: commands read fields through objectField and
 * arrayField, so an answer without them (another service at the URL, another version of the API)
 * is reported as such instead of failing as a TypeError.
 */
const unexpected = (name: string, what: string) =>
  new CliError(`unexpected answer from the broker: "${printable(name)}" is not ${what}`, EXIT.server)

/** `body[name]`, a JSON object. */
export function objectField(body: Json, name: string): Json {
  const value = body[name]
  if (!isObject(value)) throw unexpected(name, 'an object')
  return value
}

/** `body[name]`, an array of JSON objects. */
export function arrayField(body: Json, name: string): Json[] {
  const value = body[name]
  if (!Array.isArray(value) || !value.every(isObject)) throw unexpected(name, 'a list of objects')
  return value
}

/** A query string (`?a=1&b=2`, or empty) from the parameters that are set. */
export function query(params: Record<string, string | undefined>): string {
  const search = new URLSearchParams()
  for (const [name, value] of Object.entries(params)) if (value !== undefined) search.set(name, value)
  const encoded = search.toString()
  return encoded === '' ? '' : `?${encoded}`
}

/**
 * One page of an operator API listing, or every page with `all`, from `cursor` on: `url` names each
 * page's request (`first` for parameters sent with the first request only), `field` holds the items.
 * `nextCursor` is the cursor after the last page read (undefined at the end).
 */
export async function readPages(
  client: Client,
  url: (cursor: string | undefined, first: boolean) => string,
  field: string,
  options: { all: boolean; cursor?: string | undefined },
): Promise<{ items: Json[]; nextCursor: string | undefined }> {
  const items: Json[] = []
  let cursor = options.cursor
  let first = true
  do {
    const page = await client.get(url(cursor, first))
    first = false
    items.push(...arrayField(page, field))
    cursor = typeof page.nextCursor === 'string' ? page.nextCursor : undefined
  } while (options.all && cursor !== undefined)
  return { items, nextCursor: cursor }
}
