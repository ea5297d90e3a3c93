// AES-256-GCM envelope for secrets at rest. Every ciphertext names the key that sealed it (so the
// ring can rotate: the first key seals, all keys open) and is bound by associated data to the
// record and field it belongs to, so a value copied into another record fails to open.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'

const VERSION = 'v1'
const NONCE_BYTES = 12
const TAG_BYTES = 16

export interface MasterKey {
  readonly id: string
  readonly key: Buffer
}

export class EnvelopeError extends Error {
  override readonly name = 'EnvelopeError'
}

export class KeyRing {
  readonly #keys: ReadonlyMap<string, Buffer>
  readonly current: MasterKey

  /** @param keys newest first: `keys[0]` seals, every key opens. */
  constructor(keys: readonly MasterKey[]) {
    if (keys.length === 0) throw new EnvelopeError('key ring is empty')
    const map = new Map<string, Buffer>()
    for (const { id, key } of keys) {
      if (!/^[A-Za-z0-9_-]{1,32}$/.test(id))
        throw new EnvelopeError(`key id "${id}" is not [A-Za-z0-9_-]{1,32}`)
      if (key.length !== 32) throw new EnvelopeError(`key "${id}" is not 32 bytes`)
      if (map.has(id)) throw new EnvelopeError(`key id "${id}" appears twice`)
      map.set(id, key)
    }
    this.#keys = map
    this.current = keys[0]!
  }

  get ids(): string[] {
    return [...this.#keys.keys()]
  }

  seal(plaintext: string, aad: string): string {
    const nonce = randomBytes(NONCE_BYTES)
    const cipher = createCipheriv('aes-256-gcm', this.current.key, nonce)
    cipher.setAAD(Buffer.from(aad, 'utf8'))
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()])
    return `${VERSION}.${this.current.id}.${Buffer.concat([nonce, body]).toString('base64url')}`
  }

  open(sealed: string, aad: string): string {
    const [version, keyId, payload, extra] = sealed.split('.')
    if (version !== VERSION || keyId === undefined || payload === undefined || extra !== undefined) {
      throw new EnvelopeError('sealed value is malformed')
    }
    const key = this.#keys.get(keyId)
    if (key === undefined) throw new EnvelopeError(`sealed value uses unknown key "${keyId}"`)
    const raw = Buffer.from(payload, 'base64url')
    if (raw.length < NONCE_BYTES + TAG_BYTES) throw new EnvelopeError('sealed value is truncated')
    const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, NONCE_BYTES))
    decipher.setAAD(Buffer.from(aad, 'utf8'))
    decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES))
    try {
      return Buffer.concat([
        decipher.update(raw.subarray(NONCE_BYTES, raw.length - TAG_BYTES)),
        decipher.final(),
      ]).toString('utf8')
    } catch (cause) {
      throw new EnvelopeError('sealed value failed authentication', { cause })
    }
  }

  /** The id of the key that sealed a value, without opening it (key rotation uses this). */
  static keyIdOf(sealed: string): string | undefined {
    return sealed.split('.')[1]
  }
}

/** Parses `id:base64,id:base64` (newest first) into master keys; throws naming the bad entry. */
export function parseMasterKeys(spec: string): MasterKey[] {
  return spec
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry.length > 0)
    .map((entry) => {
      const colon = entry.indexOf(':')
      if (colon <= 0) throw new EnvelopeError('each entry must be "id:base64key"')
      const id = entry.slice(0, colon)
      const b64 = entry.slice(colon + 1)
      if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 !== 0) {
        throw new EnvelopeError(`key "${id}" is not standard base64`)
      }
      const key = Buffer.from(b64, 'base64')
      if (key.length !== 32)
        throw new EnvelopeError(`key "${id}" decodes to ${key.length} bytes, expected 32`)
      return { id, key }
    })
}
