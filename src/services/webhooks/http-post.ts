// One delivery attempt over HTTP: POST the signed body, read at most `maxResponseBytes` of the
// answer, give up after `timeoutMs` (connect, send and read together). Redirects are never
// followed (a 3xx is a failed attempt), and the connection only reaches addresses the guard
// allows (address-guard.ts), also for IP literals.
import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { isIP } from 'node:net'
import { guardedLookup, isPrivateAddress, RefusedAddressError } from './address-guard.js'

/** What one attempt did: a status when the endpoint answered, an error in words otherwise. */
export interface PostOutcome {
  readonly ok: boolean
  readonly statusCode?: number
  readonly error?: string
}

/** One attempt's settings. */
export interface PostOptions {
  readonly timeoutMs: number
  readonly maxResponseBytes: number
  readonly allowPrivateAddresses: boolean
}

/** POSTs `body` to `url` with `headers`; never throws. */
export function postOnce(
  url: string,
  headers: Record<string, string>,
  body: string,
  options: PostOptions,
): Promise<PostOutcome> {
  return new Promise((resolve) => {
    let settled = false
    let timer: NodeJS.Timeout | undefined
    const finish = (outcome: PostOutcome) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resolve(outcome)
    }
    let target: URL
    try {
      target = new URL(url)
    } catch {
      finish({ ok: false, error: 'invalid URL' })
      return
    }
    const host = target.hostname.replace(/^\[|\]$/g, '')
    if (isIP(host) !== 0 && !options.allowPrivateAddresses && isPrivateAddress(host)) {
      finish({ ok: false, error: `refused: ${host} is a private or loopback address` })
      return
    }
    const send = target.protocol === 'https:' ? httpsRequest : httpRequest
    const req = send(target, {
      method: 'POST',
      headers: {
        ...headers,
        'content-type': 'application/cloudevents+json; charset=utf-8',
        'content-length': String(Buffer.byteLength(body)),
        'user-agent': 'consent-broker-webhooks',
      },
      lookup: guardedLookup(options.allowPrivateAddresses) as never,
      agent: false,
    })
    timer = setTimeout(() => {
      req.destroy()
      finish({ ok: false, error: `timed out after ${options.timeoutMs} ms` })
    }, options.timeoutMs)
    req.on('error', (error) => {
      const why = error instanceof RefusedAddressError ? `refused: ${error.message}` : error.message
      finish({ ok: false, error: why.slice(0, 300) })
    })
    req.on('response', (res) => {
      const status = res.statusCode ?? 0
      let read = 0
      res.on('data', (chunk: Buffer) => {
        read += chunk.length
        // the answer is not needed beyond its status: a huge one is cut off, not buffered
        if (read > options.maxResponseBytes) {
          res.destroy()
          req.destroy()
          report()
        }
      })
      res.on('end', () => report())
      res.on('error', () => report())
      res.on('close', () => report())
      const report = () => {
        if (status >= 200 && status < 300) finish({ ok: true, statusCode: status })
        else if (status >= 300 && status < 400)
          finish({ ok: false, statusCode: status, error: 'redirect not followed' })
        else finish({ ok: false, statusCode: status, error: `HTTP ${status}` })
      }
    })
    req.end(body)
  })
}
