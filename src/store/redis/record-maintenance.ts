// The key rotation's re-seal of one record's secrets under the current master key, in the compact
// record layout whichever layout the record was read from (record-layout.ts).
import type { KeyRing } from '../../crypto/envelope.js'
import { KeyRing as KeyRingClass } from '../../crypto/envelope.js'
import { CONFLICT, retryOnConflict } from '../compare-and-set.js'
import type { RedisClient } from '../redis-connection.js'
import { openSecret, SECRET_FIELDS, sealSecret } from '../sealing.js'
import type { RedisKeys } from './keys.js'
import { CHUNK_PREFIX, chunksOf, fromStored } from './record-layout.js'
import { RESEAL_FIELDS, runScript } from './scripts.js'

/**
 * See RegistrationStore.reseal: every secret of record `id` not sealed under the current key is
 * re-sealed (written as chunks, whichever layout it was read from), only while it still holds the
 * value read (a concurrent new refresh token wins; the read is retried).
 */
export async function resealRecord(
  redis: RedisClient,
  keys: RedisKeys,
  keyRing: KeyRing,
  id: string,
): Promise<boolean> {
  const key = keys.reg(id)
  let rewritten = false
  const done = await retryOnConflict({ attempts: 5 }, async () => {
    const stored = await redis.hgetall(key)
    if (stored.status === undefined) return true
    const record = fromStored(id, stored)
    const args: Array<string | number> = []
    let fields = 0
    for (const field of SECRET_FIELDS) {
      const sealed = record[field]
      if (sealed === undefined || KeyRingClass.keyIdOf(sealed) === keyRing.current.id) continue
      const chunks = chunksOf(sealSecret(keyRing, id, field, openSecret(keyRing, id, field, sealed)))
      args.push(field, CHUNK_PREFIX[field], sealed, chunks.length, ...chunks)
      fields += 1
    }
    if (fields === 0) return true
    const replaced = (await runScript(redis, RESEAL_FIELDS, [key], args)) as number
    if (replaced > 0) rewritten = true
    // fewer replaced: a field changed underneath (e.g. a new refresh token): read again
    return replaced === fields ? true : CONFLICT
  })
  if (done === CONFLICT) throw new Error(`registration ${id}: reseal kept racing with concurrent writes`)
  return rewritten
}
