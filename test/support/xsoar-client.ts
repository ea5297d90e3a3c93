// A stand-in for Cortex XSOAR's MicrosoftApiModule in "Cortex XSOAR application" mode, written from
// the protocol description only. It deliberately imports nothing from src/ and carries its own
// base64, AES-GCM framing and error parsing, so an encoding bug in the server cannot cancel itself
// out against a shared helper.
import { type CipherGCM, type CipherGCMTypes, createCipheriv, randomBytes } from 'node:crypto'

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'

/** Standard, padded base64 (RFC 4648 §4), by hand. */
export function base64Encode(bytes: Uint8Array): string {
  let out = ''
  let i = 0
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!
    out +=
      ALPHABET[(n >> 18) & 63]! + ALPHABET[(n >> 12) & 63]! + ALPHABET[(n >> 6) & 63]! + ALPHABET[n & 63]!
  }
  const rest = bytes.length - i
  if (rest === 1) {
    const n = bytes[i]! << 16
    out += `${ALPHABET[(n >> 18) & 63]!}${ALPHABET[(n >> 12) & 63]!}==`
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8)
    out += `${ALPHABET[(n >> 18) & 63]!}${ALPHABET[(n >> 12) & 63]!}${ALPHABET[(n >> 6) & 63]!}=`
  }
  return out
}

/** Strict standard base64 decoding (padding required), as Python's b64decode of a good Key. */
export function base64Decode(text: string): Uint8Array {
  if (text.length % 4 !== 0) throw new Error('base64: length is not a multiple of 4')
  const padding = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0
  const out = new Uint8Array((text.length / 4) * 3 - padding)
  let o = 0
  for (let i = 0; i < text.length; i += 4) {
    let n = 0
    for (let j = 0; j < 4; j++) {
      const ch = text[i + j]!
      const v = ch === '=' ? 0 : ALPHABET.indexOf(ch)
      if (v < 0) throw new Error(`base64: bad character ${JSON.stringify(ch)}`)
      n = (n << 6) | v
    }
    if (o < out.length) out[o++] = (n >> 16) & 255
    if (o < out.length) out[o++] = (n >> 8) & 255
    if (o < out.length) out[o++] = n & 255
  }
  return out
}

/** `encrypted_token` = base64(nonce(12) || AES-GCM ciphertext || tag(16)) of `"<unix s>:<content>"`. */
export function encryptContent(
  content: string,
  key: string,
  nowSeconds: number = Math.floor(Date.now() / 1000),
): string {
  const rawKey = base64Decode(key)
  const algorithms: Record<number, CipherGCMTypes> = {
    16: 'aes-128-gcm',
    24: 'aes-192-gcm',
    32: 'aes-256-gcm',
  }
  const algorithm = algorithms[rawKey.length]
  if (algorithm === undefined) throw new Error(`Key decodes to ${rawKey.length} bytes`)
  const nonce = randomBytes(12)
  const cipher: CipherGCM = createCipheriv(algorithm, rawKey, nonce)
  const plaintext = new TextEncoder().encode(`${nowSeconds}:${content}`)
  const body = cipher.update(plaintext)
  const final = cipher.final()
  const tag = cipher.getAuthTag()
  const framed = new Uint8Array(12 + body.length + final.length + 16)
  framed.set(nonce, 0)
  framed.set(body, 12)
  framed.set(final, 12 + body.length)
  framed.set(tag, 12 + body.length + final.length)
  return base64Encode(framed)
}

export interface XsoarInstance {
  /** The ID field: `<registration_id>@<PUBLIC_URL>/obtain-token`. */
  id: string
  /** The Token field (tenant id). */
  token: string
  /** The Key field. */
  key: string
  /** Integration family, e.g. `ms-graph-mail`. */
  appName: string
  /** X-Content-Name / X-Content-Version. */
  integrationName?: string
  integrationVersion?: string
  /** Base URL to use instead of the one in ID (tests listening on a random port). */
  urlOverride?: string
  /** The HTTP transport; default the global fetch (a test behind TLS passes one trusting its CA). */
  fetch?: typeof fetch
}

export interface TokenAnswer {
  ok: boolean
  status: number
  accessToken: string
  /** As the client reads it (a number; a string would crash the real client). */
  expiresIn: unknown
  refreshToken: string
  /** What the integration would show on failure. */
  errorMessage?: string
  headers: Headers
  body: string
}

/** The error message the XSOAR client builds from an error body. */
export function xsoarErrorMessage(body: string): string {
  let parsed: Record<string, unknown> | undefined
  for (const line of body.split('\n')) {
    const start = line.indexOf('{')
    const end = line.lastIndexOf('}')
    if (start < 0 || end <= start) continue
    try {
      const value: unknown = JSON.parse(line.slice(start, end + 1))
      if (value !== null && typeof value === 'object') {
        parsed = value as Record<string, unknown>
        break
      }
    } catch {
      // not JSON: keep looking
    }
  }
  if (parsed === undefined) return `Error in Microsoft authorization. Status: unparseable body`
  let message = 'Error in Microsoft authorization.'
  const error = parsed.error
  if (error !== null && typeof error === 'object') {
    const e = error as Record<string, unknown>
    message = `${String(e.code)}: ${String(e.message)}`
  } else if (typeof error === 'string') {
    const description = typeof parsed.error_description === 'string' ? parsed.error_description : ''
    message = `${error}${description ? `: ${description.split('\r\n')[0]}` : ''}`
  }
  const server =
    typeof parsed.message === 'string'
      ? parsed.message
      : typeof parsed.title === 'string'
        ? `${parsed.title}. ${String(parsed.detail ?? '')}`
        : ''
  if (server) message += ` Server message: ${server}`
  const codes = parsed.error_codes
  const resetCodes = [50173, 700082, 70008, 54005, 7000222]
  if (Array.isArray(codes) && codes.length > 0 && codes.every((c) => resetCodes.includes(c as number))) {
    message += ' You can run the auth-reset command to reset the authentication process.'
  }
  return message
}

