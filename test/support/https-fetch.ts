// A `fetch` for tests that talk to a TLS endpoint with a certificate of their own: it trusts only
// the CA it is given (nothing is changed process-wide, so no other request trusts it), and can send
// from a chosen local address (e.g. 127.0.0.2, to tell the client's address from a proxy's).
// Plain http URLs go through the same code without TLS. Redirects are never followed.
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'

export interface TestFetchOptions {
  /** PEM of the certificate (or CA) to trust for https URLs; nothing else is trusted. */
  ca: string
  /** Local address to connect from (any 127.x.y.z works on Linux loopback). */
  localAddress?: string
}

function headerPairs(headers: RequestInit['headers']): Array<[string, string]> {
  if (headers === undefined) return []
  return [...new Headers(headers).entries()]
}

/** Builds a fetch-compatible function; `init.redirect` is ignored (always "manual"). */
export function createTestFetch(options: TestFetchOptions): typeof fetch {
  const testFetch = async (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    if (input instanceof Request) throw new TypeError('createTestFetch: pass a URL, not a Request')
    const url = new URL(String(input))
    const body = init.body
    if (body !== undefined && body !== null && typeof body !== 'string') {
      throw new TypeError('createTestFetch: only string bodies are supported')
    }
    const headers: Record<string, string> = {}
    for (const [name, value] of headerPairs(init.headers)) headers[name] = value
    if (typeof body === 'string') headers['content-length'] = String(Buffer.byteLength(body))
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest
    const answer = await new Promise<{ message: IncomingMessage; payload: Buffer }>((resolve, reject) => {
      const outgoing = request(
        url,
        {
          method: init.method ?? 'GET',
          headers,
          agent: false,
          ...(url.protocol === 'https:' ? { ca: options.ca } : {}),
          ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
        },
        (message) => {
          const chunks: Buffer[] = []
          message.on('data', (chunk: Buffer) => chunks.push(chunk))
          message.on('end', () => resolve({ message, payload: Buffer.concat(chunks) }))
          message.on('error', reject)
        },
      )
      outgoing.on('error', reject)
      if (typeof body === 'string') outgoing.write(body)
      outgoing.end()
    })
    const responseHeaders = new Headers()
    const raw = answer.message.rawHeaders
    for (let i = 0; i + 1 < raw.length; i += 2) responseHeaders.append(raw[i]!, raw[i + 1]!)
    const status = answer.message.statusCode ?? 0
    const noBody = status === 204 || status === 304 || init.method === 'HEAD'
    return new Response(noBody ? null : answer.payload, { status, headers: responseHeaders })
  }
  return testFetch as typeof fetch
}
