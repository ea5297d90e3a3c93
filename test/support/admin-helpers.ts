// Helpers shared by the operator tests (admin API, console, revocation, key rotation, CLI).
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { createAdminRegistration } from '../../src/services/registrations.js'
import type { Registration, Store } from '../../src/store/types.js'
import { browse, type ConsentValues, CookieJar, type RunningBroker } from './broker.js'
import { XsoarClient } from './xsoar-client.js'

/** A fresh operator token (≥ 24 characters, as the config requires). */
export function operatorToken(name: string): string {
  return `${name}-${randomBytes(24).toString('base64url')}`
}

export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` }
}

/** The fields of an obtain-token answer the tests look at. */
export interface TokenResponseBody {
  access_token?: string
  expires_in?: number
  refresh_token?: string
  error?: { code: string; message: string; [extra: string]: unknown }
}

/** One obtain-token request through `app.inject`, built by the independent XSOAR client. */
export async function obtainToken(
  app: FastifyInstance,
  values: ConsentValues,
  appName: string,
): Promise<{ status: number; body: TokenResponseBody; raw: string }> {
  const client = new XsoarClient({ id: values.id, token: values.token, key: values.key, appName })
  const response = await app.inject({
    method: 'POST',
    url: '/obtain-token',
    headers: client.headers(),
    payload: client.body(),
  })
  return { status: response.statusCode, body: response.json() as TokenResponseBody, raw: response.body }
}

/** The value of `<input type="hidden" name="csrf" value="…">` in a page. */
export function csrfOf(body: string): string {
  const match = /<input type="hidden" name="csrf" value="([^"]+)">/.exec(body)
  if (match === null) throw new Error(`no csrf field in page: ${body.slice(0, 300)}`)
  return match[1]!
}

/** Signs in at the console with `token`; returns the browser (cookie jar) and the landing response. */
export async function consoleSignIn(
  app: FastifyInstance,
  token: string,
): Promise<{ jar: CookieJar; response: LightMyRequestResponse }> {
  const jar = new CookieJar()
  const form = await browse(app, jar, { url: '/admin/sign-in' })
  if (form.statusCode !== 200) throw new Error(`sign-in page answered ${form.statusCode}`)
  const response = await browse(app, jar, {
    method: 'POST',
    url: '/admin/sign-in',
    form: { token, csrf: csrfOf(form.body) },
  })
  return { jar, response }
}

/**
 * What a broker on Redis stores for the browser session whose signed cookie value is `cookie`: the
 * session id, the record at the key the session must live under (`eph:<namespace>:<SHA-256 of the
 * id>`), every key under the broker's prefix and every string value stored there — so a test can
 * look for the id or the session's contents in clear anywhere, not only in key names.
 */
export async function storedSession(broker: RunningBroker, namespace: string, cookie: string) {
  const redis = broker.redis
  if (redis === undefined) throw new Error('storedSession needs a broker on Redis')
  const id = cookie.slice(0, cookie.lastIndexOf('.'))
  const hash = createHash('sha256').update(id, 'utf8').digest('hex')
  const keys = await redis.keys(`${broker.keyPrefix}*`)
  const strings: string[] = []
  for (const key of keys) {
    if ((await redis.type(key)) === 'string') strings.push((await redis.get(key)) ?? '')
  }
  return { id, keys, record: await redis.get(`${broker.keyPrefix}eph:${namespace}:${hash}`), strings }
}

/** An active admin registration of `app` (global cloud) in a new tenant, written straight to the store. */
export async function freshAdminRegistration(
  store: Store,
  app = 'ms-graph-mail',
): Promise<{ tenantId: string; registration: Registration }> {
  const tenantId = randomUUID()
  const { registration } = await createAdminRegistration(store, {
    app,
    cloud: 'global',
    tenantId,
    now: new Date().toISOString(),
  })
  return { tenantId, registration }
}