/**
 * The body shapes integrations have sent over the years: `current` (the shared module today: all five
 * keys), `scope-only` (the early module: no `resource`), `legacy` (integrations that built the
 * request themselves, before the module: `app_name`, `registration_id` and `encrypted_token` only).
 */
export type BodyShape = 'current' | 'scope-only' | 'legacy'

/** One integration instance: keeps the refresh_token the broker returns and sends it next time. */
export class XsoarClient {
  readonly registrationId: string
  readonly tokenUrl: string
  /** The stored `refresh_token`, overwritten by every successful answer ("" included). */
  refreshToken = ''
  /** Clock of the XSOAR server, unix seconds (tests move it to test the skew window). */
  now: () => number = () => Math.floor(Date.now() / 1000)

  constructor(readonly instance: XsoarInstance) {
    const parts = instance.id.split('@')
    if (parts.length !== 2) throw new Error('ID must contain exactly one "@" to use a custom token URL')
    this.registrationId = parts[0]!
    this.tokenUrl = instance.urlOverride ?? parts[1]!
  }

  /** What the client encrypts: the stored refresh token, or the Token when it has none. */
  content(): string {
    return this.refreshToken || this.instance.token
  }

  encrypted(content: string = this.content()): string {
    return encryptContent(content, this.instance.key, this.now())
  }

  /** The request body, exactly as the client (of that generation: `shape`) builds it. */
  body(
    options: { scope?: string | null; resource?: string; content?: string; shape?: BodyShape } = {},
  ): string {
    const shape = options.shape ?? 'current'
    return JSON.stringify({
      app_name: this.instance.appName,
      registration_id: this.registrationId,
      encrypted_token: this.encrypted(options.content),
      ...(shape === 'legacy' ? {} : { scope: options.scope ?? null }),
      ...(shape === 'current' ? { resource: options.resource ?? '' } : {}),
    })
  }

  headers(shape: BodyShape = 'current'): Record<string, string> {
    if (shape === 'legacy') {
      // The pre-module integrations named their headers differently.
      return {
        'content-type': 'application/json',
        'x-content-version': this.instance.integrationVersion ?? '1.0.0',
        'x-branch-name': 'master',
        'x-content-name': this.instance.integrationName ?? 'Test Instance',
      }
    }
    return {
      'content-type': 'application/json',
      'x-content-version': this.instance.integrationVersion ?? '1.2.3',
      'x-content-name': this.instance.integrationName ?? 'Test Instance',
      'x-content-licenseid': 'license-id-for-tests',
      'x-content-branch': 'master',
      'x-content-server-version': '8.5.0',
    }
  }

  /** POSTs a raw body (tests of rejections reuse the exact transport). */
  async post(
    body: string,
    extraHeaders: Record<string, string> = {},
    shape: BodyShape = 'current',
  ): Promise<TokenAnswer> {
    const response = await (this.instance.fetch ?? fetch)(this.tokenUrl, {
      method: 'POST',
      headers: { ...this.headers(shape), ...extraHeaders },
      body,
    })
    const text = await response.text()
    if (response.status >= 400) {
      return {
        ok: false,
        status: response.status,
        accessToken: '',
        expiresIn: undefined,
        refreshToken: '',
        errorMessage: xsoarErrorMessage(text),
        headers: response.headers,
        body: text,
      }
    }
    let parsed: Record<string, unknown>
    try {
      parsed = JSON.parse(text) as Record<string, unknown>
    } catch {
      return {
        ok: false,
        status: response.status,
        accessToken: '',
        expiresIn: undefined,
        refreshToken: '',
        errorMessage: 'There was a problem in retrieving an updated access token.',
        headers: response.headers,
        body: text,
      }
    }
    return {
      ok: true,
      status: response.status,
      accessToken: typeof parsed.access_token === 'string' ? parsed.access_token : '',
      expiresIn: parsed.expires_in ?? 3595,
      refreshToken: typeof parsed.refresh_token === 'string' ? parsed.refresh_token : '',
      headers: response.headers,
      body: text,
    }
  }

  /** One token request; on success the stored refresh token is overwritten, as the client does. */
  async getAccessToken(
    options: { scope?: string | null; resource?: string; shape?: BodyShape } = {},
  ): Promise<TokenAnswer> {
    const answer = await this.post(this.body(options), {}, options.shape)
    if (answer.ok) {
      if (typeof answer.expiresIn !== 'number') throw new Error('expires_in is not a JSON number')
      this.refreshToken = answer.refreshToken
    }
    return answer
  }

  /** Multi-resource mode (Log Analytics): one request per resource, each sending the last refresh_token. */
  async multiResource(resources: readonly string[]): Promise<Map<string, TokenAnswer>> {
    const answers = new Map<string, TokenAnswer>()
    for (const resource of resources) answers.set(resource, await this.getAccessToken({ resource }))
    return answers
  }
}
