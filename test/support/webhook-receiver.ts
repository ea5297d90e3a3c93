// A real HTTP receiver for webhook tests: records every request it gets (time, headers, body),
// verifies each signature with the `standardwebhooks` verifier once the endpoint's secret is
// known, and answers the way the test says (ok, 500, hang, redirect, huge body, slow body).
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Webhook } from 'standardwebhooks'

export type ReceiverMode = 'ok' | 'error' | 'hang' | 'redirect' | 'huge' | 'slow'

export interface ReceivedRequest {
  readonly at: number
  readonly path: string
  readonly headers: IncomingMessage['headers']
  readonly body: string
  /** True when the signature verified with the secret (false: it did not; undefined: no secret). */
  readonly verified: boolean | undefined
  /** The parsed CloudEvent. */
  readonly event: { id: string; type: string; data: Record<string, unknown>; [k: string]: unknown }
}

export interface WebhookReceiver {
  readonly url: string
  readonly received: ReceivedRequest[]
  mode: ReceiverMode
  secret: string | undefined
  /** Requests answered 2xx (the ones the broker counts as delivered). */
  delivered(): ReceivedRequest[]
  /** Waits until `predicate` holds over the received requests (polls), or throws after `timeoutMs`. */
  waitFor(predicate: (received: ReceivedRequest[]) => boolean, timeoutMs?: number): Promise<void>
  close(): Promise<void>
}

/** Starts a receiver on 127.0.0.1 (a free port). */
export async function startReceiver(initialMode: ReceiverMode = 'ok'): Promise<WebhookReceiver> {
  const received: ReceivedRequest[] = []
  const answered = new Set<ReceivedRequest>()
  const hanging = new Set<() => void>()
  let server: Server | undefined
  const receiver: WebhookReceiver = {
    url: '',
    received,
    mode: initialMode,
    secret: undefined,
    delivered: () => received.filter((r) => answered.has(r)),
    async waitFor(predicate, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs
      while (!predicate(received)) {
        if (Date.now() > deadline)
          throw new Error(`receiver: condition not met in ${timeoutMs} ms (${received.length} received)`)
        await new Promise((r) => setTimeout(r, 25))
      }
    },
    async close() {
      for (const release of hanging) release()
      server?.closeAllConnections()
      await new Promise<void>((resolve) => server?.close(() => resolve()))
    },
  }
  server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      let verified: boolean | undefined
      if (receiver.secret !== undefined) {
        try {
          new Webhook(receiver.secret).verify(body, req.headers as Record<string, string>)
          verified = true
        } catch {
          verified = false
        }
      }
      const entry: ReceivedRequest = {
        at: Date.now(),
        path: req.url ?? '/',
        headers: req.headers,
        body,
        verified,
        event: JSON.parse(body) as ReceivedRequest['event'],
      }
      received.push(entry)
      switch (receiver.mode) {
        case 'ok':
          answered.add(entry)
          res.writeHead(204).end()
          return
        case 'error':
          res.writeHead(500, { 'content-type': 'text/plain' }).end('down')
          return
        case 'redirect':
          res.writeHead(302, { location: `${receiver.url}/elsewhere` }).end()
          return
        case 'hang': {
          // never answers; released when the broker gives up or the receiver closes
          const release = () => res.destroy()
          hanging.add(release)
          res.on('close', () => hanging.delete(release))
          return
        }
        case 'huge': {
          answered.add(entry)
          res.writeHead(200, { 'content-type': 'text/plain' })
          const block = Buffer.alloc(64 * 1024, 'x')
          // endless body: the broker must stop reading it
          const pump = () => {
            while (res.write(block)) {
              if (res.destroyed) return
            }
            if (!res.destroyed) res.once('drain', pump)
          }
          res.on('close', () => res.removeAllListeners('drain'))
          pump()
          return
        }
        case 'slow': {
          answered.add(entry)
          res.writeHead(200, { 'content-type': 'text/plain' })
          const timer = setInterval(() => res.write('.'), 200)
          res.on('close', () => clearInterval(timer))
          return
        }
      }
    })
  })
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', () => resolve()))
  const port = (server.address() as AddressInfo).port
  ;(receiver as { url: string }).url = `http://127.0.0.1:${port}`
  return receiver
}
