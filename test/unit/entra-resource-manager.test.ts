// The Resource Manager client: what it reads from ARM's two listings, and how each failure maps to a
// kind (never a throw of anything else), against a local stand-in server.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { createResourceManager, ResourceManagerError } from '../../src/entra/resource-manager.js'
import { testConfig } from '../support/config.js'

type Handler = (request: IncomingMessage, response: ServerResponse) => void
let server: Server
let base: string
const handlers = new Map<string, Handler>()
const seen: Array<{ path: string; authorization: string | undefined }> = []

const SUB_A = '11111111-1111-4111-8111-111111111111'
const SUB_B = '22222222-2222-4222-8222-222222222222'

function json(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))
}

beforeAll(async () => {
  server = createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://x').pathname
    seen.push({ path: request.url ?? '', authorization: request.headers.authorization })
    const handler = handlers.get(path)
    if (handler === undefined) return json(response, 404, { error: { code: 'NotFound', message: 'no' } })
    handler(request, response)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

afterAll(async () => {
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
})

beforeEach(() => {
  handlers.clear()
  seen.length = 0
})

function manager(options: Parameters<typeof createResourceManager>[1] = {}) {
  return createResourceManager(
    testConfig({ authorityUrl: base, env: { RESOURCE_MANAGER_URL_USGOV: base } }),
    options,
  )
}

async function failure(promise: Promise<unknown>): Promise<ResourceManagerError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(ResourceManagerError)
  return error as ResourceManagerError
}

describe('Resource Manager listings', () => {
  it('lists subscriptions with their resource groups at the cloud URL, with the bearer token', async () => {
    handlers.set('/subscriptions', (_q, r) =>
      json(r, 200, {
        value: [
          { subscriptionId: SUB_A.toUpperCase(), displayName: 'A', state: 'Enabled' },
          { subscriptionId: '../../evil', displayName: 'not a GUID', state: 'Enabled' },
          { subscriptionId: SUB_B, displayName: 'B', state: 'Warned' },
        ],
      }),
    )
    handlers.set(`/subscriptions/${SUB_A}/resourcegroups`, (_q, r) =>
      json(r, 200, { value: [{ name: 'rg-1' }, { name: 'rg-2' }, { name: 'rg-3' }], nextLink: null }),
    )
    handlers.set(`/subscriptions/${SUB_B}/resourcegroups`, (_q, r) =>
      json(r, 403, { error: { code: 'AuthorizationFailed', message: 'no' } }),
    )
    const listing = await manager({ maxResourceGroups: 2 }).listSubscriptions('usgov', 'the-token')
    expect(listing).toEqual({
      more: false,
      subscriptions: [
        {
          subscriptionId: SUB_A,
          displayName: 'A',
          state: 'Enabled',
          resourceGroups: ['rg-1', 'rg-2'],
          moreResourceGroups: true,
        },
        {
          subscriptionId: SUB_B,
          displayName: 'B',
          state: 'Warned',
          resourceGroups: undefined,
          moreResourceGroups: false,
        },
      ],
    })
    expect(new Set(seen.map((s) => s.path))).toEqual(
      new Set([
        '/subscriptions?api-version=2022-12-01',
        `/subscriptions/${SUB_A}/resourcegroups?api-version=2021-04-01`,
        `/subscriptions/${SUB_B}/resourcegroups?api-version=2021-04-01`,
      ]),
    )
    expect(new Set(seen.map((s) => s.authorization))).toEqual(new Set(['Bearer the-token']))
  })

  it('says when more subscriptions exist than it lists', async () => {
    handlers.set('/subscriptions', (_q, r) =>
      json(r, 200, {
        value: [
          { subscriptionId: SUB_A, displayName: 'A', state: 'Enabled' },
          { subscriptionId: SUB_B, displayName: 'B', state: 'Enabled' },
        ],
      }),
    )
    handlers.set(`/subscriptions/${SUB_A}/resourcegroups`, (_q, r) => json(r, 200, { value: [] }))
    const listing = await manager({ maxSubscriptions: 1 }).listSubscriptions('usgov', 't')
    expect(listing.more).toBe(true)
    expect(listing.subscriptions.map((s) => s.subscriptionId)).toEqual([SUB_A])
  })

  it('maps 401, 403, 5xx, a bad body, a refused connection and a slow answer to their kinds', async () => {
    handlers.set('/subscriptions', (_q, r) =>
      json(r, 401, { error: { code: 'InvalidAuthenticationTokenAudience', message: 'wrong audience' } }),
    )
    const unauthorized = await failure(manager().listSubscriptions('usgov', 't'))
    expect([unauthorized.kind, unauthorized.code, unauthorized.status]).toEqual([
      'unauthorized',
      'InvalidAuthenticationTokenAudience',
      401,
    ])
    handlers.set('/subscriptions', (_q, r) =>
      json(r, 403, { error: { code: 'AuthorizationFailed', message: 'x' } }),
    )
    expect((await failure(manager().listSubscriptions('usgov', 't'))).kind).toBe('forbidden')
    handlers.set('/subscriptions', (_q, r) => r.writeHead(503).end('busy'))
    expect((await failure(manager().listSubscriptions('usgov', 't'))).kind).toBe('unavailable')
    handlers.set('/subscriptions', (_q, r) => json(r, 200, { nothing: true }))
    expect((await failure(manager().listSubscriptions('usgov', 't'))).kind).toBe('invalid')
    handlers.set('/subscriptions', () => {
      // never answers
    })
    expect((await failure(manager({ timeoutMs: 200 }).listSubscriptions('usgov', 't'))).kind).toBe('timeout')
    const refused = createResourceManager(
      testConfig({ authorityUrl: base, env: { RESOURCE_MANAGER_URL_USGOV: 'http://127.0.0.1:9' } }),
    )
    expect((await failure(refused.listSubscriptions('usgov', 't'))).kind).toBe('unavailable')
    // The token never appears in what a failure says.
    expect(`${unauthorized.message} ${unauthorized.code}`).not.toContain('t-token')
  })
})
