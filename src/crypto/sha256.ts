// The one SHA-256 hex digest of the code base: operator token hashes (config), token-cache key
// names (store) and session keys. Kept apart from the envelope so every layer can import it.
import { createHash } from 'node:crypto'

/** Lower-case hex SHA-256 of `value`'s UTF-8 bytes. */
export function sha256Hex(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex')
}
